// The protocol engine: a pure state machine. It never touches a socket, a
// clock or a random source of its own. It is fed datagrams, ticks and local
// operations, each with the current time, and it queues everything it wants
// done as effects (node/effects.h) for its driver (the Asio shell in src/net,
// the simulator in src/sim, tests) to take: datagrams to send, write-ahead
// log records, compaction requests, applied changes, member events, log
// lines, and the time of the next tick.
//
// The driver's loop:
//   engine.handle_datagram(from, bytes, now) / engine.tick(now) / engine.set(...)
//   for (auto& e : engine.take_effects()) std::visit(Overloaded{...}, e)
//     Datagram: send e.bytes to e.to;  Timer: arm one timer for e.at_us;  ...
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/endpoint.h"
#include "common/status.h"
#include "crdt/counter.h"
#include "crdt/orset.h"
#include "crdt/replica.h"
#include "node/config.h"
#include "node/consistency.h"
#include "node/effects.h"
#include "node/faults.h"
#include "node/persist.h"
#include "node/security.h"
#include "wire/bytes.h"
#include "wire/value.h"

namespace meshkv::node {

// Time as the driver sees it: a monotonic clock for timers and the wall clock
// for hybrid logical timestamps.
struct Now {
  uint64_t mono_us = 0;
  uint64_t wall_ms = 0;
};

struct Counters {
  // Messages by wire::MsgType (index = type number): count, and bytes of the
  // encoded message (before sealing; a received one as it arrived).
  std::array<uint64_t, 16> sent_by_type{}, sent_bytes_by_type{};
  std::array<uint64_t, 16> received_by_type{}, received_bytes_by_type{};
  uint64_t datagrams_sent = 0, datagrams_received = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t malformed = 0;      // failed to decode
  uint64_t bad_checksum = 0;   // unsealed datagrams damaged on the way
  uint64_t dropped = 0;        // decoded but refused (bad chunk, unknown sender...)
  uint64_t queue_drops = 0;    // bounded queues overflowed
  uint64_t fragments_dropped = 0;  // pieces refused or partial messages evicted or expired (reassembly bounds)
  uint64_t retransmits = 0;
  uint64_t retransmits_deferred = 0;  // expiries not resent: the member silent with many pushes in flight
  uint64_t push_gave_up = 0;   // retransmissions exhausted; anti-entropy repairs
  uint64_t duplicates = 0;     // pushes received twice (acked, not re-applied)
  uint64_t ae_rounds = 0;      // digests sent
  uint64_t chunks_sent = 0, chunks_received = 0;
  uint64_t probes_sent = 0, probe_failures = 0;
  // Fault injection (meshkv loss): datagrams dropped, duplicated, corrupted, delayed.
  uint64_t injected_drops = 0, injected_dups = 0, injected_corrupts = 0, injected_delays = 0;
  // Sealed meshes: datagrams refused before decoding, by reason.
  uint64_t unsealed = 0;        // not sealed, or sealed in an unknown format
  uint64_t auth_failed = 0;     // forged, damaged, or sealed with another key
  uint64_t unknown_key = 0;     // sealed with a key this node does not hold (or removed)
  uint64_t replayed = 0;        // counter seen before, too old, or stale clock
  uint64_t stale_session = 0;   // meant for an earlier process of this node
  uint64_t unknown_sender = 0;  // from a process that has not proven its identity
  uint64_t refused_peers = 0;   // identities outside allowed_peers, or bad certificates
  uint64_t awaiting_identity = 0;  // not sent: the receiver's identity is not known yet
  uint64_t control_refused = 0;    // control connections without (or with a wrong) key
  // Control connections closed by the caps on connections (net/server.h).
  uint64_t control_handshake_timeouts = 0;   // no handshake within the deadline
  uint64_t control_handshake_too_large = 0;  // a first frame over the pre-handshake limit
  uint64_t control_evicted = 0;              // closed to admit a new connection
  uint64_t control_rejected = 0;             // closed at once: every connection in use
};

// Why the shell closed a control connection (Engine::note_control_limit).
enum class ControlLimit : uint8_t { kHandshakeTimeout, kHandshakeTooLarge, kEvicted, kRejected };

// A datagram of an unsealed mesh is the message followed by the CRC-32C of
// it (4 bytes, little-endian): a bit flipped on the way is caught, where the
// message format alone could decode it as another valid message. Sealed
// meshes authenticate instead (node/security.h).
inline constexpr size_t kChecksumBytes = 4;
wire::Bytes with_checksum(const wire::Bytes& message);

class Engine {
 public:
  // `uid` is this process's identity and CRDT origin: random, never 0.
  // `seed` seeds the engine's own pseudo-random choices (which member to
  // probe...): the simulator passes a derived seed for determinism.
  Engine(Config cfg, uint64_t uid, Endpoint self_addr, uint64_t seed, Now now);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- inputs ----
  // These, and the local operations that write or send (set, del,
  // traced_set, join, leave), end by packing the local writes they made into
  // pushes (unless gathering, below) and queueing their datagrams.
  void handle_datagram(const Endpoint& from, const uint8_t* data, size_t n, Now now);
  void tick(Now now);

  // ---- output ----
  // Everything the engine wants done since the last call, in order; the last
  // effect is always the Timer for the next tick. Bounded when not taken:
  // log lines beyond 4096 are dropped, and changes beyond 65536 (oldest
  // first, counted as queue drops). LogOps appear only when
  // config().data_dir is set.
  std::vector<Effect> take_effects();

  // ---- gathering local writes ----
  // A driver that handles several requests per loop iteration can have their
  // writes leave together: with gather_writes(true), local writes wait for
  // pack_writes() instead of leaving at the end of each input call, and then
  // leave in as few pushes as fit. (Under load writes may wait up to 1 ms
  // more either way.) The Asio shell gathers the control requests of each
  // loop iteration this way.
  void gather_writes(bool on);
  void pack_writes();

  // ---- durability (when config().data_dir is set) ----
  // Rebuilding at start: the snapshot, then every logged operation after it.
  // Takes the entries' strings; decodes Snapshot::pending records on a
  // second thread as it goes, and fails (with the engine partly loaded: the
  // start must be refused) when one does not decode.
  Status load(Snapshot s, Now now);
  void replay(const LogOp& op, Now now);
  // The whole state, for a snapshot.
  Snapshot snapshot() const;
  // Shown by status under "storage" (the shell describes its files).
  void set_storage_info(wire::Value info);
  // The write-ahead log and the local writes it carries (net/storage.h):
  //   - writes_durable(): every local write so far is in the log as the
  //     sync policy requires; none of them can be withdrawn any more.
  //   - storage_failed(why): the log could not take the writes made since
  //     then. They are withdrawn (each key's previous entry is put back,
  //     unless a later write superseded it meanwhile) and do not leave in
  //     pushes; until storage_recovered(), every local write is refused
  //     ("write refused: NODE: why", Code::kUnavailable). Returns how many
  //     were withdrawn. The driver must not have sent anything that carries
  //     them (it holds datagrams until the sync, net/server.cc).
  void writes_durable();
  size_t storage_failed(std::string why, Now now);
  void storage_recovered(Now now);
  // Why local writes are refused ("" when they are not), and how many were.
  const std::string& storage_refusal() const;
  uint64_t writes_refused() const;

  // ---- security ----
  // Seals the mesh: call once, before any traffic. The MTU then includes the
  // sealing overhead.
  void secure(Security s);
  bool sealed() const;
  // Runtime key rotation: add a key (it opens at once), make one the key
  // that seals, or remove one that does not seal. State is unchanged on error.
  Status install_key(const crypto::ClusterKey& k);
  Status use_key(uint64_t id);
  Status remove_key(uint64_t id);
  // {sealed, identity, public_key, keys: [{id, primary}], allowed_peers}
  wire::Value security() const;
  // Prometheus text exposition of the engine's metrics (node/metrics.cc).
  std::string metrics(Now now) const;
  // The shell refused a control connection without the key (counted).
  void note_control_refused();
  // The shell closed a control connection by its caps (counted).
  void note_control_limit(ControlLimit why);

  // ---- local operations ----
  // A write; state is unchanged on error (too large, empty key, or refused
  // by the clock-offset guard: see write_refusal).
  // A value may expire: `ttl_ms` after the write's HLC (crdt::Entry::ttl_ms;
  // 0: never).
  // Keys beginning with a 0 byte are reserved (crdt/counter.h) and refused.
  // A set of a key that is a counter also resets the counter, and of a key
  // that is a set removes every member it holds (one key, one type: the
  // value replaces them). A del of a counter writes its reset, of a set the
  // removes of its members (and a tombstone if the key also holds a live
  // value); of anything else, a tombstone. Returns the last entry written
  // (a reset or remove under `key`).
  Result<crdt::KeyedEntry> set(std::string_view key, std::string_view value, Now now, uint64_t ttl_ms = 0);
  Result<crdt::KeyedEntry> del(std::string_view key, Now now);
  // ---- counters (crdt/counter.h) ----
  // Adds `delta` (negative: subtracts) to counter `key`: this node's part
  // gets its new running totals, one local write. Invalid, with nothing
  // written, when `key` reads as a value (a register: one key, one type),
  // is reserved or longer than crdt::kMaxCounterKeyBytes, `delta` is 0, or
  // a total would pass 2^64. Also refused as set is (write_refusal).
  // The view's pointers are valid until the next call that changes state.
  Result<crdt::CounterView> incr(std::string_view key, int64_t delta, Now now);
  // The counter `key` if the key reads as one at `wall_ms`: some origin
  // counted since the last reset, and the newest such part is newer (by
  // HLC) than any live value of the key. Otherwise nullopt.
  std::optional<crdt::CounterView> counter(std::string_view key, uint64_t wall_ms = 0) const;
  // Every key under `prefix` that reads as a counter, by key.
  std::map<std::string, crdt::CounterView, std::less<>> counters(std::string_view prefix,
                                                                uint64_t wall_ms = 0) const;
  // ---- add-wins sets (crdt/orset.h) ----
  // Adds each member to set `key`: this node's add entry of the member gets
  // its next add count, one local write per member (a member already there
  // is written too: the add is new, and survives removes that did not see
  // it). Removes: each present member gets this node's remove entry, the
  // add counts it holds; an absent member writes nothing. Both answer how
  // many members changed (newly present, or no longer present here). Invalid,
  // with nothing written, when `key` reads as a value or a counter (one key,
  // one type), is reserved or longer than crdt::kMaxSetKeyBytes, or a
  // member is empty or too large. Also refused as set is (write_refusal).
  Result<size_t> sadd(std::string_view key, const std::vector<std::string>& members, Now now);
  Result<size_t> srem(std::string_view key, const std::vector<std::string>& members, Now now);
  // The set `key` if the key reads as one at `wall_ms`: some member is
  // present, and the newest surviving add is newer (by HLC) than any live
  // value or counter of the key. Otherwise nullopt. The view's pointers are
  // valid until the next call that changes state.
  std::optional<crdt::SetView> orset(std::string_view key, uint64_t wall_ms = 0) const;
  // Whether `member` is in the set `key` (false when the key is no set).
  bool sismember(std::string_view key, std::string_view member, uint64_t wall_ms = 0) const;
  // Every key under `prefix` that reads as a set, by key.
  std::map<std::string, crdt::SetView, std::less<>> orsets(std::string_view prefix, uint64_t wall_ms = 0) const;
  // Every local write (set, del, traced_set, quarantine_apply) is refused
  // with Unavailable while the clock-offset guard judges this node's clock
  // wrong (Config::max_clock_offset_ms), or while its log fails
  // (storage_failed). This says whether it would be now.
  Status write_refusal(Now now);
  // Why every local write would be refused now, "" when none would be; unlike
  // write_refusal() it counts nothing and logs nothing (health checks ask it
  // at any rate).
  std::string writes_refused_because(Now now);
  // Whether this node should take traffic, for health checks (GET /ready,
  // `meshkv status --check`): "" when ready, else why not: "not joined" while
  // it was told to join (Config::join) and sees no member alive, or "writes
  // refused: ..." (writes_refused_because). Counts and logs nothing.
  std::string readiness(Now now);
  // A write whose acknowledgements are recorded per member: pushes it at
  // once and returns a trace id for trace_report(). The last 64 traces are kept.
  Result<uint64_t> traced_set(std::string_view key, std::string_view value, Now now);
  // {id, age_us, members: [{name, ack_us (null while unacknowledged)}]}, or
  // null for an unknown or expired id.
  wire::Value trace_report(uint64_t id, Now now) const;
  // ---- tunable consistency (node/consistency.h) ----
  // The seq of this node's latest local write (0: none yet).
  uint64_t last_local_seq() const;
  // Waits until `level` members (this node included) have this node's local
  // writes with seqs [first_seq, last_seq], for at most `timeout_ms`. The
  // members counted are those not left at the start. Returns 0 when they
  // have them already: `done` (the answer to the write) is then completed
  // and answered at once. Otherwise returns an id; the answer comes later as
  // a Reply effect with that id: `done` with {wait: {level, acked: [names],
  // ms}} in its body, or at the deadline kCtlNotFound (exit 1) naming the
  // members that had not acknowledged. The writes are never undone.
  // Unavailable when kMaxWaits waits are pending.
  Result<uint64_t> await_writes(Level level, uint64_t first_seq, uint64_t last_seq, uint64_t timeout_ms,
                                wire::CtlResponse& done, Now now);
  // A quorum read: asks every member not left for its entry of `key` (or,
  // with `list`, for its version vector) and answers, as a Reply effect
  // with the returned id, once `level` members (this node included) did:
  //   key:  the winner by (hlc, origin) among the answers and this node's
  //         entry, as the get op answers; members that answered with an
  //         older entry (or none) are sent the winner (read repair), and so
  //         is this node. kCtlNotFound if the winner is absent or deleted.
  //   list: this node catches up (anti-entropy pulls) until its vector
  //         covers the vector of each member counted, then lists `key` as a
  //         prefix as the list op answers.
  // kCtlUnavailable (exit 3) if too few answer within `timeout_ms`.
  Result<uint64_t> quorum_read(Level level, bool list, std::string key, uint64_t timeout_ms, uint64_t req_id,
                               Now now);
  // How current this node's answers are: ms since it was last known to
  // hold everything each reachable member had incorporated (from their
  // digests), the oldest over those members; 0 with no reachable member;
  // nullopt while some reachable member was never known to be covered.
  std::optional<uint64_t> staleness_ms(Now now) const;

  // ---- backpressure ----
  // The answer `done` to a local write request (set, del, mset), held while
  // replication is congested: the push queue toward a member that is alive
  // and answering holds 512 pushes or more (Replication::congested;
  // suspect, dead and silent members never hold writers back). Returns 0
  // when it is not congested (answer `done` now). Otherwise an id: the answer
  // comes as a Reply effect with that id once no such queue is at the mark,
  // or after `hold_ms` at most, with "slowed_ms" (how long it was held) in
  // its body. The write is made either way; a client that sends its next
  // write after the answer is slowed to the pace the members take writes.
  // More than kMaxWaits held answers are not held (answered now).
  uint64_t hold_write(uint64_t hold_ms, wire::CtlResponse& done, Now now);

  // ---- quarantine (crdt/replica.h: writes that could not be ordered
  // against deletes collected while their writer was cut off) ----
  // [{key, value (absent for a delete), deleted, hlc, writer, origin, seq}],
  // by key; at most `limit` entries.
  wire::Value quarantine(std::string_view prefix, size_t limit) const;
  // Makes the newest quarantined write of `key` the key's value again, as a
  // new local write (a delete stays a delete), and empties the key's
  // quarantine. NotFound when nothing of `key` is in quarantine.
  Result<crdt::KeyedEntry> quarantine_apply(std::string_view key, Now now);
  // Drops the quarantined writes of `key` (every key when empty): how many.
  size_t quarantine_drop(std::string_view key, Now now);
  // The winning entry, tombstones and expired writes included (callers
  // treat them as absent: live()).
  crdt::EntryPtr get(std::string_view key) const;
  // The entry of `key` if it reads as a live value at wall time `wall_ms`
  // (neither a tombstone nor expired by this node's HLC reading then; 0: by
  // the clock's last timestamp; not shadowed by a newer counter or set of
  // the key, see counter() and orset()), else nullptr. Internal keys never read as live.
  crdt::EntryPtr live(std::string_view key, uint64_t wall_ms = 0) const;
  // Live values under `prefix` (at `wall_ms`, as live()), sorted by key;
  // counters are not among them (counters()).
  std::vector<std::pair<std::string, crdt::Entry>> list(std::string_view prefix, uint64_t wall_ms = 0) const;
  // Contacts seeds (also used by `--join` at start).
  void join(const std::vector<Endpoint>& seeds, Now now);
  // Announces a graceful leave to every member.
  void leave(Now now);
  // Removes a suspect, dead or left member here and, by telling them, on
  // every other member (meshkv forget): {name, address, uid, state (before),
  // incarnation}. NotFound for a name that is no member; Invalid for this
  // node and for a member that is alive. See Membership::forget.
  Result<wire::Value> forget(std::string_view name, Now now);
  // Replaces the injected faults; state is unchanged on error.
  Status set_faults(Faults f);
  const Faults& faults() const;

  // ---- introspection (status, peers, clock; tests) ----
  wire::Value status(Now now) const;
  // The other members (the control op `peers` puts self_member() first).
  wire::Value peers(Now now) const;
  wire::Value self_member(Now now) const;
  wire::Value clock() const;
  const crdt::Replica& replica() const;
  const Counters& counters() const;
  const Config& config() const;
  const std::string& id() const;
  uint64_t uid() const;
  // The name of the member whose process wrote with `origin`, or "".
  std::string origin_name(uint64_t origin) const;
  Endpoint address() const;
  // Names of members this node considers alive (self excluded).
  std::vector<std::string> alive_members() const;
  // The state ("alive", "suspect", "dead", "left") of a member, or "" if unknown.
  std::string member_state(std::string_view name) const;
  size_t pending_pushes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Status load_pending(Snapshot& snap);
};

}  // namespace meshkv::node
