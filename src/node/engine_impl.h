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
  Result<crdt::KeyedEntry> write(std::string_view key, std::optional<std::string_view> value, Now n);

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
  // Ok, or why a local write is refused now (Unavailable).
  Status write_refusal();
  // Why a local write would be refused now ("" when it would not), without
  // counting a refusal: the storage failure, or the clock guard's verdict.
  std::string refusal_reason();
  // {guard, max_clock_offset_ms, judged_peers, peers_beyond, offset_ms,
  // state_for_ms, writes_refused, entries_ahead, forced_ahead} (status, peers).
  wire::Value clock_guard_view(uint64_t now_us) const;

  // How the components reach each other (engine.cc).
  LogFn logger();
  Sealing::Hooks sealing_hooks();
  Membership::Hooks membership_hooks();
  Replication::Hooks replication_hooks();
  AntiEntropy::Hooks anti_entropy_hooks();
};

}  // namespace meshkv::node
