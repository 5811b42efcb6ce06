// The chaos test's checker (scripts/chaos.sh): what the nodes hold at the end
// of a run, against what the clients were told while faults were applied.
//
// Writes are ordered as the replicas order them: by (hlc, origin), through
// crdt::wins. The checks, each named by its letter in `chaos.sh --help`:
//   (a) every node reports the same digest, and nodes with equal digests list
//       equal entries;
//   (b) on every node each key holds the acknowledged write with the greatest
//       (hlc, origin), or a greater write (acknowledged or not): no
//       acknowledged write is lost. A write acknowledged by an in-memory node
//       killed after the write began may be lost; such losses are counted;
//   (c) no two acknowledged writes share an (hlc, origin), and a write
//       acknowledged by one origin before another began on it has the
//       smaller HLC;
//   (d) no member is seen dead (or left) by an observer while neither had
//       been disturbed (killed, paused, partitioned) within the grace period;
//   (e) counters: every node holds the same total for each counter key, and
//       it lies between what the increments add up to when every uncertain
//       one (unknown outcome, or acknowledged by an in-memory node killed
//       after it began) took effect only if it lowers the total, and when
//       each took effect only if it raises it. Acknowledged increments count
//       exactly; refused ones not at all.
//   (f) sets (add-wins): every node holds the same members for each set
//       key; a member held was the object of an add that was not refused;
//       and a member whose add was acknowledged is held, unless a remove of
//       it (not refused) could have seen that add: one of unknown outcome,
//       or one acknowledged that ended after the add began. (A remove that
//       ended before the add began cannot have seen it, and a remove only
//       removes the adds it has seen.) An add acknowledged by an in-memory
//       node killed after it began may be lost; such adds are counted.
//
// Each replicated type has its own record of client attempts (`writes` for
// registers, `incrs` for counters, `sops` for sets), its own record of final
// states (`finals`, `counters`, `sets`) and its own check: a new type adds
// the three.
//
// Pure: a History in, a Report out. parse_file() reads the run directory's
// files, whose formats are documented at each record below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crdt/entry.h"

namespace meshkv::chaos {

// What last-writer-wins compares.
struct Stamp {
  crdt::Hlc hlc;
  crdt::Origin origin = 0;
  friend bool operator==(const Stamp&, const Stamp&) = default;
};
// Whether `a` beats `b` (crdt::wins).
bool newer(const Stamp& a, const Stamp& b);
// "hlc 1700000000123.4 origin 00000000000000aa".
std::string to_string(const Stamp& s);

// `modes`: "node durable|memory", one per node; their order is the nodes'.
struct NodeMode {
  std::string node;
  bool in_memory = false;
};

// `kills`: "ms kill node", a kill -9.
struct Kill {
  int64_t at_ms = 0;
  std::string node;
};

// `writes`: one client attempt a line,
//   writer seq start_ms end_ms node set|del key value rc phys logical origin
// value is "-" for a delete; rc is the client's exit status; the last three
// are the HLC (physical ms, logical) and origin (16 hex digits) the node
// answered with, "- - -" when it answered none.
struct Write {
  int writer = 0;
  uint64_t seq = 0;
  int64_t start_ms = 0, end_ms = 0;
  std::string node;
  bool del = false;
  std::string key, value;
  int rc = 0;
  std::optional<Stamp> stamp;

  bool acked() const { return rc == 0 && stamp.has_value(); }
};

// `incrs`: one counter client attempt a line,
//   client seq start_ms end_ms node key delta rc answer
// delta is signed: `meshkv incr key N` is N, `meshkv decr key N` is -N
// (N >= 1); rc is the client's exit status; answer says what the client
// knows: "applied" (rc 0), "refused" (rc != 0, and certainly not applied:
// the node answered "write refused", which it decides before it changes
// anything, or the connection was refused, so the request was never sent)
// or "unknown" (rc != 0 otherwise, e.g. no answer in time: it may have been
// applied).
struct Incr {
  int client = 0;
  uint64_t seq = 0;
  int64_t start_ms = 0, end_ms = 0;
  std::string node, key;
  int64_t delta = 0;
  int rc = 0;
  bool refused = false;

  bool acked() const { return rc == 0; }
};

// `counters`: "node key total", every counter of every node after the heal
// (`meshkv list`); a counter a node does not list counts as 0 there.
struct CounterFinal {
  std::string node, key;
  int64_t total = 0;
};

// `sops`: one set client attempt a line,
//   client seq start_ms end_ms node key op member rc answer
// op is "sadd" or "srem" (of one member); rc and answer as in `incrs`.
struct SetOp {
  int client = 0;
  uint64_t seq = 0;
  int64_t start_ms = 0, end_ms = 0;
  std::string node, key, member;
  bool add = false;
  int rc = 0;
  bool refused = false;

  bool acked() const { return rc == 0; }
};

// `sets`: "node key member", every member of every set of every node after
// the heal (`meshkv list`); a set a node does not list is empty there.
struct SetFinal {
  std::string node, key, member;
};

// `finals`: "node key value phys logical origin", every live entry of every
// node after the heal (`meshkv list`).
struct Final {
  std::string node, key, value;
  Stamp stamp;
};

// `digests`: "node digest", each node's `status` digest after the heal
// ("silent" for a node that did not answer).
struct Digest {
  std::string node, digest;
};

// `disturbances`: "node kind from_ms to_ms", a span during which the node
// was down (killed or paused) or partitioned.
struct Disturbance {
  std::string node, kind;
  int64_t from_ms = 0, to_ms = 0;
};

// `samples`: "ms observer member state", one member of one `meshkv peers`.
struct Sample {
  int64_t at_ms = 0;
  std::string observer, member, state;
};

struct History {
  std::vector<NodeMode> modes;
  std::vector<Kill> kills;
  std::vector<Write> writes;
  std::vector<Final> finals;
  std::vector<Digest> digests;
  std::vector<Disturbance> disturbances;
  std::vector<Sample> samples;
  std::vector<Incr> incrs;
  std::vector<CounterFinal> counters;
  std::vector<SetOp> sops;
  std::vector<SetFinal> sets;
};

// The files of a run directory, in the order load_run() reads them.
inline constexpr std::string_view kRunFiles[] = {"modes",   "kills", "writes",   "finals", "digests", "disturbances",
                                                 "samples", "incrs", "counters", "sops",   "sets"};

// Parses `text` as the run file named `name` (one of kRunFiles) and appends
// its records to `h`. Errors: kInvalidArgument for an unknown name, or a
// malformed line ("writes:3: ..."); `h` then holds the lines before it.
Status parse_file(std::string_view name, std::string_view text, History& h);

struct Options {
  int64_t grace_ms = 5000;  // (d): how long after a disturbance "dead" is excused
  int64_t t0_ms = 0;        // start of the run, for "+12.3s" in messages
};

struct Violation {
  char check = 0;  // 'a' to 'f'
  std::string what;
};

struct Report {
  std::vector<std::string> summary;  // one line per check, for people
  std::vector<Violation> violations;

  bool ok() const { return violations.empty(); }
  // How many violations of `check`.
  size_t count(char check) const;
};

Report check(const History& h, const Options& o = {});

}  // namespace meshkv::chaos
