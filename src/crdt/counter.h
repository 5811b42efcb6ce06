// Counters (PN-counters) built from ordinary last-writer-wins entries.
//
// A counter K is not one entry but several, under internal keys no user key
// can have (they begin with a 0 byte, which the node refuses in user keys):
//
//   part of origin o:  "\0c" + 16 hex digits of o + K   value: (P, N)
//   reset:             "\0r" + K                        value: [(o, Pb, Nb)...]
//
// Only origin o ever writes its part, and each write carries o's running
// totals (P: everything o added, N: everything o subtracted), never a delta.
// So o's writes of its part are in HLC order and last-writer-wins keeps the
// largest totals: a duplicate, a re-sent chunk or a stale copy can neither
// count twice nor lose a count, and anti-entropy, digests, the log and
// garbage collection need nothing new (the parts are data like any other).
//
// `del K` writes the reset: the totals of every part it saw (its baseline).
// The counter's value is, per origin, what it counted beyond that baseline:
//
//   value = sum over o of (max(P_o, Pb_o) - Pb_o) - (max(N_o, Nb_o) - Nb_o)
//
// (the max only matters while a replica has the reset but not yet the parts
// it saw; once it has them P_o >= Pb_o, since totals only grow). An increment
// the reset did not see survives it; of two concurrent resets the later (by
// HLC) wins, as for any entry, and increments seen by the loser but not by
// the winner count again. The counter is live while some origin counted
// beyond the baseline: right after a reset it reads as absent.
//
// Values are computed modulo 2^64 and read as signed 64-bit: every replica
// agrees on the result even past overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crdt/entry.h"
#include "crdt/lww_map.h"

namespace meshkv::crdt {

// The first byte of every internal key; user keys may not begin with it.
inline constexpr char kInternalMark = '\0';
// How much longer a part key is than its counter's key, and so the longest
// key a counter may have (its parts must pass check_key everywhere).
inline constexpr size_t kCounterKeyOverhead = 2 + 16;
inline constexpr size_t kMaxCounterKeyBytes = kMaxKeyBytes - kCounterKeyOverhead;

inline bool internal_key(std::string_view k) { return !k.empty() && k[0] == kInternalMark; }

// check_key, and refuses internal keys: what a user may write or delete.
Status check_user_key(std::string_view key);
// check_user_key, and short enough for its parts (kMaxCounterKeyBytes).
Status check_counter_key(std::string_view key);

std::string counter_part_key(std::string_view key, Origin o);
std::string counter_reset_key(std::string_view key);

// What an internal key stands for: the counter's key, and for a part, its
// origin. nullopt for user keys and for internal keys of no known form.
struct InternalKey {
  enum class Kind : uint8_t { kPart, kReset } kind = Kind::kPart;
  std::string_view counter;  // points into the parsed key
  Origin origin = 0;         // parts only
};
std::optional<InternalKey> parse_internal_key(std::string_view k);

// One origin's running totals.
struct Totals {
  uint64_t p = 0, n = 0;
  friend bool operator==(Totals, Totals) = default;
};
// A part's value: 16 bytes, P then N, little-endian.
std::string encode_totals(Totals t);
// nullopt for a value of another length (bad input from a peer: the part
// then counts as zero rather than crash or guess).
std::optional<Totals> decode_totals(std::string_view v);
// A reset's value: 24 bytes per origin (o, Pb, Nb), ascending o.
using Baseline = std::map<Origin, Totals>;
std::string encode_baseline(const Baseline& b);
std::optional<Baseline> decode_baseline(std::string_view v);

// What one origin counted beyond the baseline `b` (see above).
inline Totals beyond(Totals t, Totals b) {
  return Totals{t.p > b.p ? t.p - b.p : 0, t.n > b.n ? t.n - b.n : 0};
}

// A counter as a replica holds it.
struct CounterView {
  int64_t value = 0;
  bool live = false;  // some origin counted beyond the baseline
  // The newest part that counted beyond the baseline (its HLC decides
  // against a register of the same key), or nullptr.
  EntryPtr newest = nullptr;
  EntryPtr reset = nullptr;  // the reset entry, or nullptr
  size_t origins = 0;            // parts held
};

// The counter `key` in `m`: its parts are looked up for each origin holding
// entries (only o writes o's part, so its winner's dot names o).
CounterView read_counter(const LwwMap& m, std::string_view key);
// Every counter whose key starts with `prefix`, in one pass over `m`.
std::map<std::string, CounterView, std::less<>> read_counters(const LwwMap& m, std::string_view prefix);
// The totals of every part of `key` (what a reset records).
Baseline counter_totals(const LwwMap& m, std::string_view key);
// The value origin `self` writes to its part of `key` to add `delta`
// (negative: subtract): its totals in `m` moved by |delta|. Invalid for a
// delta of 0, or a total that would pass 2^64.
Result<std::string> counter_step(const LwwMap& m, std::string_view key, Origin self, int64_t delta);

}  // namespace meshkv::crdt
