// The engine's local operations, durability, security and queries: each a
// thin call into the component that owns the state.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "node/control.h"
#include "node/engine.h"
#include "node/control.h"
#include "node/engine_impl.h"

namespace meshkv::node {

using wire::MemberState;

// ---- local operations -------------------------------------------------------------

Result<crdt::KeyedEntry> Engine::set(std::string_view key, std::string_view value, Now now, uint64_t ttl_ms) {
  if (Status st = crdt::check_user_key(key); !st.ok()) return st;
  // The value replaces a counter of the key: the counter is reset first, so
  // that it reads as absent (node/counters.cc).
  if (Status st = impl_->reset_counter(key, now); !st.ok()) {
    impl_->finish();
    return st;
  }
  // And a set's members are removed (an add it did not see survives).
  if (auto c = impl_->clear_set(key, now); !c.ok()) {
    impl_->finish();
    return c.status();
  }
  auto w = impl_->write(key, value, now, ttl_ms);
  impl_->finish();
  return w;
}

Result<crdt::KeyedEntry> Engine::del(std::string_view key, Now now) {
  if (Status st = crdt::check_user_key(key); !st.ok()) return st;
  const bool counter = crdt::read_counter(impl_->replica.map(), key).live;
  std::optional<crdt::KeyedEntry> reset;
  if (counter) {
    auto r = impl_->write_reset(key, now);
    if (!r.ok()) {
      impl_->finish();
      return r.status();
    }
    reset = std::move(*r);
  }
  // A set's del removes every member it holds: srem of them all, so that
  // an add it did not see (made concurrently elsewhere) survives.
  auto cleared = impl_->clear_set(key, now);
  if (!cleared.ok()) {
    impl_->finish();
    return cleared.status();
  }
  if (*cleared) reset = std::move(**cleared);
  // A counter's or set's del leaves the register alone unless it holds a
  // live value too (a set and an increment that raced): del removes
  // whatever the key shows, whichever type wins.
  if (reset && impl_->replica.live(key, now.wall_ms) == nullptr) {
    impl_->finish();
    reset->key = std::string(key);  // the answer names the counter, not its reset
    return *reset;
  }
  auto w = impl_->write(key, std::nullopt, now);
  impl_->finish();
  return w;
}

// ---- the write-ahead log's verdict on local writes ----------------------------------

void Engine::writes_durable() { impl_->unsynced.clear(); }

size_t Engine::storage_failed(std::string why, Now now) {
  Impl& s = *impl_;
  s.now = now;
  s.storage_refusal = std::move(why);
  auto undo = std::exchange(s.unsynced, {});
  if (undo.empty()) return 0;
  size_t withdrawn = 0;
  // Newest first: a key written twice gets back what preceded both.
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    if (!s.replica.retract(it->key, it->dot, it->prev)) continue;
    ++withdrawn;
    crdt::Entry shown;
    if (it->prev) {
      shown = *it->prev;
    } else {  // the key is absent again: watchers see it go
      shown.dot = it->dot;
      shown.tombstone = true;
    }
    s.out.change({it->key, std::move(shown), false});
  }
  s.replication.retract(undo.front().dot.seq);
  s.finish();
  return withdrawn;
}

void Engine::storage_recovered(Now now) {
  impl_->now = now;
  impl_->storage_refusal.clear();
}

const std::string& Engine::storage_refusal() const { return impl_->storage_refusal; }
uint64_t Engine::writes_refused() const { return impl_->writes_refused; }

Status Engine::write_refusal(Now now) {
  impl_->now = now;
  return impl_->write_refusal();
}

std::string Engine::writes_refused_because(Now now) {
  impl_->now = now;
  return impl_->refusal_reason();
}

std::string Engine::readiness(Now now) {
  // A node with nobody to join (the first of a mesh) is joined by itself.
  if (!impl_->cfg.join.empty() && alive_members().empty()) {
    return "not joined: no member seen alive yet";
  }
  const std::string why = writes_refused_because(now);
  return why.empty() ? "" : "writes refused: " + why;
}

wire::Value Engine::quarantine(std::string_view prefix, size_t limit) const {
  const Impl& s = *impl_;
  wire::Value out = wire::Value::list();
  const auto& q = s.replica.quarantine();
  size_t n = 0;
  for (auto it = q.lower_bound(prefix); it != q.end() && it->first.starts_with(prefix); ++it) {
    for (const auto& e : it->second) {
      if (n++ >= limit) return out;
      wire::Value v = wire::Value::object();
      v.set("key", it->first);
      if (!e.tombstone) v.set("value", e.value);
      v.set("deleted", e.tombstone);
      v.set("hlc", format_hlc(e.hlc));
      v.set("writer", origin_name(e.dot.origin));
      v.set("origin", format_uid(e.dot.origin));
      v.set("seq", e.dot.seq);
      out.push(std::move(v));
    }
  }
  return out;
}

Result<crdt::KeyedEntry> Engine::quarantine_apply(std::string_view key, Now now) {
  Impl& s = *impl_;
  s.now = now;
  const auto& q = s.replica.quarantine();
  auto it = q.find(key);
  if (it == q.end() || it->second.empty()) {
    return Status::NotFound("nothing of key '" + std::string(key) + "' is in quarantine");
  }
  const crdt::Entry newest = it->second.back();  // each key's are in (hlc, origin) order
  // A new write, above the clock: it makes the key present, which orders
  // the quarantined entries against it, and they all lose (finish() logs
  // and journals their release).
  auto w = newest.tombstone ? s.write(key, std::nullopt, now) : s.write(key, newest.value, now, newest.ttl_ms);
  if (w.ok()) {
    s.log(LogLevel::kInfo, "applied the quarantined write of key '" + std::string(key) + "' as a new write");
  }
  s.finish();
  return w;
}

size_t Engine::quarantine_drop(std::string_view key, Now now) {
  Impl& s = *impl_;
  s.now = now;
  std::vector<std::string> keys;
  if (key.empty()) {
    for (const auto& [k, es] : s.replica.quarantine()) keys.push_back(k);
  } else {
    keys.emplace_back(key);
  }
  size_t n = 0;
  for (const auto& k : keys) {
    n += s.replica.unquarantine(k, crdt::Dot{}).size();
    if (s.durable) s.journal(LogOp{LogOp::Kind::kRelease, false, crdt::KeyedEntry{k, {}}, 0, 0, 0});
  }
  if (n > 0) s.log(LogLevel::kInfo, "dropped " + std::to_string(n) + " quarantined writes");
  s.finish();
  return n;
}

Result<uint64_t> Engine::traced_set(std::string_view key, std::string_view value, Now now) {
  Impl& s = *impl_;
  s.replication.flush();  // earlier writes go in their own pushes
  auto w = s.write(key, value, now);
  if (!w.ok()) {
    s.finish();
    return w.status();
  }
  s.replication.flush();  // this write alone: its push's msg_seq names the trace
  const uint64_t id = s.replication.trace_last_push();
  s.finish();
  return id;
}

wire::Value Engine::trace_report(uint64_t id, Now now) const {
  return impl_->replication.trace_report(id, now.mono_us);
}

void Engine::join(const std::vector<Endpoint>& seeds, Now now) {
  impl_->now = now;
  impl_->anti_entropy.note_join();
  impl_->membership.join(seeds);
  impl_->finish();
}

void Engine::leave(Now now) {
  Impl& s = *impl_;
  s.now = now;
  s.replication.flush();
  s.membership.leave();
  s.finish();
}

Result<wire::Value> Engine::forget(std::string_view name, Now now) {
  Impl& s = *impl_;
  s.now = now;
  auto was = s.membership.forget(name);
  s.finish();
  if (!was.ok()) return was.status();
  wire::Value v = wire::Value::object();
  v.set("name", was->name);
  v.set("address", was->addr.to_string());
  v.set("uid", format_uid(was->uid));
  v.set("state", wire::member_state_name(was->state));
  v.set("incarnation", was->incarnation);
  return v;
}

Status Engine::set_faults(Faults f) { return impl_->transport.set_faults(std::move(f)); }
const Faults& Engine::faults() const { return impl_->transport.faults(); }

// ---- durability ---------------------------------------------------------------------

namespace {
// The order snapshots are written and loaded in (see Engine::load).
bool by_dot(const crdt::KeyedEntry& x, const crdt::KeyedEntry& y) {
  return std::pair(x.entry.dot.origin, x.entry.dot.seq) < std::pair(y.entry.dot.origin, y.entry.dot.seq);
}
}  // namespace

Status Engine::load(Snapshot snap, Now now) {
  Impl& s = *impl_;
  s.now = now;
  // In (origin, seq) order: the per-origin index is then appended to, not
  // inserted into (out of order, 1M entries took minutes instead of a second).
  // Snapshots are written in that order (snapshot() below); older ones are
  // sorted here.
  s.replica.reserve(snap.entries.size() + snap.pending_entries);
  if (!snap.pending.empty()) {
    if (Status st = load_pending(snap); !st.ok()) return st;
  } else if (std::is_sorted(snap.entries.begin(), snap.entries.end(), by_dot)) {
    for (auto& ke : snap.entries) s.replica.load_entry(std::move(ke.key), std::move(ke.entry));
  } else {
    std::vector<crdt::KeyedEntry*> order;
    order.reserve(snap.entries.size());
    for (auto& ke : snap.entries) order.push_back(&ke);
    std::sort(order.begin(), order.end(), [&](const auto* x, const auto* y) { return by_dot(*x, *y); });
    for (auto* ke : order) s.replica.load_entry(std::move(ke->key), std::move(ke->entry));
  }
  snap.entries = {};  // its strings are the map's now
  s.replica.load_vv(snap.vv);
  s.replica.clock().restore(snap.hlc);
  s.anti_entropy.restore_quorum_ms(snap.quorum_ms);
  s.replica.raise_horizon(crdt::Hlc{snap.horizon});
  s.anti_entropy.restore_reconciled(snap.reconciled);
  for (const auto& ke : snap.quarantine) s.replica.quarantine_entry(ke.key, ke.entry);
  for (const auto& [name, h] : snap.excluded) s.anti_entropy.restore_excluded(name, h);
  for (const auto& name : snap.roster) s.anti_entropy.restore_roster(name, true);
  return Status::Ok();
}

// The entries of a snapshot as read from disk, decoded as views of its
// records and copied once, into the map's arena. (A second thread used to
// decode them into strings while this one loaded them; the map now copies
// the bytes anyway, and freeing a million strings of another thread's
// allocator cost more than decoding in place saves.) Entries in (origin,
// seq) order are loaded as they come, as snapshots are written; any others
// are sorted and loaded at the end.
Status Engine::load_pending(Snapshot& snap) {
  Impl& s = *impl_;
  const SnapshotCounts counts{snap.pending_entries, snap.pending_quarantined};
  std::vector<EntryRef> entries, quarantine;
  std::vector<crdt::KeyedEntry> late;
  std::pair<crdt::Origin, uint64_t> last{0, 0};
  for (size_t i = 0; i < snap.pending.size(); ++i) {
    if (Status st = decode_snapshot_views(snap.pending[i], i + 1, counts, entries, quarantine); !st.ok()) return st;
    for (const EntryRef& ke : entries) {
      const std::pair<crdt::Origin, uint64_t> d{ke.entry.dot.origin, ke.entry.dot.seq};
      if (d > last) {
        last = d;
        s.replica.load_entry(ke.key, ke.entry);
      } else {
        late.push_back(crdt::KeyedEntry{std::string(ke.key), ke.entry.to_entry()});
      }
    }
    for (const EntryRef& ke : quarantine) {
      snap.quarantine.push_back(crdt::KeyedEntry{std::string(ke.key), ke.entry.to_entry()});
    }
  }
  std::sort(late.begin(), late.end(), by_dot);
  for (auto& ke : late) s.replica.load_entry(std::move(ke.key), std::move(ke.entry));
  snap.pending.clear();
  snap.raw.reset();
  return Status::Ok();
}

void Engine::replay(const LogOp& op, Now now) {
  Impl& s = *impl_;
  s.now = now;
  switch (op.kind) {
    case LogOp::Kind::kEntry:
      s.replica.apply_entry(op.ke.key, op.ke.entry, now.wall_ms);
      s.replica.clock().restore(op.ke.entry.hlc);
      break;
    case LogOp::Kind::kRange:
      s.replica.claim_range(op.origin, op.from, op.to);
      break;
    case LogOp::Kind::kQuorum:
      s.anti_entropy.restore_quorum_ms(op.to);
      break;
    case LogOp::Kind::kHorizon:
      s.replica.raise_horizon(crdt::Hlc{op.to});
      s.anti_entropy.restore_reconciled(op.from);
      break;
    case LogOp::Kind::kQuarantine:
      s.replica.quarantine_entry(op.ke.key, op.ke.entry);
      break;
    case LogOp::Kind::kRelease:
      s.replica.unquarantine(op.ke.key, op.ke.entry.dot);
      break;
    case LogOp::Kind::kExcluded:
      s.anti_entropy.restore_excluded(op.ke.key, op.to);
      break;
    case LogOp::Kind::kRoster:
      s.anti_entropy.restore_roster(op.ke.key, op.to != 0);
      break;
  }
  // Replaying repeats what the log goes on to say: nothing to report twice.
  s.replica.take_released();
  s.replica.take_quarantined();
}

Snapshot Engine::snapshot() const {
  const Impl& s = *impl_;
  Snapshot snap;
  snap.id = s.self_name;
  snap.hlc = s.replica.clock().last();
  // Retired origins are saved as the rows they stand for: a node restarted
  // from this snapshot must still count their writes as covered (or a late
  // copy of one would be taken for news: a deleted value back), and retires
  // them again as its peers' digests tell it (node/retire.cc).
  snap.vv = s.replica.vv();
  for (const auto& [o, f] : s.replica.context().retired()) snap.vv.raise(o, f);
  snap.quorum_ms = s.anti_entropy.last_quorum_ms();
  // In (origin, seq) order, which load() then takes as it comes.
  snap.entries.reserve(s.replica.map().size());
  for (const crdt::Origin o : s.replica.map().origins()) {
    s.replica.map().scan_origin(o, 0, [&](std::string_view k, const crdt::EntryView& e) {
      snap.entries.push_back(crdt::KeyedEntry{std::string(k), e.to_entry()});
      return true;
    });
  }
  snap.horizon = s.replica.horizon().raw;
  snap.reconciled = s.anti_entropy.reconciled();
  for (const auto& [k, es] : s.replica.quarantine()) {
    for (const auto& e : es) snap.quarantine.push_back(crdt::KeyedEntry{k, e});
  }
  for (const auto& [name, h] : s.anti_entropy.excluded()) snap.excluded.emplace_back(name, h);
  for (const auto& name : s.anti_entropy.roster()) snap.roster.push_back(name);
  return snap;
}

void Engine::set_storage_info(wire::Value info) { impl_->storage_info = std::move(info); }

// ---- security -----------------------------------------------------------------------

void Engine::secure(Security s) {
  Impl& i = *impl_;
  if (s.keys.empty()) return;
  i.cfg.mtu = i.wire_mtu - kSealedOverhead;
  i.sealing.enable(std::move(s), i.rng);
}

bool Engine::sealed() const { return impl_->sealing.enabled(); }
void Engine::note_control_refused() { impl_->sealing.note_control_refused(); }
void Engine::note_control_limit(ControlLimit why) {
  Sealing::Counters& c = impl_->sealing.control_counters();
  switch (why) {
    case ControlLimit::kHandshakeTimeout: ++c.control_handshake_timeouts; break;
    case ControlLimit::kHandshakeTooLarge: ++c.control_handshake_too_large; break;
    case ControlLimit::kEvicted: ++c.control_evicted; break;
    case ControlLimit::kRejected: ++c.control_rejected; break;
  }
}
Status Engine::install_key(const crypto::ClusterKey& k) { return impl_->sealing.install_key(k); }
Status Engine::use_key(uint64_t id) { return impl_->sealing.use_key(id); }
Status Engine::remove_key(uint64_t id) { return impl_->sealing.remove_key(id); }
wire::Value Engine::security() const { return impl_->sealing.describe(impl_->cfg.insecure); }

// ---- queries ------------------------------------------------------------------------

crdt::EntryPtr Engine::get(std::string_view key) const { return impl_->replica.map().find(key); }

crdt::EntryPtr Engine::live(std::string_view key, uint64_t wall_ms) const {
  if (crdt::internal_key(key)) return nullptr;
  if (impl_->replica.live(key, wall_ms) == nullptr) return nullptr;
  return read_key(impl_->replica, key, wall_ms).value;
}

std::vector<std::pair<std::string, crdt::Entry>> Engine::list(std::string_view prefix, uint64_t wall_ms) const {
  return live_values(impl_->replica, prefix, wall_ms);
}

const crdt::Replica& Engine::replica() const { return impl_->replica; }
const Config& Engine::config() const { return impl_->cfg; }
const std::string& Engine::id() const { return impl_->self_name; }
uint64_t Engine::uid() const { return impl_->self_uid; }
std::string Engine::origin_name(uint64_t origin) const { return impl_->membership.name_of(origin); }
Endpoint Engine::address() const { return impl_->self_addr; }

std::vector<std::string> Engine::alive_members() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : impl_->membership.members()) {
    if (m.state == MemberState::kAlive) out.push_back(name);
  }
  return out;
}

std::string Engine::member_state(std::string_view name) const {
  const Member* m = impl_->membership.find(name);
  return m ? wire::member_state_name(m->state) : "";
}

size_t Engine::pending_pushes() const { return impl_->replication.pending(); }

// Each component counts what it sees; the public view is their sum.
namespace {
void add(Counters& c, const Transport::Counters& t) {
  c.sent_by_type = t.sent_by_type;
  c.sent_bytes_by_type = t.sent_bytes_by_type;
  c.received_by_type = t.received_by_type;
  c.received_bytes_by_type = t.received_bytes_by_type;
  c.datagrams_sent = t.datagrams_sent;
  c.datagrams_received = t.datagrams_received;
  c.bytes_sent = t.bytes_sent;
  c.bytes_received = t.bytes_received;
  c.malformed += t.malformed;
  c.bad_checksum = t.bad_checksum;
  c.dropped += t.dropped;
  c.injected_drops = t.injected_drops;
  c.injected_dups = t.injected_dups;
  c.injected_corrupts = t.injected_corrupts;
  c.injected_delays = t.injected_delays;
}

void add(Counters& c, const Sealing::Counters& s) {
  c.malformed += s.malformed;
  c.dropped += s.dropped;
  c.unsealed = s.unsealed;
  c.auth_failed = s.auth_failed;
  c.unknown_key = s.unknown_key;
  c.replayed = s.replayed;
  c.stale_session = s.stale_session;
  c.unknown_sender = s.unknown_sender;
  c.refused_peers = s.refused_peers;
  c.awaiting_identity = s.awaiting_identity;
  c.control_refused = s.control_refused;
  c.control_handshake_timeouts = s.control_handshake_timeouts;
  c.control_handshake_too_large = s.control_handshake_too_large;
  c.control_evicted = s.control_evicted;
  c.control_rejected = s.control_rejected;
}

void add(Counters& c, const Membership::Counters& m) {
  c.probes_sent = m.probes_sent;
  c.probe_failures = m.probe_failures;
  c.queue_drops += m.queue_drops;
}

void add(Counters& c, const Replication::Counters& r) {
  c.retransmits = r.retransmits;
  c.retransmits_deferred = r.retransmits_deferred;
  c.push_gave_up = r.push_gave_up;
  c.duplicates = r.duplicates;
  c.dropped += r.dropped;
  c.queue_drops += r.queue_drops;
}

void add(Counters& c, const AntiEntropy::Counters& a) {
  c.ae_rounds = a.ae_rounds;
  c.chunks_sent = a.chunks_sent;
  c.chunks_received = a.chunks_received;
  c.dropped += a.dropped;
}
}  // namespace

const Counters& Engine::counters() const {
  const Impl& s = *impl_;
  Counters& c = s.counters_view;
  c = Counters{};
  c.queue_drops = s.out.changes_dropped();
  add(c, s.transport.counters());
  c.fragments_dropped = s.transport.fragments_dropped();
  add(c, s.sealing.counters());
  add(c, s.membership.counters());
  add(c, s.replication.counters());
  add(c, s.anti_entropy.counters());
  return c;
}

}  // namespace meshkv::node
