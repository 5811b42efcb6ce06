#include "node/engine.h"

#include <algorithm>

#include "node/engine_impl.h"
#include "common/crc32c.h"
#include "wire/codec.h"

namespace meshkv::node {

using wire::MemberState;

namespace {
constexpr uint64_t kMs = 1000;
constexpr size_t kMaxChanges = 65536;
}  // namespace

Engine::Impl::Impl(Config c, uint64_t uid, Endpoint addr, uint64_t seed, Now n)
    : cfg(std::move(c)),
      self_name(cfg.effective_id()),
      self_uid(uid),
      self_addr(addr),
      rng(seed),
      now(n),
      replica(uid, cfg.max_clock_skew_ms) {
  uid_names[uid] = self_name;
  wire_mtu = cfg.mtu;
  cfg.mtu -= kChecksumBytes;  // what a message may take; secure() changes it
  faults.drop = cfg.loss;
  durable = !cfg.data_dir.empty();
  const uint64_t t = now.mono_us;
  start_us = t;
  // Spread periodic work so that nodes started together do not tick together.
  auto jitter = [&](uint64_t ms) { return t + (rng() % (ms * kMs + 1)); };
  next_probe_us = jitter(cfg.probe_interval_ms);
  next_gossip_us = t + cfg.gossip_interval_ms * kMs;
  next_ae_us = jitter(cfg.anti_entropy_interval_ms);
  next_reconnect_us = t + alone_retry_ms * kMs;
  next_expire_us = t + 5000 * kMs;
}

void Engine::Impl::log(LogLevel level, std::string text) {
  if (logs.size() < 4096) logs.push_back({level, std::move(text)});
}

void Engine::Impl::send_raw(const Endpoint& to, const wire::Bytes& bytes, bool unbound_ok) {
  if (sealed) {
    Datagram d{to, {}};
    seal_to(to, bytes, unbound_ok, d.bytes);
    if (d.bytes.empty()) return;
    ++counters.datagrams_sent;
    counters.bytes_sent += d.bytes.size();
    outbox.push_back(std::move(d));
    return;
  }
  Datagram d{to, with_checksum(bytes)};
  ++counters.datagrams_sent;
  counters.bytes_sent += d.bytes.size();
  outbox.push_back(std::move(d));
}

wire::Bytes with_checksum(const wire::Bytes& message) {
  wire::Bytes out;
  out.reserve(message.size() + kChecksumBytes);
  out = message;
  const uint32_t c = store::crc32c(message.data(), message.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(c >> (8 * i)));
  return out;
}

void Engine::Impl::send(const Endpoint& to, wire::Message msg) {
  // Introductions may be sealed before we know the receiver's identity; a
  // Join goes with our Hello, so the answer can be sealed for us.
  const bool intro = std::holds_alternative<wire::Hello>(msg) || std::holds_alternative<wire::Join>(msg);
  if (sealed && std::holds_alternative<wire::Join>(msg)) send(to, hello(true));
  const auto type = static_cast<size_t>(wire::type_of(msg));
  wire::Bytes b = wire::encode(wire::Envelope{wire::kVersion, self_uid, std::move(msg)});
  ++counters.sent_by_type[type];
  counters.sent_bytes_by_type[type] += b.size();
  if (b.size() <= cfg.mtu) {
    send_raw(to, b, intro);
    return;
  }
  for (const auto& f : wire::fragment(self_uid, b, cfg.mtu)) send_raw(to, f);
}

Member* Engine::Impl::member_by_uid(uint64_t uid) {
  auto it = uid_names.find(uid);
  if (it == uid_names.end()) return nullptr;
  auto m = members.find(it->second);
  if (m == members.end() || m->second.uid != uid) return nullptr;
  return &m->second;
}

void Engine::Impl::log_local_write(const crdt::KeyedEntry& ke) {
  if (durable) log_ops.push_back(LogOp{LogOp::Kind::kEntry, true, ke, 0, 0, 0});
}

void Engine::Impl::record_change(const crdt::KeyedEntry& ke, bool local) {
  if (changes.size() >= kMaxChanges) {
    changes.pop_front();
    ++counters.queue_drops;
  }
  changes.push_back({ke.key, ke.entry, local});
  if (ke.entry.tombstone) tomb_fifo.emplace_back(now.wall_ms, ke.key);
}

void Engine::Impl::dispatch(const Endpoint& from, wire::Envelope env) {
  if (env.sender == self_uid) {
    ++counters.dropped;  // our own datagram looped back, or a forgery
    return;
  }
  if (env.sender != 0) heard_from(from, env.sender);
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Push>) {
          on_push(from, env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::Ack>) {
          on_ack(env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::Digest>) {
          on_digest(from, env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::ChunkMsg>) {
          on_chunk(env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::Ping>) {
          on_ping(from, env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::PingReq>) {
          on_ping_req(from, m);
        } else if constexpr (std::is_same_v<T, wire::PingAck>) {
          on_ping_ack(env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::Join>) {
          on_join(from, m);
        } else if constexpr (std::is_same_v<T, wire::Hello>) {
          on_hello(from, env.sender, m);
        } else if constexpr (std::is_same_v<T, wire::Members>) {
          for (const auto& u : m.updates) apply_update(u, &from);
        } else if constexpr (std::is_same_v<T, wire::Fragment>) {
          auto whole = reassembler.add(env.sender, m.xfer_id, m.index, m.count, m.bytes, now.mono_us);
          if (!whole) return;
          auto inner = wire::decode(*whole);
          if (!inner.ok() || std::holds_alternative<wire::Fragment>(inner->msg) ||
              inner->sender != env.sender) {
            ++counters.malformed;
            return;
          }
          dispatch(from, std::move(*inner));
        } else {
          ++counters.dropped;  // control messages belong on the TCP port
        }
      },
      env.msg);
}

// ---- fault injection -----------------------------------------------------------

std::string Engine::Impl::name_at(const Endpoint& addr) const {
  for (const auto& [name, m] : members) {
    if (m.addr == addr) return name;
  }
  return {};
}

bool Engine::Impl::faults_cover(const std::string& name) const {
  return faults.peers.empty() ||
         std::find(faults.peers.begin(), faults.peers.end(), name) != faults.peers.end();
}

void Engine::Impl::fault_out(Datagram d, std::vector<Datagram>& ready) {
  const std::string name = name_at(d.to);
  const auto& cut = faults.partition;
  if (!name.empty() && std::find(cut.begin(), cut.end(), name) != cut.end()) {
    ++counters.injected_drops;
    return;
  }
  if (!faults.applies_out() || !faults_cover(name)) {
    ready.push_back(std::move(d));
    return;
  }
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng) < faults.drop) {
    ++counters.injected_drops;
    return;
  }
  if (!d.bytes.empty() && u(rng) < faults.corrupt) {
    ++counters.injected_corrupts;
    d.bytes[rng() % d.bytes.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
  }
  const int copies = u(rng) < faults.dup ? 2 : 1;
  counters.injected_dups += static_cast<uint64_t>(copies - 1);
  for (int c = 0; c < copies; ++c) {
    const uint64_t delay_us =
        (faults.delay_ms + (faults.jitter_ms ? rng() % faults.jitter_ms : 0)) * kMs;
    if (delay_us == 0) {
      ready.push_back(d);
    } else {
      ++counters.injected_delays;
      delayed.emplace(now.mono_us + delay_us, d);
    }
  }
}

// ---- Engine ------------------------------------------------------------------

Engine::Engine(Config cfg, uint64_t uid, Endpoint self_addr, uint64_t seed, Now now)
    : impl_(std::make_unique<Impl>(std::move(cfg), uid, self_addr, seed, now)) {}
Engine::~Engine() = default;

void Engine::handle_datagram(const Endpoint& from, const uint8_t* data, size_t n, Now now) {
  Impl& s = *impl_;
  s.now = now;
  ++s.counters.datagrams_received;
  s.counters.bytes_received += n;
  if (s.faults.active()) {
    const std::string name = s.name_at(from);
    const auto& cut = s.faults.partition;
    const bool covered = s.faults.applies_in() && s.faults_cover(name);
    std::uniform_real_distribution<double> u(0, 1);
    if ((!name.empty() && std::find(cut.begin(), cut.end(), name) != cut.end()) ||
        (covered && u(s.rng) < s.faults.drop)) {
      ++s.counters.injected_drops;
      return;
    }
    if (covered && n > 0 && u(s.rng) < s.faults.corrupt) {
      ++s.counters.injected_corrupts;
      wire::Bytes copy(data, data + n);
      copy[s.rng() % n] ^= static_cast<uint8_t>(1u << (s.rng() % 8));
      s.receive(from, copy.data(), copy.size());
      return;
    }
  }
  s.receive(from, data, n);
}

void Engine::Impl::receive(const Endpoint& from, const uint8_t* data, size_t n) {
  if (n > wire_mtu) {
    ++counters.malformed;  // nobody in this mesh sends these
    return;
  }
  const size_t wire_bytes = n;
  wire::Bytes inner;
  if (sealed) {
    bool unbound = false;
    if (!open_sealed(from, data, n, inner, unbound)) return;
    data = inner.data();
    n = inner.size();
  } else {
    if (n < kChecksumBytes) {
      ++counters.malformed;
      return;
    }
    n -= kChecksumBytes;
    const uint32_t want = static_cast<uint32_t>(data[n]) | static_cast<uint32_t>(data[n + 1]) << 8 |
                          static_cast<uint32_t>(data[n + 2]) << 16 | static_cast<uint32_t>(data[n + 3]) << 24;
    if (store::crc32c(data, n) != want) {
      ++counters.bad_checksum;
      return;
    }
  }
  auto env = wire::decode(data, n);
  if (!env.ok()) {
    ++counters.malformed;
    log(LogLevel::kDebug, "malformed datagram from " + from.to_string() + ": " +
                              env.status().to_string());
    return;
  }
  const auto type = static_cast<size_t>(wire::type_of(env->msg));
  ++counters.received_by_type[type];
  counters.received_bytes_by_type[type] += wire_bytes;
  dispatch(from, std::move(*env));
}

void Engine::tick(Now now) {
  Impl& s = *impl_;
  s.now = now;
  const uint64_t t = now.mono_us;
  s.retransmit_due();
  s.suspicion_tick();
  if (s.probe.active || t >= s.next_probe_us) s.probe_tick();
  if (t >= s.next_gossip_us) s.gossip_tick();
  if (t >= s.next_reconnect_us) s.reconnect_tick();
  if (t >= s.next_gc_us) s.gc_tick();
  if (t >= s.next_ae_us) {
    s.next_ae_us = t + s.cfg.anti_entropy_interval_ms * kMs;
    auto peers = s.random_members(1, "");
    if (!peers.empty() && peers[0]->state == MemberState::kAlive) {
      s.send_digest(peers[0]->addr, false, s.cfg.ae_summaries ? peers[0] : nullptr);
    }
  }
  for (auto it = s.ae_followup.begin(); it != s.ae_followup.end();) {
    if (it->second > t) {
      ++it;
      continue;
    }
    auto m = s.members.find(it->first);
    if (m != s.members.end() && m->second.reachable()) s.send_digest(m->second.addr, true);
    it = s.ae_followup.erase(it);
  }
  if (t >= s.next_expire_us) {
    s.next_expire_us = t + 5000 * kMs;
    s.reassembler.expire(t / kMs);
  }
  for (auto it = s.relays.begin(); it != s.relays.end();) {
    it = it->second.expires_us <= t ? s.relays.erase(it) : std::next(it);
  }
}

uint64_t Engine::next_deadline_us() const {
  const Impl& s = *impl_;
  uint64_t d = std::min({s.next_probe_us, s.next_ae_us, s.next_reconnect_us, s.next_expire_us,
                         s.next_gc_us});
  if (!s.broadcasts.empty() || s.suspect_count > 0) d = std::min(d, s.next_gossip_us);
  if (s.probe.active) {
    d = std::min(d, s.probe.indirect_sent ? s.probe.fail_at_us : s.probe.indirect_at_us);
  }
  if (!s.retransmit_timers.empty()) d = std::min(d, s.retransmit_timers.top().first);
  if (s.push_due_us != 0) d = std::min(d, s.push_due_us);
  if (s.suspect_count > 0) {
    for (const auto& [name, m] : s.members) {
      if (m.state == MemberState::kSuspect) d = std::min(d, m.suspect_deadline_us);
    }
  }
  for (const auto& [name, when] : s.ae_followup) d = std::min(d, when);
  for (const auto& [seq, r] : s.relays) d = std::min(d, r.expires_us);
  if (!s.delayed.empty()) d = std::min(d, s.delayed.begin()->first);
  return d;
}

std::vector<Datagram> Engine::take_outbox() {
  Impl& s = *impl_;
  s.flush_pushes_gathered();
  std::vector<Datagram> out = std::exchange(s.outbox, {});
  if (!s.faults.active() && s.delayed.empty()) return out;
  std::vector<Datagram> ready;
  for (auto& d : out) {
    if (s.faults.active()) {
      s.fault_out(std::move(d), ready);
    } else {
      ready.push_back(std::move(d));
    }
  }
  while (!s.delayed.empty() && s.delayed.begin()->first <= s.now.mono_us) {
    ready.push_back(std::move(s.delayed.begin()->second));
    s.delayed.erase(s.delayed.begin());
  }
  return ready;
}

Status Engine::set_faults(Faults f) {
  if (Status st = f.validate(); !st.ok()) return st;
  impl_->faults = std::move(f);
  return Status::Ok();
}

const Faults& Engine::faults() const { return impl_->faults; }
std::vector<LogLine> Engine::take_logs() { return std::exchange(impl_->logs, {}); }
std::vector<Change> Engine::take_changes() {
  std::vector<Change> out(std::make_move_iterator(impl_->changes.begin()),
                          std::make_move_iterator(impl_->changes.end()));
  impl_->changes.clear();
  return out;
}

Result<crdt::KeyedEntry> Engine::set(std::string_view key, std::string_view value, Now now) {
  impl_->now = now;
  auto r = impl_->replica.write(key, value, now.wall_ms);
  if (r.ok()) {
    impl_->record_change(*r, true);
    impl_->log_local_write(*r);
    impl_->note_local_write(*r);
  }
  return r;
}

Result<crdt::KeyedEntry> Engine::del(std::string_view key, Now now) {
  impl_->now = now;
  auto r = impl_->replica.write(key, std::nullopt, now.wall_ms);
  if (r.ok()) {
    impl_->record_change(*r, true);
    impl_->log_local_write(*r);
    impl_->note_local_write(*r);
  }
  return r;
}

Result<uint64_t> Engine::traced_set(std::string_view key, std::string_view value, Now now) {
  Impl& s = *impl_;
  s.flush_pushes();  // earlier writes go in their own pushes
  auto w = set(key, value, now);
  if (!w.ok()) return w.status();
  s.flush_pushes();  // this write alone: its push's msg_seq names the trace
  Trace t;
  t.start_us = now.mono_us;
  for (const auto& [name, m] : s.members) {
    if (m.reachable()) t.acks.emplace_back(name, 0);
  }
  if (s.traces.size() >= 64) s.traces.erase(s.traces.begin());
  s.traces[s.msg_seq] = std::move(t);
  return s.msg_seq;
}

wire::Value Engine::trace_report(uint64_t id, Now now) const {
  auto it = impl_->traces.find(id);
  if (it == impl_->traces.end()) return nullptr;
  const Trace& t = it->second;
  wire::Value v = wire::Value::object();
  v.set("id", id);
  v.set("age_us", now.mono_us - t.start_us);
  wire::Value ms = wire::Value::list();
  for (const auto& [name, at] : t.acks) {
    wire::Value m = wire::Value::object();
    m.set("name", name);
    m.set("ack_us", at == 0 ? wire::Value(nullptr) : wire::Value(at - t.start_us));
    ms.push(std::move(m));
  }
  v.set("members", std::move(ms));
  return v;
}

std::vector<LogOp> Engine::take_log() { return std::exchange(impl_->log_ops, {}); }

bool Engine::take_compaction_request() { return std::exchange(impl_->want_compaction, false); }

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
  s.last_quorum_wall_ms = std::max(s.last_quorum_wall_ms, snap.quorum_ms);
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
      s.last_quorum_wall_ms = std::max(s.last_quorum_wall_ms, op.to);
      break;
  }
}

Snapshot Engine::snapshot() const {
  const Impl& s = *impl_;
  Snapshot snap;
  snap.id = s.self_name;
  snap.hlc = s.replica.clock().last();
  snap.vv = s.replica.vv();
  snap.quorum_ms = s.last_quorum_wall_ms;
  snap.entries.reserve(s.replica.map().size());
  s.replica.map().for_each([&](const std::string& k, const crdt::Entry& e) {
    snap.entries.push_back(crdt::KeyedEntry{k, e});
  });
  return snap;
}

void Engine::set_storage_info(wire::Value info) { impl_->storage_info = std::move(info); }

const crdt::Entry* Engine::get(std::string_view key) const { return impl_->replica.map().find(key); }

std::vector<std::pair<std::string, crdt::Entry>> Engine::list(std::string_view prefix) const {
  std::vector<std::pair<std::string, crdt::Entry>> out;
  impl_->replica.map().for_each([&](const std::string& k, const crdt::Entry& e) {
    if (!e.tombstone && k.compare(0, prefix.size(), prefix) == 0) out.emplace_back(k, e);
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void Engine::join(const std::vector<Endpoint>& seeds, Now now) {
  Impl& s = *impl_;
  s.now = now;
  for (const auto& e : seeds) {
    if (std::find(s.seeds.begin(), s.seeds.end(), e) == s.seeds.end()) s.seeds.push_back(e);
    if (e != s.self_addr) s.send(e, wire::Join{s.self_update()});
  }
}

void Engine::leave(Now now) {
  Impl& s = *impl_;
  s.now = now;
  s.flush_pushes();
  s.leaving = true;
  ++s.incarnation;
  const wire::MemberUpdate me{s.self_name, s.self_uid, s.self_addr, s.incarnation,
                              MemberState::kLeft};
  for (auto& [name, m] : s.members) {
    if (m.reachable()) {
      s.send_members(m.addr, {me});
      s.send_members(m.addr, {me});  // twice: a lossy link should still hear it
    }
  }
}

const crdt::Replica& Engine::replica() const { return impl_->replica; }
const Counters& Engine::counters() const { return impl_->counters; }
const Config& Engine::config() const { return impl_->cfg; }
const std::string& Engine::id() const { return impl_->self_name; }
uint64_t Engine::uid() const { return impl_->self_uid; }

std::string Engine::origin_name(uint64_t origin) const {
  auto it = impl_->uid_names.find(origin);
  return it == impl_->uid_names.end() ? std::string() : it->second;
}
Endpoint Engine::address() const { return impl_->self_addr; }

std::vector<std::string> Engine::alive_members() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : impl_->members) {
    if (m.state == MemberState::kAlive) out.push_back(name);
  }
  return out;
}

std::string Engine::member_state(std::string_view name) const {
  auto it = impl_->members.find(name);
  return it == impl_->members.end() ? "" : wire::member_state_name(it->second.state);
}

size_t Engine::pending_pushes() const {
  size_t n = 0;
  for (const auto& [name, m] : impl_->members) n += m.pending.size();
  return n;
}

}  // namespace meshkv::node
