// The engine: construction and wiring of its components, inputs, dispatch,
// and outputs. Local operations and views are in engine_ops.cc,
// introspect.cc and metrics.cc.
#include "node/engine.h"

#include <algorithm>

#include "node/engine_impl.h"

namespace meshkv::node {

namespace {
Config with_message_mtu(Config c) {
  c.mtu -= kChecksumBytes;  // what a message may take; secure() changes it
  return c;
}
}  // namespace

Engine::Impl::Impl(Config c, uint64_t uid, Endpoint addr, uint64_t seed, Now n)
    : wire_mtu(c.mtu),
      cfg(with_message_mtu(std::move(c))),
      self_name(cfg.effective_id()),
      self_uid(uid),
      self_addr(addr),
      durable(!cfg.data_dir.empty()),
      rng(seed),
      now(n),
      start_us(n.mono_us),
      replica(uid, cfg.max_clock_skew_ms),
      sealing(uid, self_name, now, sealing_hooks()),
      transport(cfg, wire_mtu, uid, now, rng, timers, sealing, [this](const Endpoint& a) {
        const Member* m = membership.at(a);
        return m ? m->name : std::string();
      }, logger()),
      // Membership, then anti-entropy: each draws its first jitter from rng.
      membership(cfg, {self_name, uid, addr}, now, rng, timers, membership_hooks()),
      replication(cfg, uid, now, replica, membership, timers, replication_hooks()),
      anti_entropy(cfg, now, rng, replica, membership, timers, anti_entropy_hooks()) {
  replica.clock().count_ahead_of(cfg.max_clock_offset_ms);
  if (cfg.max_clock_offset_ms == 0) guard.state = GuardState::kOff;
}

// The hooks below run only after construction: they may name any component.

LogFn Engine::Impl::logger() {
  return [this](LogLevel l, std::string t) { log(l, std::move(t)); };
}

Sealing::Hooks Engine::Impl::sealing_hooks() {
  return {&transport,
          [this](const Endpoint& a) {
            const Member* m = membership.at(a);
            return m ? m->uid : uint64_t{0};
          },
          [this](uint64_t u) { return membership.by_uid(u) != nullptr; },
          [this] { return membership.self_update(); }, logger()};
}

Membership::Hooks Engine::Impl::membership_hooks() {
  return {&transport, [this](uint64_t u, const Endpoint& a) { return sealing.admit(u, a); },
          [this](const MemberEvent& e) { member_changed(e); }, logger(),
          [this](const Member& m, size_t budget) { return anti_entropy.ride_along(m, budget); }};
}

Replication::Hooks Engine::Impl::replication_hooks() {
  return {&transport, [this](std::string_view m, uint64_t us) { membership.sample_rtt(m, us); },
          [this](const crdt::KeyedEntry& ke) { applied(ke, false); },
          [this](uint64_t uid, const Endpoint& from, uint64_t reconciled) {
            return anti_entropy.judging(uid, from, reconciled);
          },
          logger(),
          [this](std::string_view m, uint64_t first, uint64_t last) { on_pushes_acked(m, first, last); },
          [this](uint64_t first, uint64_t last) { return waited(first, last); },
          [this](std::string_view m, uint64_t sent_us) { membership.rto_expired(m, sent_us, now.mono_us); },
          [this] { return anti_entropy.reconciled(); }};
}

AntiEntropy::Hooks Engine::Impl::anti_entropy_hooks() {
  return {&transport, [this](const crdt::KeyedEntry& ke) { applied(ke, false); },
          [this](LogOp op) { journal(std::move(op)); }, [this] { out.compact(); }, logger()};
}

void Engine::Impl::log(LogLevel level, std::string text) { out.log(level, std::move(text)); }
void Engine::Impl::journal(LogOp op) { out.journal(std::move(op)); }

void Engine::Impl::finish() {
  settle_quarantine();
  if (!waits.empty() || !reads.empty()) settle_consistency();
  if (!holds.empty()) settle_holds();
  if (!gathering) replication.flush_gathered();
  transport.release(out);
}

void Engine::Impl::settle_quarantine() {
  auto put = replica.take_quarantined();
  auto left = replica.take_released();
  if (put.empty() && left.empty()) return;
  for (auto& ke : put) {
    ++quarantined_total;
    if (durable) journal(LogOp{LogOp::Kind::kQuarantine, false, ke, 0, 0, 0});
  }
  if (!put.empty()) {
    log(LogLevel::kWarn, "quarantined " + std::to_string(put.size()) + (put.size() == 1 ? " write" : " writes") +
                             " (first: key '" + put.front().key + "' by " + membership.name_of(put.front().entry.dot.origin) +
                             ") older than deletes collected while its writer was cut off; "
                             "see `meshkv quarantine list`");
  }
  size_t won = 0;
  for (auto& r : left) {
    if (durable) {
      crdt::KeyedEntry id{r.ke.key, {}};
      id.entry.dot = r.ke.entry.dot;
      journal(LogOp{LogOp::Kind::kRelease, false, std::move(id), 0, 0, 0});
    }
    if (r.won) ++won;
    if (r.won && !r.same) applied(r.ke, false);
  }
  if (left.empty()) return;
  log(LogLevel::kInfo, "released " + std::to_string(left.size()) + " quarantined " +
                           (left.size() == 1 ? "write" : "writes") + " now ordered against a live value (" +
                           std::to_string(won) + " won)");
}

void Engine::Impl::member_changed(const MemberEvent& e) {
  if (e.kind == MemberEvent::Kind::kRemoved) sealing.forget(e.uid);
  replication.on_member(e);
  anti_entropy.on_member(e);
  out.member(e);
}

void Engine::Impl::applied(const crdt::KeyedEntry& ke, bool local) {
  out.change({ke.key, ke.entry, local});
  anti_entropy.on_applied(ke);
  if (durable) journal(LogOp{LogOp::Kind::kEntry, local, ke, 0, 0, 0});
}

Result<crdt::KeyedEntry> Engine::Impl::write(std::string_view key, std::optional<std::string_view> value,
                                             Now n, uint64_t ttl_ms) {
  now = n;
  if (Status st = write_refusal(); !st.ok()) return st;
  std::optional<crdt::Entry> prev;
  if (durable) {
    if (crdt::EntryPtr e = replica.map().find(key)) prev = e->to_entry();
  }
  auto r = replica.write(key, value, n.wall_ms, ttl_ms);
  if (r.ok()) {
    if (durable) unsynced.push_back({r->key, r->entry.dot, std::move(prev)});
    applied(*r, true);
    replication.note_local_write(*r);
    if (replica.forced_ahead() > guard.forced_logged &&
        (guard.forced_log_us == 0 || now.mono_us - guard.forced_log_us >= 10'000'000)) {
      log(LogLevel::kWarn, "clock: a write of key '" + r->key + "' took this node's clock " +
                               std::to_string(r->entry.hlc.physical() - std::min(r->entry.hlc.physical(), n.wall_ms)) +
                               " ms ahead of its wall clock, to stay above the entry it replaced (a clock "
                               "that ran ahead wrote it); later writes here carry that time (" +
                               std::to_string(replica.forced_ahead()) + " such writes so far)");
      guard.forced_logged = replica.forced_ahead();
      guard.forced_log_us = now.mono_us;
    }
  }
  return r;
}

// ---- the clock-offset guard ---------------------------------------------------------
//
// Last-writer-wins trusts each writer's clock: a node whose clock runs an
// hour ahead wins every write of the same key for an hour, and its HLC is
// one the others refuse to adopt. Replica::write keeps a node's own writes
// above what it shows, but that drags its clock along; the guard stops the
// cause: the node whose clock disagrees with most of its peers refuses to
// write, and says why, until the clock is fixed. Entries it wrote before it
// was measured are still merged (the mesh must converge), and counted.

// Judged at most every 10 ms: neither a batch of writes nor a burst of
// timers (a forged list of thousands of suspects, each with its deadline)
// walks the member table once per event.
void Engine::Impl::judge_clock_if_stale() {
  if (guard.judged_us > now.mono_us || now.mono_us - guard.judged_us >= 10'000) judge_clock_now();
}

void Engine::Impl::judge_clock_now() {
  guard.judged_us = now.mono_us;
  guard.verdict = judge_clock(membership.current_offsets(), cfg.max_clock_offset_ms);
  const ClockVerdict& v = guard.verdict;
  const GuardState next = cfg.max_clock_offset_ms == 0 ? GuardState::kOff
                          : v.wrong                    ? GuardState::kRefusing
                          : v.judged < 2               ? GuardState::kUnjudged
                                                       : GuardState::kOk;
  if (next == guard.state) return;
  const GuardState was = guard.state;
  guard.state = next;
  guard.since_us = now.mono_us;
  const std::string limit = " (limit " + std::to_string(cfg.max_clock_offset_ms) + " ms)";
  if (next == GuardState::kRefusing) {
    log(LogLevel::kWarn, "clock: this node's clock is " + describe_offset(v) + limit +
                             "; local writes are refused until it is back within bounds (fix the clock: NTP)");
  } else if (was == GuardState::kRefusing) {
    log(LogLevel::kWarn, next == GuardState::kOk
                             ? "clock: back within " + std::to_string(cfg.max_clock_offset_ms) + " ms of " +
                                   std::to_string(v.judged - v.beyond) + " of " + std::to_string(v.judged) +
                                   " peers; local writes are accepted again"
                             : "clock: fewer than two peers to judge this node's clock by; local writes are "
                               "accepted again, unchecked");
  }
  if (next == GuardState::kUnjudged) guard.unchecked_warned = false;
}

std::string describe_offset(const ClockVerdict& v) {
  const int64_t ms = v.ahead_ms;
  return std::to_string(ms < 0 ? -ms : ms) + " ms " + (ms < 0 ? "behind " : "ahead of ") +
         std::to_string(v.beyond) + " of " + std::to_string(v.judged) + " peers";
}

std::string Engine::Impl::refusal_reason() {
  if (!storage_refusal.empty()) return storage_refusal;  // the write-ahead log fails (net/storage.h)
  judge_clock_if_stale();
  if (guard.state != GuardState::kRefusing) return "";
  return "this node's clock is " + describe_offset(guard.verdict) + " (limit " +
         std::to_string(cfg.max_clock_offset_ms) + " ms); fix its clock, see `meshkv peers`";
}

Status Engine::Impl::write_refusal() {
  std::string why = refusal_reason();
  if (why.empty() && guard.state == GuardState::kUnjudged && !guard.unchecked_warned) {
    guard.unchecked_warned = true;
    log(LogLevel::kWarn, "clock: writing with this node's clock unchecked: " +
                             std::to_string(guard.verdict.judged) +
                             " peers have a clock estimate, and at least two are needed to judge it");
  }
  if (why.empty()) return Status::Ok();
  if (!storage_refusal.empty()) {
    ++writes_refused;
  } else {
    ++guard.refused;
  }
  return Status::Unavailable("write refused: " + self_name + ": " + why);
}

void Engine::Impl::dispatch(const Endpoint& from, wire::Envelope env) {
  if (env.sender == self_uid) {
    transport.note_dropped();  // our own datagram looped back, or a forgery
    return;
  }
  if (env.sender != 0) membership.heard_from(from, env.sender);
  const uint64_t sender = env.sender;
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Push>) {
          replication.on_push(from, sender, m);
        } else if constexpr (std::is_same_v<T, wire::Ack>) {
          replication.on_ack(sender, m);
        } else if constexpr (std::is_same_v<T, wire::Digest>) {
          anti_entropy.on_digest(from, sender, m);
        } else if constexpr (std::is_same_v<T, wire::ChunkMsg>) {
          anti_entropy.on_chunk(from, sender, m);
        } else if constexpr (std::is_same_v<T, wire::Ping>) {
          membership.on_ping(from, sender, m);
          if (m.digest) anti_entropy.on_digest(from, sender, *m.digest);
        } else if constexpr (std::is_same_v<T, wire::PingReq>) {
          membership.on_ping_req(from, m);
        } else if constexpr (std::is_same_v<T, wire::PingAck>) {
          membership.on_ping_ack(sender, m);
        } else if constexpr (std::is_same_v<T, wire::Join>) {
          membership.on_join(from, m);
        } else if constexpr (std::is_same_v<T, wire::Members>) {
          membership.on_members(from, m);
        } else if constexpr (std::is_same_v<T, wire::Hello>) {
          on_hello(from, sender, m);
        } else if constexpr (std::is_same_v<T, wire::ReadReq>) {
          on_read_req(from, sender, m);
        } else if constexpr (std::is_same_v<T, wire::ReadResp>) {
          on_read_resp(sender, m);
        } else if constexpr (std::is_same_v<T, wire::Fragment>) {
          if (auto whole = transport.reassemble(sender, m)) dispatch(from, std::move(*whole));
        } else {
          transport.note_dropped();  // control messages belong on the TCP port
        }
      },
      env.msg);
}

void Engine::Impl::on_hello(const Endpoint& from, uint64_t sender, const wire::Hello& h) {
  if (auto proven = sealing.on_hello(from, sender, h)) {
    membership.apply_update(proven->update, &from);
    membership.note_identity(sender, proven->fingerprint);
  }
}

// ---- Engine: inputs and outputs -----------------------------------------------------

Engine::Engine(Config cfg, uint64_t uid, Endpoint self_addr, uint64_t seed, Now now)
    : impl_(std::make_unique<Impl>(std::move(cfg), uid, self_addr, seed, now)) {}
Engine::~Engine() = default;

void Engine::handle_datagram(const Endpoint& from, const uint8_t* data, size_t n, Now now) {
  Impl& s = *impl_;
  s.now = now;
  if (auto env = s.transport.receive(from, data, n)) s.dispatch(from, std::move(*env));
  s.deliver_held();
  s.finish();
}

void Engine::Impl::deliver_held() {
  for (const auto& d : transport.take_due_in()) {
    if (auto env = transport.receive_held(d)) dispatch(d.from, std::move(*env));
  }
}

void Engine::tick(Now now) {
  Impl& s = *impl_;
  s.now = now;
  s.replication.tick();
  s.membership.tick();
  s.anti_entropy.tick();
  s.transport.tick();
  s.deliver_held();
  s.judge_clock_if_stale();
  s.finish();
}

std::vector<Effect> Engine::take_effects() {
  // The probe timer is always set; the fallback is for form's sake.
  const Timer next = impl_->timers.next().value_or(Timer{~uint64_t{0}, TimerKind::kProbe});
  return impl_->out.take(next);
}

void Engine::gather_writes(bool on) { impl_->gathering = on; }

void Engine::pack_writes() {
  impl_->replication.flush_gathered();
  impl_->transport.release(impl_->out);
}

}  // namespace meshkv::node
