// What the engine asks its driver to do: one ordered queue of typed effects,
// taken with Engine::take_effects(). Every driver (the Asio shell, the
// simulator, tests) drains it the same way:
//
//   for (auto& e : engine.take_effects()) std::visit(Overloaded{...}, e);
//
// with a handler for each alternative, so that none can be forgotten.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "common/endpoint.h"
#include "crdt/replica.h"
#include "node/events.h"
#include "node/persist.h"
#include "wire/bytes.h"
#include "wire/messages.h"

namespace meshkv::node {

// Send `bytes` to `to` (a whole datagram: sealed or checksummed).
struct Datagram {
  Endpoint to;
  wire::Bytes bytes;
};

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };
// Append a line to the node's log.
struct LogLine {
  LogLevel level;
  std::string text;
};

// A key whose winning entry changed, locally or by replication.
struct Change {
  std::string key;
  crdt::Entry entry;
  bool local = false;
};

// Tombstone collection freed much, or a resync replaced the state: a durable
// node should snapshot (compacting its log); any node may return memory.
// At most one is pending at a time.
struct CompactionRequest {};

// What a timer is for: the earliest one is the Timer effect's `kind`.
enum class TimerKind : uint8_t {
  kProbe,         // membership: the next protocol period's probe
  kProbeTimeout,  // membership: the probe in flight asks others, or fails
  kGossip,        // membership: a gossip round (while there is news or a suspect)
  kReconnect,     // membership: knock on a dead member, retry seeds
  kSuspicion,     // membership: a suspect's time to refute ends
  kRelay,         // membership: a probe relayed for another expires
  kReap,          // membership: a dead or left member, or the memory of one, is due to go
  kRetransmit,    // replication: the earliest retransmission
  kPushHold,      // replication: writes held under load leave
  kAntiEntropy,   // anti-entropy: the periodic digest
  kFollowUp,      // anti-entropy: digest again after a chunk made progress
  kCollect,       // anti-entropy: tombstone collection and quorum check
  kFragments,     // transport: partial messages expire
  kDelayed,       // transport: a datagram delayed by an injected fault is due
  kConsistency,   // consistency: a write's wait or a quorum read reaches its deadline
  kBackpressure,  // backpressure: a held write answer reaches its deadline
};
const char* timer_name(TimerKind k);

// Call Engine::tick() at `at_us` (monotonic clock), or earlier; a tick finds
// what is due itself, so a tick that comes early is harmless. The last
// effect of every take_effects(): it replaces any earlier Timer.
struct Timer {
  uint64_t at_us = 0;
  TimerKind kind = TimerKind::kProbe;
};

// The answer to a control request the engine deferred (a write that waits
// for acknowledgements, a quorum read: node/control.h): `id` is what
// handle_control gave for it; `resp.req_id` is the request's.
struct Reply {
  uint64_t id = 0;
  wire::CtlResponse resp;
};

// In the order the engine wanted them done. A write-ahead log record (LogOp)
// precedes the datagrams that depend on it: a durable driver appends the
// batch's records, and syncs local ones, before it sends its datagrams.
using Effect = std::variant<Datagram, LogOp, CompactionRequest, Change, MemberEvent, LogLine, Timer, Reply>;

// Lets std::visit take one lambda per alternative.
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace meshkv::node
