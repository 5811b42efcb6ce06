// The engine's local operations, durability, security and queries: each a
// thin call into the component that owns the state.
#include <algorithm>

#include "node/control.h"
#include "node/engine.h"
#include "node/engine_impl.h"

namespace meshkv::node {

using wire::MemberState;

// ---- local operations -------------------------------------------------------------

Result<crdt::KeyedEntry> Engine::set(std::string_view key, std::string_view value, Now now) {
  auto w = impl_->write(key, value, now);
  impl_->finish();
  return w;
}

Result<crdt::KeyedEntry> Engine::del(std::string_view key, Now now) {
  auto w = impl_->write(key, std::nullopt, now);
  impl_->finish();
  return w;
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

void Engine::load(const Snapshot& snap, Now now) {
  Impl& s = *impl_;
  s.now = now;
  // In (origin, seq) order: the per-origin index is then appended to, not
  // inserted into (out of order, 1M entries took minutes instead of a second).
  std::vector<const crdt::KeyedEntry*> order;
  order.reserve(snap.entries.size());
  for (const auto& ke : snap.entries) order.push_back(&ke);
  std::sort(order.begin(), order.end(), [](const auto* x, const auto* y) {
    return std::pair(x->entry.dot.origin, x->entry.dot.seq) < std::pair(y->entry.dot.origin, y->entry.dot.seq);
  });
  for (const auto* ke : order) s.replica.load_entry(ke->key, ke->entry);
  s.replica.load_vv(snap.vv);
  s.replica.clock().restore(snap.hlc);
  s.anti_entropy.restore_quorum_ms(snap.quorum_ms);
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
  }
}

Snapshot Engine::snapshot() const {
  const Impl& s = *impl_;
  Snapshot snap;
  snap.id = s.self_name;
  snap.hlc = s.replica.clock().last();
  snap.vv = s.replica.vv();
  snap.quorum_ms = s.anti_entropy.last_quorum_ms();
  snap.entries.reserve(s.replica.map().size());
  s.replica.map().for_each([&](const std::string& k, const crdt::Entry& e) {
    snap.entries.push_back(crdt::KeyedEntry{k, e});
  });
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
Status Engine::install_key(const crypto::ClusterKey& k) { return impl_->sealing.install_key(k); }
Status Engine::use_key(uint64_t id) { return impl_->sealing.use_key(id); }
Status Engine::remove_key(uint64_t id) { return impl_->sealing.remove_key(id); }
wire::Value Engine::security() const { return impl_->sealing.describe(impl_->cfg.insecure); }

// ---- queries ------------------------------------------------------------------------

const crdt::Entry* Engine::get(std::string_view key) const { return impl_->replica.map().find(key); }

std::vector<std::pair<std::string, crdt::Entry>> Engine::list(std::string_view prefix) const {
  std::vector<std::pair<std::string, crdt::Entry>> out;
  impl_->replica.map().for_each([&](const std::string& k, const crdt::Entry& e) {
    if (!e.tombstone && k.compare(0, prefix.size(), prefix) == 0) out.emplace_back(k, e);
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
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
}

void add(Counters& c, const Membership::Counters& m) {
  c.probes_sent = m.probes_sent;
  c.probe_failures = m.probe_failures;
  c.queue_drops += m.queue_drops;
}

void add(Counters& c, const Replication::Counters& r) {
  c.retransmits = r.retransmits;
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
  add(c, s.sealing.counters());
  add(c, s.membership.counters());
  add(c, s.replication.counters());
  add(c, s.anti_entropy.counters());
  return c;
}

}  // namespace meshkv::node
