// Failure detection in the manner of SWIM: each protocol period one member
// is probed directly, then indirectly through others; if nobody reaches it,
// it becomes suspect, and it is declared dead only if it does not refute in
// time (membership.cc applies the refutation).
#include <algorithm>
#include <cmath>

#include "node/membership.h"

namespace meshkv::node {

using wire::MemberState;
using wire::MemberUpdate;

namespace {
constexpr uint64_t kMs = 1000;
constexpr size_t kPiggybackBytes = 400;
// A ping without its updates and digest, with room to spare: header,
// sequence, flags, counts and the extension field's tag and length.
constexpr size_t kPingBytes = 64;
constexpr uint64_t kWallEveryUs = 2000 * 1000;
// Relay requests beyond this are refused (counted as queue drops).
constexpr size_t kMaxRelays = 1024;
// How far start_probe() looks ahead in the round for the member heard from
// least recently: bounded, as a mesh of thousands probes in rounds of
// thousands.
constexpr size_t kProbeLookahead = 8;
// Beyond a round trip, what a clock offset sample may be off by: the
// answerer's and our scheduling delays (ms).
constexpr double kOffsetSlackMs = 50;
}  // namespace

uint64_t Membership::offset_fresh_us() const {
  // Each member is probed once a round (one probe per interval) and its
  // wall clock rides on at most one answer per 2 s: four rounds, and at
  // least 10 s, leave room for lost probes.
  const uint64_t round_us = (members_.size() + 1) * cfg_.probe_interval_ms * kMs;
  return std::max<uint64_t>(10'000 * kMs, 4 * std::max(round_us, kWallEveryUs));
}

bool Membership::offset_current(const Member& m) const {
  return m.reachable() && m.has_offset && now_.mono_us - std::min(now_.mono_us, m.offset_at_us) <= offset_fresh_us();
}

std::vector<double> Membership::current_offsets() const {
  std::vector<double> out;
  for (const std::string& name : measured_) {
    const Member* m = find(name);
    if (m && offset_current(*m)) out.push_back(m->clock_offset_ms);
  }
  return out;
}

void Membership::probe_tick() {
  const uint64_t t = now_.mono_us;
  if (probe_.active) {
    Member* target = find_mut(probe_.target);
    if (!target || !target->reachable()) {
      probe_.active = false;
      arm_probe();
    } else if (!probe_.indirect_sent && t >= probe_.indirect_at_us) {
      probe_.indirect_sent = true;
      arm_probe();
      for (const Member* helper : random_members(cfg_.indirect_probes, probe_.target)) {
        hooks_.sender->send(helper->addr, wire::PingReq{probe_.seq, target->uid, target->addr,
                                                        take_piggyback(kPiggybackBytes)});
      }
      // Try directly once more: the first ping or its ack may simply be lost.
      hooks_.sender->send(target->addr,
                          wire::Ping{probe_.seq, target->uid, take_piggyback(kPiggybackBytes), std::nullopt});
    } else if (probe_.indirect_sent && t >= probe_.fail_at_us) {
      probe_timeout(*target);
    }
  }
  if (probe_.active || t < next_probe_us_) return;
  next_probe_us_ = t + cfg_.probe_interval_ms * kMs;
  timers_.set(TimerKind::kProbe, 0, next_probe_us_);
  start_probe();
}

// The probe in flight is next due to ask others, or to fail.
void Membership::arm_probe() {
  if (!probe_.active) return timers_.cancel(TimerKind::kProbeTimeout, 0);
  timers_.set(TimerKind::kProbeTimeout, 0, probe_.indirect_sent ? probe_.fail_at_us : probe_.indirect_at_us);
}

void Membership::probe_timeout(Member& target) {
  probe_.active = false;
  arm_probe();
  ++counters_.probe_failures;
  if (target.state != MemberState::kAlive) return;
  change(target, MemberState::kSuspect, target.incarnation, false, target.verified);
  const MemberUpdate u = target.update();
  queue_broadcast(u);
  send_members(target.addr, {u});  // so it can refute quickly
}

void Membership::start_probe() {
  const uint64_t t = now_.mono_us;
  // Rounds over a shuffled order: every member is probed once per round (a
  // clock offset sample a round, offset_fresh_us()).
  for (size_t tries = 0; tries <= probe_order_.size(); ++tries) {
    if (probe_index_ >= probe_order_.size()) {
      std::erase_if(probe_order_, [&](const std::string& n) { return !members_.count(n); });
      std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
      probe_index_ = 0;
      if (probe_order_.empty()) return;
    }
    // Of the members left in this round (the next few), the one heard from
    // least recently goes first. A dead member falls silent: it is then
    // probed first by every node that has not yet probed it this round,
    // rather than in its random place (with the 500 ms interval, 4 probes a
    // round at N = 5, the first probe of a killed node came up to 1.5 s
    // late). Live members are heard from often, by their probes and
    // answers, so this costs no datagram. One never heard from is not drawn
    // forward: a forged list must not draw every probe to its addresses.
    const size_t end = std::min(probe_order_.size(), probe_index_ + kProbeLookahead);
    size_t pick = probe_index_;
    uint64_t oldest = ~uint64_t{0};
    for (size_t i = probe_index_; i < end; ++i) {
      const Member* c = find(probe_order_[i]);
      if (c && c->reachable() && c->last_contact_us != 0 && c->last_contact_us < oldest) {
        oldest = c->last_contact_us;
        pick = i;
      }
    }
    std::swap(probe_order_[probe_index_], probe_order_[pick]);
    const Member* m = find(probe_order_[probe_index_++]);
    if (!m || !m->reachable()) continue;
    // The indirect probes get twice the direct timeout beyond it (their path
    // is two round trips), not the whole interval: the interval can then
    // grow, to send fewer datagrams, without detection slowing with it.
    const uint64_t fail_ms = std::min(cfg_.probe_interval_ms, 3 * cfg_.probe_timeout_ms);
    probe_ = Probe{m->name, ++probe_seq_, t, t + cfg_.probe_timeout_ms * kMs, t + fail_ms * kMs, false, true};
    arm_probe();
    ++counters_.probes_sent;
    // A direct ping names no target (8 bytes a ping): the answer says who
    // answered, and an answer from another process at that address is
    // ignored in on_ping_ack(). The periodic digest rides along when due:
    // on an idle mesh the headers of its own datagram cost more than it.
    wire::Ping ping{probe_.seq, 0, take_piggyback(kPiggybackBytes), std::nullopt};
    if (hooks_.digest) ping.digest = hooks_.digest(*m, cfg_.mtu - kPiggybackBytes - kPingBytes);
    hooks_.sender->send(m->addr, std::move(ping));
    return;
  }
}

void Membership::on_ping(const Endpoint& from, uint64_t sender, const wire::Ping& p) {
  for (const auto& u : p.updates) apply_update(u, &from);
  // Our wall clock rides along at most every 2 s per member (the prober
  // smooths its offset estimate), and always to a process we do not know.
  uint64_t wall = now_.wall_ms;
  if (Member* m = by_uid_mut(sender)) {
    if (m->has_wall_sent && now_.mono_us - m->wall_sent_us < kWallEveryUs) {
      wall = 0;
    } else {
      m->wall_sent_us = now_.mono_us;
      m->has_wall_sent = true;
    }
  }
  hooks_.sender->send(from, wire::PingAck{p.probe_seq, self_.uid, wall, take_piggyback(kPiggybackBytes)});
}

void Membership::on_ping_req(const Endpoint& from, const wire::PingReq& p) {
  for (const auto& u : p.updates) apply_update(u, &from);
  if (relays_.size() >= kMaxRelays) {
    ++counters_.queue_drops;
    return;
  }
  const uint64_t seq = ++probe_seq_;
  relays_[seq] = Relay{from, p.probe_seq, p.target_uid, now_.mono_us + cfg_.probe_interval_ms * kMs};
  timers_.set(TimerKind::kRelay, seq, relays_[seq].expires_us);
  hooks_.sender->send(p.target_addr, wire::Ping{seq, p.target_uid, {}, std::nullopt});
}

void Membership::on_ping_ack(uint64_t sender, const wire::PingAck& a) {
  for (const auto& u : a.updates) apply_update(u, nullptr);
  auto relay = relays_.find(a.probe_seq);
  if (relay != relays_.end()) {
    if (a.target_uid == relay->second.target_uid) {
      hooks_.sender->send(relay->second.requester,
                          wire::PingAck{relay->second.requester_seq, a.target_uid, a.wall_ms, {}});
    }
    timers_.cancel(TimerKind::kRelay, relay->first);
    relays_.erase(relay);
    return;
  }
  if (auto g = greetings_in_flight_.find(a.probe_seq); g != greetings_in_flight_.end()) {
    // A greeting's answer: a round trip like a probe's, never retransmitted.
    Member* greeted = find_mut(g->second.first);
    if (greeted && sender == greeted->uid) greeted->rtt.sample(now_.mono_us - g->second.second);
    greetings_in_flight_.erase(g);
    return;
  }
  if (!probe_.active || a.probe_seq != probe_.seq) return;
  Member* m = find_mut(probe_.target);
  if (!m || m->uid != a.target_uid) return;
  if (sender == a.target_uid && !probe_.indirect_sent) {
    const uint64_t rtt_us = now_.mono_us - probe_.sent_us;
    m->rtt.sample(rtt_us);
    if (a.wall_ms != 0) {
      // Its clock read at about the middle of the round trip, against ours then.
      const double sample = static_cast<double>(a.wall_ms) -
                            (static_cast<double>(now_.wall_ms) - static_cast<double>(rtt_us) / 2000.0);
      // Smoothed against round-trip noise. A sample is off the true offset
      // by at most half its round trip, so one further from the estimate
      // than a whole round trip (plus scheduling slack) is a clock that was
      // stepped, and replaces the estimate: smoothing an hour away at 1/4
      // per sample, one sample per 2 s, would take a minute.
      const double rtt_ms = static_cast<double>(rtt_us) / 1000.0;
      const bool step = m->has_offset && std::abs(sample - m->clock_offset_ms) > rtt_ms + kOffsetSlackMs;
      m->clock_offset_ms = m->has_offset && !step ? 0.75 * m->clock_offset_ms + 0.25 * sample : sample;
      m->has_offset = true;
      measured_.insert(m->name);
      m->offset_at_us = now_.mono_us;
    }
  }
  m->last_contact_us = now_.mono_us;
  probe_.active = false;
  arm_probe();
}

void Membership::suspicion_tick() {
  while (!suspects_.empty() && suspects_.begin()->first <= now_.mono_us) {
    const std::string name = suspects_.begin()->second;
    Member& m = *find_mut(name);
    change(m, MemberState::kDead, m.incarnation, false, m.verified);  // takes it out of suspects_
    queue_broadcast(m.update());
  }
}

}  // namespace meshkv::node
