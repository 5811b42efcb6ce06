// Membership and failure detection in the manner of SWIM: a member is probed
// directly, then indirectly through others; if nobody reaches it, it becomes
// suspect and is declared dead only if it does not refute in time. Updates
// spread by piggybacking on probes and by periodic gossip; the rules below
// decide which of two statements about a member is newer.
#include <algorithm>

#include "node/engine_impl.h"

namespace meshkv::node {

using wire::MemberState;
using wire::MemberUpdate;

namespace {
constexpr uint64_t kMs = 1000;
constexpr size_t kGossipFanout = 3;
constexpr size_t kPiggybackBytes = 400;
constexpr uint64_t kWallEveryUs = 2000 * 1000;
// Bounds on what datagrams can make a node remember. Beyond them new members
// and relay requests are refused (counted as queue drops).
constexpr size_t kMaxMembers = 4096;
constexpr size_t kMaxRelays = 1024;

int rank(MemberState s) {
  switch (s) {
    case MemberState::kAlive: return 0;
    case MemberState::kSuspect: return 1;
    case MemberState::kDead: return 2;
    case MemberState::kLeft: return 3;
  }
  return 0;
}

// Whether `u` is news compared to what we hold: a newer incarnation, or the
// same incarnation with a graver state.
bool supersedes(const MemberUpdate& u, const Member& cur) {
  if (u.incarnation != cur.incarnation) return u.incarnation > cur.incarnation;
  return rank(u.state) > rank(cur.state);
}

size_t update_size(const MemberUpdate& u) { return u.name.size() + 40; }
}  // namespace

MemberUpdate Engine::Impl::self_update() const {
  return {self_name, self_uid, self_addr, incarnation,
          leaving ? MemberState::kLeft : MemberState::kAlive};
}

size_t Engine::Impl::live_count() const { return 1 + reachable_count; }

void Engine::Impl::queue_broadcast(const MemberUpdate& u) {
  broadcasts.erase(std::remove_if(broadcasts.begin(), broadcasts.end(),
                                  [&](const Broadcast& b) { return b.update.name == u.name; }),
                   broadcasts.end());
  broadcasts.push_back({u, gossip_transmits(live_count())});
  next_gossip_us = std::min(next_gossip_us, now.mono_us);  // spread news at once
}

std::vector<MemberUpdate> Engine::Impl::take_piggyback(size_t budget) {
  std::vector<MemberUpdate> out;
  // Least-sent first: fresh news travels before old news is repeated.
  std::sort(broadcasts.begin(), broadcasts.end(), [](const Broadcast& a, const Broadcast& b) {
    return a.transmits_left > b.transmits_left;
  });
  size_t used = 0;
  for (auto& b : broadcasts) {
    const size_t sz = update_size(b.update);
    if (used + sz > budget) break;
    out.push_back(b.update);
    used += sz;
    --b.transmits_left;
  }
  broadcasts.erase(std::remove_if(broadcasts.begin(), broadcasts.end(),
                                  [](const Broadcast& b) { return b.transmits_left == 0; }),
                   broadcasts.end());
  return out;
}

std::vector<MemberUpdate> Engine::Impl::all_updates() const {
  std::vector<MemberUpdate> out{self_update()};
  for (const auto& [name, m] : members) out.push_back(m.update());
  return out;
}

void Engine::Impl::send_members(const Endpoint& to, const std::vector<MemberUpdate>& ups) {
  wire::Members batch;
  size_t used = 0;
  const size_t budget = cfg.mtu - wire::kHeaderBytes - 10;
  for (const auto& u : ups) {
    if (!batch.updates.empty() && used + update_size(u) > budget) {
      send(to, std::exchange(batch, {}));
      used = 0;
    }
    batch.updates.push_back(u);
    used += update_size(u);
  }
  if (!batch.updates.empty()) send(to, std::move(batch));
}

void Engine::Impl::refute(uint64_t seen_incarnation) {
  if (leaving) return;
  incarnation = std::max(incarnation, seen_incarnation) + 1;
  const MemberUpdate me = self_update();
  queue_broadcast(me);
  // Tell everyone directly too: a refutation races a suspicion timeout.
  for (auto& [name, m] : members) {
    if (m.reachable()) send_members(m.addr, {me});
  }
  // Routine: every restart meets peers that still remember the previous
  // process (left or dead), and faults cause suspicions that this answers.
  log(LogLevel::kDebug, "refuted a rumour about this node (incarnation " +
                            std::to_string(incarnation) + ")");
}

void Engine::Impl::set_state(Member& m, MemberState s, uint64_t inc) {
  const MemberState old = m.state;
  const bool was_reachable = m.reachable();
  m.incarnation = inc;
  m.state = s;
  suspect_count += (s == MemberState::kSuspect) - (old == MemberState::kSuspect);
  reachable_count += m.reachable() - was_reachable;
  m.state_since_us = now.mono_us;
  if (s == MemberState::kSuspect) {
    m.suspect_deadline_us =
        now.mono_us + suspicion_timeout_us(cfg.suspicion_mult, cfg.probe_interval_ms, live_count());
  }
  if (!m.reachable()) {  // anti-entropy catches it up if it returns
    m.pending.clear();
    m.waiting.clear();
    m.in_flight = 0;
  }
  if (old != s) {
    // A member that left said goodbye: only suspicion and death are alarms.
    const bool alarm = s == MemberState::kSuspect || s == MemberState::kDead;
    log(alarm ? LogLevel::kWarn : LogLevel::kInfo,
        "member " + m.name + " (" + m.addr.to_string() + ") is " + wire::member_state_name(s));
  }
}

void Engine::Impl::apply_update(const MemberUpdate& u, const Endpoint* from) {
  if (u.uid == 0 || u.name.empty() || u.addr.port == 0) return;
  if (u.name == self_name) {
    // A rumour that we are suspect, dead or a stale process of ours: deny it
    // with a newer incarnation. If we already did, the teller missed our
    // denial: repeat it to the teller.
    if (u.state != MemberState::kAlive || u.uid != self_uid) {
      if (u.incarnation >= incarnation) {
        refute(u.incarnation);
      } else if (from) {
        send_members(*from, {self_update()});
      }
    }
    return;
  }
  if (sealed && !identity_known(u.uid)) {
    // In a sealed mesh a process is a member only once it proved who it is.
    ask_identity(u.addr);
    return;
  }
  if (auto& known = uid_names[u.uid]; known != u.name) known = u.name;
  auto it = members.find(u.name);
  if (it == members.end()) {
    if (members.size() >= kMaxMembers) {
      ++counters.queue_drops;
      return;
    }
    Member m;
    m.name = u.name;
    m.uid = u.uid;
    m.addr = u.addr;
    m.incarnation = u.incarnation;
    m.state = u.state;
    m.state_since_us = now.mono_us;
    if (u.state == MemberState::kSuspect) {
      m.suspect_deadline_us =
          now.mono_us + suspicion_timeout_us(cfg.suspicion_mult, cfg.probe_interval_ms, live_count());
    }
    suspect_count += m.state == MemberState::kSuspect;
    reachable_count += m.reachable();
    it = members.emplace(u.name, std::move(m)).first;
    probe_order.push_back(u.name);
    log(LogLevel::kInfo, "member " + u.name + " (" + u.addr.to_string() + ") is " +
                             wire::member_state_name(u.state));
    queue_broadcast(u);
    if (it->second.reachable()) send_digest(u.addr, false);  // catch up with the newcomer
    return;
  }
  Member& m = it->second;
  if (!supersedes(u, m)) {
    // It claims to be alive, but we hold a graver statement about it. It can
    // only refute what it hears of, and it may not be hearing our gossip (we
    // do not send to members we think dead): tell it, at most once a second.
    if (u.state == MemberState::kAlive && !m.reachable() && m.state != MemberState::kLeft &&
        now.mono_us >= m.told_us + 1000 * kMs) {
      m.told_us = now.mono_us;
      send_members(u.addr, {m.update()});
    }
    return;
  }
  const bool was_reachable = m.reachable();
  const bool new_process = m.uid != u.uid;
  m.uid = u.uid;
  m.addr = u.addr;
  set_state(m, u.state, u.incarnation);
  queue_broadcast(m.update());
  // A member that comes back (partition healed, restart) is synced at once.
  if (m.reachable() && (!was_reachable || new_process)) send_digest(m.addr, false);
}

void Engine::Impl::heard_from(const Endpoint& from, uint64_t uid) {
  if (Member* m = member_by_uid(uid)) {
    m->last_contact_us = now.mono_us;
    return;
  }
  // A process we have no record of talks to us (its record was lost on the
  // way, or it restarted): introduce ourselves; its answer to a Join is its
  // whole member list, itself included. At most once a second per uid, and
  // five times a second in all: when hundreds of nodes start at once, each
  // hears from hundreds it does not know yet, and answering every one with
  // a whole member list made the traffic cubic in the mesh size; gossip
  // brings those records anyway.
  if (now.mono_us < last_intro_us + 200 * kMs && last_intro_us != 0) return;
  if (introduced_us.size() > 1024) introduced_us.clear();
  uint64_t& last = introduced_us[uid];
  if (last != 0 && now.mono_us < last + 1000 * kMs) return;
  last = now.mono_us;
  last_intro_us = now.mono_us;
  if (!leaving) send(from, wire::Join{self_update()});
}

std::vector<Member*> Engine::Impl::random_members(size_t k, const std::string& except) {
  std::vector<Member*> pool;
  for (auto& [name, m] : members) {
    if (m.reachable() && name != except) pool.push_back(&m);
  }
  std::shuffle(pool.begin(), pool.end(), rng);
  if (pool.size() > k) pool.resize(k);
  return pool;
}

// ---- probing -----------------------------------------------------------------

void Engine::Impl::probe_tick() {
  const uint64_t t = now.mono_us;
  if (probe.active) {
    auto it = members.find(probe.target);
    if (it == members.end() || !it->second.reachable()) {
      probe.active = false;
    } else if (!probe.indirect_sent && t >= probe.indirect_at_us) {
      probe.indirect_sent = true;
      Member& target = it->second;
      for (Member* helper : random_members(cfg.indirect_probes, probe.target)) {
        send(helper->addr, wire::PingReq{probe.seq, target.uid, target.addr, take_piggyback(kPiggybackBytes)});
      }
      // Try directly once more: the first ping or its ack may simply be lost.
      send(target.addr, wire::Ping{probe.seq, target.uid, take_piggyback(kPiggybackBytes)});
    } else if (probe.indirect_sent && t >= probe.fail_at_us) {
      probe.active = false;
      ++counters.probe_failures;
      Member& target = it->second;
      if (target.state == MemberState::kAlive) {
        set_state(target, MemberState::kSuspect, target.incarnation);
        const MemberUpdate u = target.update();
        queue_broadcast(u);
        send_members(target.addr, {u});  // so it can refute quickly
      }
    }
  }
  if (probe.active || t < next_probe_us) return;
  next_probe_us = t + cfg.probe_interval_ms * kMs;
  // Round-robin over a shuffled order: every member is probed once per round.
  for (size_t tries = 0; tries <= probe_order.size(); ++tries) {
    if (probe_index >= probe_order.size()) {
      std::erase_if(probe_order, [&](const std::string& n) { return !members.count(n); });
      std::shuffle(probe_order.begin(), probe_order.end(), rng);
      probe_index = 0;
      if (probe_order.empty()) return;
    }
    auto it = members.find(probe_order[probe_index++]);
    if (it == members.end() || !it->second.reachable()) continue;
    probe = Probe{it->first, ++probe_seq, t, t + cfg.probe_timeout_ms * kMs,
                  t + cfg.probe_interval_ms * kMs, false, true};
    ++counters.probes_sent;
    // A direct ping names no target (8 bytes a ping): the answer says who
    // answered, and an answer from another process at that address is
    // ignored below.
    send(it->second.addr, wire::Ping{probe.seq, 0, take_piggyback(kPiggybackBytes)});
    return;
  }
}

void Engine::Impl::on_ping(const Endpoint& from, uint64_t sender, const wire::Ping& p) {
  for (const auto& u : p.updates) apply_update(u, &from);
  // Our wall clock rides along at most every 2 s per member (the prober
  // smooths its offset estimate), and always to a process we do not know.
  uint64_t wall = now.wall_ms;
  if (Member* m = member_by_uid(sender)) {
    if (m->has_wall_sent && now.mono_us - m->wall_sent_us < kWallEveryUs) {
      wall = 0;
    } else {
      m->wall_sent_us = now.mono_us;
      m->has_wall_sent = true;
    }
  }
  send(from, wire::PingAck{p.probe_seq, self_uid, wall, take_piggyback(kPiggybackBytes)});
}

void Engine::Impl::on_ping_req(const Endpoint& from, const wire::PingReq& p) {
  for (const auto& u : p.updates) apply_update(u, &from);
  if (relays.size() >= kMaxRelays) {
    ++counters.queue_drops;
    return;
  }
  const uint64_t seq = ++probe_seq;
  relays[seq] = Relay{from, p.probe_seq, p.target_uid, now.mono_us + cfg.probe_interval_ms * kMs};
  send(p.target_addr, wire::Ping{seq, p.target_uid, {}});
}

void Engine::Impl::on_ping_ack(uint64_t sender, const wire::PingAck& a) {
  for (const auto& u : a.updates) apply_update(u, nullptr);
  auto relay = relays.find(a.probe_seq);
  if (relay != relays.end()) {
    if (a.target_uid == relay->second.target_uid) {
      send(relay->second.requester,
           wire::PingAck{relay->second.requester_seq, a.target_uid, a.wall_ms, {}});
    }
    relays.erase(relay);
    return;
  }
  if (!probe.active || a.probe_seq != probe.seq) return;
  auto it = members.find(probe.target);
  if (it == members.end() || it->second.uid != a.target_uid) return;
  if (sender == a.target_uid && !probe.indirect_sent) {
    const uint64_t rtt_us = now.mono_us - probe.sent_us;
    it->second.rtt.sample(rtt_us);
    if (a.wall_ms != 0) {
      // Its clock read at about the middle of the round trip, against ours then.
      const double sample = static_cast<double>(a.wall_ms) -
                            (static_cast<double>(now.wall_ms) - static_cast<double>(rtt_us) / 2000.0);
      Member& m = it->second;
      m.clock_offset_ms = m.has_offset ? 0.75 * m.clock_offset_ms + 0.25 * sample : sample;
      m.has_offset = true;
    }
  }
  it->second.last_contact_us = now.mono_us;
  probe.active = false;
}

void Engine::Impl::on_join(const Endpoint& from, const wire::Join& j) {
  // Trust the address the joiner's datagram came from over the one it
  // claims: behind NAT or a wildcard bind the claim may be unusable.
  wire::MemberUpdate self = j.self;
  self.addr = from;
  apply_update(self, &from);
  // The joiner learns everyone, including what we believe about itself, so a
  // restarted or partitioned node sees the rumour it must refute.
  send_members(from, all_updates());
}

void Engine::Impl::suspicion_tick() {
  for (auto& [name, m] : members) {
    if (m.state == MemberState::kSuspect && now.mono_us >= m.suspect_deadline_us) {
      set_state(m, MemberState::kDead, m.incarnation);
      queue_broadcast(m.update());
    }
  }
}

void Engine::Impl::gossip_tick() {
  next_gossip_us = now.mono_us + cfg.gossip_interval_ms * kMs;
  // A suspect hears the rumour about itself every round until it refutes or
  // is declared dead: a refutation that is never provoked cannot happen.
  for (auto& [name, m] : members) {
    if (m.state == MemberState::kSuspect) send_members(m.addr, {m.update()});
  }
  if (broadcasts.empty()) return;
  auto targets = random_members(kGossipFanout, "");
  if (targets.empty()) return;
  auto ups = take_piggyback(cfg.mtu - wire::kHeaderBytes - 10);
  for (Member* m : targets) send_members(m->addr, ups);
}

void Engine::Impl::reconnect_tick() {
  const bool alone = live_count() == 1;
  alone_retry_ms = alone && !seeds.empty() ? std::min<uint64_t>(alone_retry_ms * 2, 1000) : 100;
  next_reconnect_us = now.mono_us + (alone && !seeds.empty() ? alone_retry_ms : 1000) * kMs;
  if (leaving) return;
  // Dead members may only be partitioned away: knock on one door per second.
  std::vector<Member*> dead;
  for (auto& [name, m] : members) {
    if (m.state == MemberState::kDead) dead.push_back(&m);
  }
  if (!dead.empty()) {
    Member* m = dead[rng() % dead.size()];
    send(m->addr, wire::Join{self_update()});
  }
  // Alone: keep trying the seeds we were given.
  if (alone) {
    for (const auto& e : seeds) {
      if (e != self_addr) send(e, wire::Join{self_update()});
    }
  }
}

}  // namespace meshkv::node
