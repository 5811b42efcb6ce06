// Internal to src/node: the engine as a composition of components, each of
// which owns its state (see its header):
//
//   transport     datagrams in and out, faults, fragments    node/transport.h
//   sealing       keys, identities, replay windows           node/sealing.h
//   membership    members, probes, suspicion, gossip         node/membership.h
//   replication   pushes, acknowledgements, retransmission   node/replication.h
//   anti-entropy  digests, peer vectors, tombstone GC        node/anti_entropy.h
//
// The engine itself keeps dispatch (a decoded message to the component it is
// for) and the wiring: components send through the transport (a Sender),
// and learn of each other's changes through events the engine routes —
// MemberEvents from membership, and `applied` entries from replication and
// anti-entropy. What the engine owns besides: the configuration, the
// replica (the data every component works on), the clock, the random
// generator and the timers it lends them, and the effects for the driver.
#pragma once

#include <random>

#include "node/anti_entropy.h"
#include "node/engine.h"
#include "node/membership.h"
#include "node/outbox.h"
#include "node/replication.h"
#include "node/sealing.h"
#include "node/timers.h"
#include "node/transport.h"

namespace meshkv::node {

// "3600012 ms ahead of 2 of 2 peers": a verdict, for the log and refusals.
std::string describe_offset(const ClockVerdict& v);

// What list shows (node/counters.cc): the live values under `prefix` not
// shadowed by a newer counter of their key, sorted by key; and the keys
// that read as counters (Engine::counter).
std::vector<std::pair<std::string, crdt::Entry>> live_values(const crdt::Replica& replica, std::string_view prefix,
                                                             uint64_t wall_ms);
std::map<std::string, crdt::CounterView, std::less<>> live_counters(const crdt::Replica& replica,
                                                                   std::string_view prefix, uint64_t wall_ms);
// The keys under `prefix` that read as sets (Engine::orset; node/sets.cc).
std::map<std::string, crdt::SetView, std::less<>> live_sets(const crdt::Replica& replica, std::string_view prefix,
                                                           uint64_t wall_ms);
// Which of a key's types it reads as: the type whose newest live write is
// newest (by HLC). At most one of the three is non-null.
struct KeyTypes {
  crdt::EntryPtr value = nullptr;
  std::optional<crdt::CounterView> counter;
  std::optional<crdt::SetView> set;
};
KeyTypes read_key(const crdt::Replica& replica, std::string_view key, uint64_t wall_ms);

struct Engine::Impl {
  Impl(Config c, uint64_t uid, Endpoint addr, uint64_t seed, Now now);

  const size_t wire_mtu;  // the largest datagram; cfg.mtu is what a message may take
  Config cfg;
  const std::string self_name;
  const uint64_t self_uid;
  const Endpoint self_addr;
  const bool durable;
  std::mt19937_64 rng;
  Now now;
  const uint64_t start_us;
  crdt::Replica replica;
  wire::Value storage_info;

  Outbox out;  // what the driver takes (Engine::take_effects)
  Timers timers;
  bool gathering = false;  // local writes wait for Engine::pack_writes()

  Sealing sealing;
  Transport transport;
  Membership membership;
  Replication replication;
  AntiEntropy anti_entropy;
  mutable Counters counters_view;  // assembled by Engine::counters()

  void log(LogLevel level, std::string text);
  // Ends an input call: packs its writes into pushes (unless gathering) and
  // queues its datagrams.
  void finish();
  // Logs (and journals) what went into or left quarantine during the call.
  void settle_quarantine();
  uint64_t quarantined_total = 0;  // entries ever put in quarantine by this process
  void dispatch(const Endpoint& from, wire::Envelope env);
  // Dispatches the received datagrams that injected delay held and are due.
  void deliver_held();
  // A proven identity becomes a member.
  void on_hello(const Endpoint& from, uint64_t sender, const wire::Hello& h);
  // Routes a membership change to the components that react to it.
  void member_changed(const MemberEvent& e);
  // An entry that won in the replica: reported to the driver, logged when
  // durable, and queued for collection when a tombstone.
  void applied(const crdt::KeyedEntry& ke, bool local);
  // Appends to the write-ahead log. REQUIRES: durable.
  void journal(LogOp op);
  // Counters (node/counters.cc): the reset of counter `key` as a local
  // write (its baseline: every part held), and the same only when the
  // counter is live (nothing to reset otherwise).
  Result<crdt::KeyedEntry> write_reset(std::string_view key, Now n);
  Status reset_counter(std::string_view key, Now n);
  // Sets (node/sets.cc): the removes of every member set `key` holds, as
  // local writes; the last one written, or nullopt when none was present.
  Result<std::optional<crdt::KeyedEntry>> clear_set(std::string_view key, Now n);
  Result<crdt::KeyedEntry> write(std::string_view key, std::optional<std::string_view> value, Now n,
                                 uint64_t ttl_ms = 0);

  // Local writes not yet durable (durable only): what each replaced, so
  // that a failed log write can withdraw them (Engine::storage_failed).
  // Emptied at every writes_durable(): one loop iteration's writes at most.
  struct Unsynced {
    std::string key;
    crdt::Dot dot;
    std::optional<crdt::Entry> prev;
  };
  std::vector<Unsynced> unsynced;
  std::string storage_refusal;  // non-empty: local writes are refused
  uint64_t writes_refused = 0;

  // The clock-offset guard (Config::max_clock_offset_ms; the rule is
  // judge_clock in node/protocol_math.h). Judged again every tick and before
  // a write; each change of state is logged once.
  enum class GuardState : uint8_t { kOff, kUnjudged, kOk, kRefusing };
  struct ClockGuard {
    GuardState state = GuardState::kUnjudged;
    ClockVerdict verdict;
    uint64_t since_us = 0;    // in this state since
    uint64_t judged_us = ~uint64_t{0};  // when last judged
    uint64_t refused = 0;     // local writes refused
    bool unchecked_warned = false;      // a write made while unjudged was logged
    uint64_t forced_logged = 0;         // replica.forced_ahead() when last logged
    uint64_t forced_log_us = 0;         // when a forced jump was last logged
  } guard;
  void judge_clock_now();
  void judge_clock_if_stale();
  // Ok, or why a local write is refused now (Unavailable).
  Status write_refusal();
  // Why a local write would be refused now ("" when it would not), without
  // counting a refusal: the storage failure, or the clock guard's verdict.
  std::string refusal_reason();
  // {guard, max_clock_offset_ms, judged_peers, peers_beyond, offset_ms,
  // state_for_ms, writes_refused, entries_ahead, forced_ahead} (status, peers).
  wire::Value clock_guard_view(uint64_t now_us) const;

  // ---- tunable consistency (node/consistency.cc) ----
  // A write's wait: which members have its seqs.
  struct Waiter {
    Level level;
    uint64_t first_seq = 0, last_seq = 0;
    size_t need = 1;
    uint64_t start_us = 0, deadline_us = 0;
    struct Target {
      std::string name;
      uint64_t uid = 0;
      uint64_t acked = 0;  // seqs of [first_seq, last_seq] in acknowledged pushes
      bool has = false;
      unsigned asks = 0;         // anti-entropy exchanges started for it
      uint64_t next_ask_us = 0;  // when the next may start
    };
    std::vector<Target> targets;  // the members other than this node
    wire::CtlResponse done;
  };
  // A quorum read: who answered what.
  struct QuorumRead {
    Level level;
    bool list = false;
    std::string key;  // the key, or the prefix of a list
    size_t need = 1;
    uint64_t start_us = 0, deadline_us = 0, req_id = 0;
    struct Target {
      std::string name;
      uint64_t uid = 0;
      Endpoint addr;
      bool answered = false;
      unsigned asks = 0;         // requests (or, for a list, pulls) sent
      uint64_t next_ask_us = 0;  // when to ask again, with backoff, while no answer
      std::optional<crdt::Entry> entry;  // key: its winner (none: it holds none)
      crdt::VersionVector vv;            // list: its vector
    };
    std::vector<Target> targets;
  };
  // Asks (or pulls from) the members of read `id` that have not answered
  // (or caught us up) when their backoff allows; sets the resend timer.
  void ask_again(uint64_t id, QuorumRead& r);
  std::map<uint64_t, Waiter> waits;
  std::map<uint64_t, QuorumRead> reads;
  uint64_t next_wait_id = 1;
  struct ConsistencyCounters {
    uint64_t waits = 0, waits_met = 0, waits_timed_out = 0;
    uint64_t reads = 0, reads_met = 0, reads_failed = 0;
    uint64_t read_requests_answered = 0;  // ReadReqs from members answered
    uint64_t read_dropped = 0;            // ReadReqs from non-members, unexpected ReadResps
    uint64_t read_repairs = 0;            // winners sent to members (or taken here) that were behind
  } consistency;
  void on_read_req(const Endpoint& from, uint64_t sender, const wire::ReadReq& m);
  void on_read_resp(uint64_t sender, const wire::ReadResp& m);
  void on_pushes_acked(std::string_view member, uint64_t first_seq, uint64_t last_seq);
  // Whether a pending wait covers a seq in [first_seq, last_seq].
  bool waited(uint64_t first_seq, uint64_t last_seq) const;
  // Answers the waits and reads that are met, and those whose deadline
  // passed; run at the end of every input.
  void settle_consistency();
  void finish_read(uint64_t id, QuorumRead& r);
  // Whether `w` is met or past its deadline: then `resp` is completed (the
  // answer to the write, or the timeout's refusal) and counted.
  bool wait_answer(Waiter& w, wire::CtlResponse& resp);
  // A member of wait `id` that lacks the writes and has no push of ours in
  // flight (it was lost for good, or the member was unreachable when it
  // left) is caught up, and asked for its vector, by anti-entropy, with
  // backoff; sets the resend timer.
  void chase(uint64_t id, Waiter& w);
  std::optional<uint64_t> staleness_at(uint64_t now_us) const;
  // {waits, ...} for status and /metrics.
  wire::Value consistency_view(uint64_t now_us) const;

  // ---- backpressure (node/backpressure.cc) ----
  // Answers to write requests held while replication is congested
  // (Engine::hold_write), by Reply id (from next_wait_id).
  struct Held {
    uint64_t start_us = 0, deadline_us = 0;
    wire::CtlResponse done;
  };
  std::map<uint64_t, Held> holds;
  struct BackpressureCounters {
    uint64_t writes_slowed = 0;  // write requests whose answer was held
    uint64_t slowed_ms = 0;      // the time they were held, in total
    uint64_t slowed_to_deadline = 0;  // held to their deadline: still congested then
    uint64_t not_held = 0;       // congested, but kMaxWaits answers were held already
  } backpressure;
  // Answers the held writes once replication is not congested, or at their
  // deadline; run at the end of every input.
  void settle_holds();
  // {writes_slowed, ...} for status and /metrics.
  wire::Value backpressure_view() const;

  // How the components reach each other (engine.cc).
  LogFn logger();
  Sealing::Hooks sealing_hooks();
  Membership::Hooks membership_hooks();
  Replication::Hooks replication_hooks();
  AntiEntropy::Hooks anti_entropy_hooks();
};

}  // namespace meshkv::node
