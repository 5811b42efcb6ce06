// The member table and how statements about members spread: the rules below
// decide which of two statements about a member is newer; news spreads by
// piggybacking on probes (probe.cc) and by periodic gossip.
#include "node/membership.h"

#include <algorithm>

namespace meshkv::node {

using wire::MemberState;
using wire::MemberUpdate;

namespace {
constexpr uint64_t kMs = 1000;
constexpr size_t kGossipFanout = 3;
// Bound on what datagrams can make a node remember. Beyond it new members
// are refused (counted as queue drops).
constexpr size_t kMaxMembers = 4096;
// Removed members remembered (so that gossip does not bring them back), and
// names of processes (members' and, for display, past ones). Beyond them the
// oldest are evicted (counted as table drops).
constexpr size_t kMaxGone = 4096;
constexpr size_t kMaxUidNames = 8192;
// Statements waiting to be gossiped. Datagrams from anyone add to them (a
// Members datagram of statements about names nobody knew, dead or left
// included), and gossip drains them only a few dozen a period, or never
// while no member is in reach.
constexpr size_t kMaxBroadcasts = 1024;
constexpr size_t kUnverifiedRemindersPerRound = 8;
// Greetings (greet()) a gossip interval: a forged list of thousands of
// names gets them one ping each, a few dozen a second, as it gets probes.
constexpr size_t kGreetingsPerRound = 8;
// Greetings a member gets in all, one a gossip round until it answers: a
// ping and its answer both cross a 30 % lossy link half the time, and with
// one greeting pairs of the 16 members of the bench's lossy row often went
// unverified (writes between them left to anti-entropy) for seconds, until
// a probe between them, one a round of 16 probes: write-to-all p99 2.4-3.0 s.
// With 5 greetings 300-321 ms, with 10 203-223 ms (1 pair in 1,000 is left
// to the probes).
constexpr uint8_t kMaxGreetings = 10;
constexpr size_t kMaxGreetingsInFlight = 256;
constexpr size_t kMaxRetriedUnverified = 16;
constexpr uint64_t kMinGossipGapUs = 20 * kMs;
// Introductions are limited to one a second per process: older records of
// them limit nothing.
constexpr uint64_t kIntroduceEveryUs = 1000 * kMs;
constexpr uint64_t kNever = ~uint64_t{0};

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

std::string describe(const MemberEvent& e) {
  if (e.kind == MemberEvent::Kind::kRefuted) {
    return "refuted a rumour about this node (incarnation " + std::to_string(e.incarnation) + ")";
  }
  if (e.kind == MemberEvent::Kind::kRemoved) {
    return "member " + e.name + " (" + e.addr.to_string() + ") is removed (it was " +
           wire::member_state_name(e.to) + ")";
  }
  return "member " + e.name + " (" + e.addr.to_string() + ") is " + wire::member_state_name(e.to);
}

Membership::Membership(const Config& cfg, Self self, const Now& now, std::mt19937_64& rng, Timers& timers,
                       Hooks hooks)
    : cfg_(cfg), self_(std::move(self)), now_(now), rng_(rng), timers_(timers), hooks_(std::move(hooks)) {
  uid_names_[self_.uid] = {self_.name, 0};
  const uint64_t t = now_.mono_us;
  // Spread probes so that nodes started together do not probe together.
  next_probe_us_ = t + (rng_() % (cfg_.probe_interval_ms * kMs + 1));
  next_gossip_us_ = t + cfg_.gossip_interval_ms * kMs;
  next_reconnect_us_ = t + alone_retry_ms_ * kMs;
  timers_.set(TimerKind::kProbe, 0, next_probe_us_);
  timers_.set(TimerKind::kReconnect, 0, next_reconnect_us_);
}

// ---- queries -------------------------------------------------------------------

MemberUpdate Membership::self_update() const {
  return {self_.name, self_.uid, self_.addr, incarnation_,
          leaving_ ? MemberState::kLeft : MemberState::kAlive};
}

const Member* Membership::find(std::string_view name) const {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &it->second;
}

Member* Membership::find_mut(std::string_view name) {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &it->second;
}

const Member* Membership::by_uid(uint64_t uid) const {
  auto it = uid_names_.find(uid);
  if (it == uid_names_.end()) return nullptr;
  const Member* m = find(it->second.name);
  return m && m->uid == uid ? m : nullptr;
}

Member* Membership::by_uid_mut(uint64_t uid) { return const_cast<Member*>(std::as_const(*this).by_uid(uid)); }

const Member* Membership::at(const Endpoint& addr) const {
  // The first name at that address, as a walk of members_ would find.
  auto it = by_addr_.lower_bound({addr, std::string()});
  return it != by_addr_.end() && it->first == addr ? find(it->second) : nullptr;
}

const std::string& Membership::name_of(uint64_t uid) const {
  static const std::string kNone;
  auto it = uid_names_.find(uid);
  return it == uid_names_.end() ? kNone : it->second.name;
}

void Membership::name_uid(uint64_t uid, const std::string& name) {
  auto [it, fresh] = uid_names_.try_emplace(uid);
  it->second.seen_us = now_.mono_us;
  if (!fresh) {
    if (it->second.name != name) it->second.name = name;
    return;
  }
  it->second.name = name;
  if (uid_names_.size() <= kMaxUidNames) return;
  // Full: evict the names of past processes, oldest first, down to three
  // quarters (so that this is rare). Members' processes (at most
  // kMaxMembers) and our own are kept: by_uid needs them.
  std::vector<std::pair<uint64_t, uint64_t>> past;  // (seen, uid)
  for (const auto& [u, n] : uid_names_) {
    if (u != self_.uid && u != uid && by_uid(u) == nullptr) past.emplace_back(n.seen_us, u);
  }
  std::sort(past.begin(), past.end());
  const size_t excess = uid_names_.size() - std::min(uid_names_.size(), kMaxUidNames * 3 / 4);
  for (size_t i = 0; i < past.size() && i < excess; ++i) {
    uid_names_.erase(past[i].second);
    ++counters_.table_drops;
  }
}

wire::Value Membership::status() const {
  wire::Value v = wire::Value::object();
  v.set("reap_after_ms", cfg_.reap_after());
  v.set("removed", counters_.removed);
  v.set("forgotten", counters_.forgotten);
  v.set("gone", static_cast<uint64_t>(ghosts_.size()));
  v.set("process_names", static_cast<uint64_t>(uid_names_.size()));
  v.set("introductions", static_cast<uint64_t>(introduced_us_.size()));
  v.set("gossip_queue", static_cast<uint64_t>(broadcasts_.size()));
  size_t unverified = 0;
  for (const auto& [name, m] : members_) unverified += !m.verified;
  v.set("unverified", static_cast<uint64_t>(unverified));
  v.set("table_drops", counters_.table_drops);
  v.set("gossip_drops", counters_.gossip_drops);
  return v;
}

std::vector<const Member*> Membership::random_members(size_t k, std::string_view except) const {
  // Members heard from directly first: on an unsealed mesh a forged datagram
  // can list thousands of members that never answer, and gossip, indirect
  // probes and anti-entropy sent their way would be lost (and an indirect
  // probe through one would make a live member suspect). Those come from
  // verified_, without a walk of every member while there are enough.
  std::vector<const Member*> pool;
  for (const std::string& name : verified_) {
    const Member* m = find(name);
    if (m->reachable() && name != except) pool.push_back(m);
  }
  std::shuffle(pool.begin(), pool.end(), rng_);
  if (pool.size() >= k) {
    pool.resize(k);
    return pool;
  }
  std::vector<const Member*> rest;
  for (const auto& [name, m] : members_) {
    if (!m.verified && m.reachable() && name != except) rest.push_back(&m);
  }
  std::shuffle(rest.begin(), rest.end(), rng_);
  rest.resize(std::min(rest.size(), k - pool.size()));
  pool.insert(pool.end(), rest.begin(), rest.end());
  return pool;
}

void Membership::sample_rtt(std::string_view name, uint64_t rtt_us) {
  if (Member* m = find_mut(name)) m->rtt.sample(rtt_us);
}

void Membership::rto_expired(std::string_view name, uint64_t sent_us, uint64_t now_us) {
  if (Member* m = find_mut(name)) m->rtt.expired(sent_us, now_us);
}

void Membership::note_identity(uint64_t uid, const std::string& fingerprint) {
  if (Member* m = by_uid_mut(uid)) m->fingerprint = fingerprint;
}

// ---- statements about members -------------------------------------------------

void Membership::queue_broadcast(const MemberUpdate& u) {
  if (auto it = broadcasts_.find(u.name); it != broadcasts_.end()) {
    broadcast_order_.erase({it->second.transmits_left, it->second.seq});
    broadcasts_.erase(it);
  }
  if (broadcasts_.size() >= kMaxBroadcasts) {
    // The statement told most already gives way (the oldest of those):
    // news travels first.
    auto most = broadcast_order_.begin();
    broadcasts_.erase(most->second);
    broadcast_order_.erase(most);
    ++counters_.gossip_drops;
  }
  const Broadcast b{u, gossip_transmits(live_count()), broadcast_seq_++};
  broadcast_order_.emplace(std::pair(b.transmits_left, b.seq), u.name);
  broadcasts_.emplace(u.name, b);
  // Spread news at once, but start a round at most every kMinGossipGapUs:
  // each round walks the members and sorts the queue, and when every
  // datagram brought news (a flood of forged ones), a round per datagram
  // passed the flood on to the honest members, twice over.
  next_gossip_us_ = std::min(next_gossip_us_, std::max(now_.mono_us, last_gossip_us_ + kMinGossipGapUs));
  arm_gossip();
}

// Gossip has work only when there is news, or a suspect to remind.
void Membership::arm_gossip() {
  const bool work = !broadcasts_.empty() || !suspects_.empty();
  timers_.set(TimerKind::kGossip, 0, work ? std::optional(next_gossip_us_) : std::nullopt);
}

std::vector<MemberUpdate> Membership::take_piggyback(size_t budget) {
  std::vector<MemberUpdate> out;
  // Least-sent first (the newest of those first): fresh news travels before
  // old news is repeated.
  std::vector<std::pair<unsigned, uint64_t>> taken;
  size_t used = 0;
  for (auto it = broadcast_order_.rbegin(); it != broadcast_order_.rend(); ++it) {
    const MemberUpdate& u = broadcasts_.at(it->second).update;
    const size_t sz = update_size(u);
    if (used + sz > budget) break;
    out.push_back(u);
    used += sz;
    taken.push_back(it->first);
  }
  for (const auto& key : taken) {
    auto node = broadcast_order_.extract(key);
    auto b = broadcasts_.find(node.mapped());
    if (--b->second.transmits_left == 0) {
      broadcasts_.erase(b);
    } else {
      node.key().first = b->second.transmits_left;
      broadcast_order_.insert(std::move(node));
    }
  }
  arm_gossip();
  return out;
}

std::vector<MemberUpdate> Membership::all_updates() const {
  std::vector<MemberUpdate> out{self_update()};
  for (const auto& [name, m] : members_) out.push_back(m.update());
  return out;
}

void Membership::send_members(const Endpoint& to, const std::vector<MemberUpdate>& ups) {
  wire::Members batch;
  size_t used = 0;
  const size_t budget = cfg_.mtu - wire::kHeaderBytes - 10;
  for (const auto& u : ups) {
    if (!batch.updates.empty() && used + update_size(u) > budget) {
      hooks_.sender->send(to, std::exchange(batch, {}));
      used = 0;
    }
    batch.updates.push_back(u);
    used += update_size(u);
  }
  if (!batch.updates.empty()) hooks_.sender->send(to, std::move(batch));
}

void Membership::refute(uint64_t seen_incarnation) {
  if (leaving_) return;
  incarnation_ = std::max(incarnation_, seen_incarnation) + 1;
  const MemberUpdate me = self_update();
  queue_broadcast(me);
  // Tell everyone directly too: a refutation races a suspicion timeout.
  for (auto& [name, m] : members_) {
    if (m.reachable()) send_members(m.addr, {me});
  }
  const MemberEvent e{MemberEvent::Kind::kRefuted, self_.name, self_.uid, self_.addr,
                      MemberState::kAlive, MemberState::kAlive, incarnation_, false, false, false};
  // Routine: every restart meets peers that still remember the previous
  // process (left or dead), and faults cause suspicions that this answers.
  hooks_.log(LogLevel::kDebug, describe(e));
  hooks_.changed(e);
}

uint64_t Membership::suspicion_deadline() const {
  return now_.mono_us + suspicion_timeout_us(cfg_.suspicion_mult, cfg_.probe_interval_ms, live_count());
}

void Membership::change(Member& m, MemberState s, uint64_t inc, bool new_process, bool was_verified) {
  const MemberState old = m.state;
  const bool was_reachable = m.reachable();
  if (old == MemberState::kSuspect) suspects_.erase({m.suspect_deadline_us, m.name});
  m.incarnation = inc;
  m.state = s;
  reachable_count_ += m.reachable() - was_reachable;
  m.state_since_us = now_.mono_us;
  if (s == MemberState::kSuspect) {
    m.suspect_deadline_us = suspicion_deadline();
    suspects_.emplace(m.suspect_deadline_us, m.name);
  }
  timers_.set(TimerKind::kSuspicion, m.key,
              s == MemberState::kSuspect ? std::optional(m.suspect_deadline_us) : std::nullopt);
  if (s == MemberState::kDead || s == MemberState::kLeft) due_for_reaping(m.state_since_us + cfg_.reap_after() * kMs);
  arm_gossip();
  const MemberEvent e{MemberEvent::Kind::kChanged, m.name, m.uid, m.addr, old, s, inc, new_process, was_verified,
                      m.verified};
  // A graceful leave is news, not trouble: only suspect and dead warn.
  // Members never heard from directly (perhaps forged by the thousand) are
  // logged at debug level.
  const bool trouble = s == MemberState::kSuspect || s == MemberState::kDead;
  const LogLevel level = !m.verified ? LogLevel::kDebug : trouble ? LogLevel::kWarn : LogLevel::kInfo;
  if (e.notable()) hooks_.log(level, describe(e));
  hooks_.changed(e);
}

void Membership::verify(Member& m) {
  m.verified = true;
  verified_.insert(m.name);
  const MemberEvent e{MemberEvent::Kind::kChanged, m.name, m.uid, m.addr, m.state, m.state, m.incarnation, false,
                      false, true};
  hooks_.log(LogLevel::kDebug, "heard from member " + m.name + " directly: it counts toward the majority");
  hooks_.changed(e);
}

void Membership::add(const MemberUpdate& u) {
  if (members_.size() >= kMaxMembers) {
    ++counters_.queue_drops;
    return;
  }
  Member m;
  m.key = next_key_++;
  m.name = u.name;
  m.uid = u.uid;
  m.addr = u.addr;
  m.incarnation = u.incarnation;
  m.state = u.state;
  m.state_since_us = now_.mono_us;
  if (u.state == MemberState::kSuspect) {
    m.suspect_deadline_us = suspicion_deadline();
    timers_.set(TimerKind::kSuspicion, m.key, m.suspect_deadline_us);
    suspects_.emplace(m.suspect_deadline_us, m.name);
  }
  if (u.state == MemberState::kDead || u.state == MemberState::kLeft) {
    due_for_reaping(m.state_since_us + cfg_.reap_after() * kMs);
  }
  reachable_count_ += m.reachable();
  name_uid(u.uid, u.name);
  members_.emplace(u.name, std::move(m));
  by_addr_.emplace(u.addr, u.name);
  probe_order_.push_back(u.name);
  const MemberEvent e{MemberEvent::Kind::kAdded, u.name, u.uid, u.addr, u.state, u.state, u.incarnation, false,
                      false, false};
  hooks_.log(LogLevel::kInfo, describe(e));
  queue_broadcast(u);
  hooks_.changed(e);
  greet(members_.at(u.name));
}

void Membership::greet(const Member& m) {
  if (m.verified || !m.reachable() || to_greet_.size() >= kMaxMembers) return;
  to_greet_.push_back(m.name);
  greet_due();
}

void Membership::greet_due() {
  const uint64_t t = now_.mono_us;
  if (t >= greet_window_us_ + cfg_.gossip_interval_ms * kMs) {
    greet_window_us_ = t;
    greeted_ = 0;
  }
  while (!to_greet_.empty() && greeted_ < kGreetingsPerRound) {
    Member* m = find_mut(to_greet_.front());
    to_greet_.pop_front();
    if (!m || m->verified || !m->reachable() || m->greetings >= kMaxGreetings) continue;
    ++greeted_;
    ++m->greetings;
    // A seq of its own, so that the answer matches neither the probe in
    // flight nor a relay: it verifies the member (heard_from()) and
    // measures a round trip (on_ping_ack()).
    hooks_.sender->send(m->addr, wire::Ping{++probe_seq_, 0, {}, std::nullopt});
    greetings_in_flight_[probe_seq_] = {m->name, now_.mono_us};
    if (greetings_in_flight_.size() > kMaxGreetingsInFlight) greetings_in_flight_.erase(greetings_in_flight_.begin());
  }
}

void Membership::apply_update(const MemberUpdate& u, const Endpoint* from) {
  if (u.uid == 0 || u.name.empty() || u.addr.port == 0) return;
  if (u.name == self_.name) {
    // A rumour that we are suspect, dead or a stale process of ours: deny it
    // with a newer incarnation. If we already did, the teller missed our
    // denial: repeat it to the teller.
    if (u.state != MemberState::kAlive || u.uid != self_.uid) {
      if (u.incarnation >= incarnation_) {
        refute(u.incarnation);
      } else if (from) {
        send_members(*from, {self_update()});
      }
    }
    return;
  }
  // In a sealed mesh a process is a member only once it proved who it is.
  if (!hooks_.admit(u.uid, u.addr)) return;
  Member* m = find_mut(u.name);
  if (!m) {
    if (auto g = ghosts_.find(u.name); g != ghosts_.end()) {
      if (!news_despite(u, g->second)) return;
      ghosts_.erase(g);  // back: a member afresh
    } else if (u.state == MemberState::kLeft) {
      // Gone before we knew it (or forgotten elsewhere): nothing to keep
      // but the memory that it is gone. Passed on, as news is.
      remember_gone(u);
      queue_broadcast(u);
      return;
    }
    // Unknown and dead is recorded: a dead member still counts toward the
    // majority until it is reaped, so that a node joining one side of a
    // partition does not take the side for the whole.
    return add(u);
  }
  if (!supersedes(u, *m)) {
    // It claims to be alive, but we hold a graver statement about it. It can
    // only refute what it hears of, and it may not be hearing our gossip (we
    // do not send to members we think dead): tell it, at most once a second.
    if (u.state == MemberState::kAlive && !m->reachable() && m->state != MemberState::kLeft &&
        now_.mono_us >= m->told_us + 1000 * kMs) {
      m->told_us = now_.mono_us;
      send_members(u.addr, {m->update()});
    }
    return;
  }
  const bool new_process = m->uid != u.uid;
  const bool given_up = m->state == MemberState::kSuspect || m->state == MemberState::kDead;
  // A new process may run on another clock (restarted, or moved).
  if (new_process) {
    m->has_offset = false;
    measured_.erase(m->name);
  }
  const bool was_verified = m->verified;
  // What we heard from was that process at that address: another one (a
  // restart, or a forged statement) must answer for itself.
  if (new_process || m->addr != u.addr) {
    m->verified = false;
    m->greetings = 0;
    verified_.erase(m->name);
  }
  m->uid = u.uid;
  if (m->addr != u.addr) {
    by_addr_.erase({m->addr, m->name});
    by_addr_.emplace(u.addr, m->name);
    m->addr = u.addr;
  }
  name_uid(u.uid, u.name);
  change(*m, u.state, u.incarnation, new_process, was_verified);
  queue_broadcast(m->update());
  if (was_verified && !m->verified) greet(*m);
  // Left while we had given up on it: what `meshkv forget` says somewhere
  // (or a graceful leave we heard of late). Nothing is left to show or to
  // wait for: removed at once. (A member seen alive that leaves stays
  // listed as left until reaped.)
  if (u.state == MemberState::kLeft && given_up) remove(*m);
}

bool Membership::news_despite(const MemberUpdate& u, Gone& g) {
  // Statements that it is gone are what we know already, whichever process
  // they name: reaping must stick.
  if (u.state == MemberState::kDead || u.state == MemberState::kLeft) return false;
  // Alive or suspect: a new process of that name, or the old one refuting
  // (a newer incarnation), is a member afresh.
  if (u.uid != g.uid || u.incarnation > g.incarnation) return true;
  // The old process, at an incarnation we removed it at: a stale rumour, or
  // that process itself, cut off while we gave up on it and unaware. It can
  // only refute what it hears of: tell it, at most once a second.
  if (u.state == MemberState::kAlive && now_.mono_us >= g.told_us + 1000 * kMs) {
    g.told_us = now_.mono_us;
    send_members(u.addr, {g.update(u.name)});
  }
  return false;
}

void Membership::remove(Member& m) {
  const MemberEvent e{MemberEvent::Kind::kRemoved, m.name, m.uid, m.addr, m.state, m.state, m.incarnation, false,
                      m.verified, false};
  if (m.state == MemberState::kSuspect) suspects_.erase({m.suspect_deadline_us, m.name});
  reachable_count_ -= m.reachable();
  timers_.cancel(TimerKind::kSuspicion, m.key);
  if (probe_.active && probe_.target == m.name) {
    probe_.active = false;
    arm_probe();
  }
  remember_gone(m.update());
  by_addr_.erase({m.addr, m.name});
  measured_.erase(m.name);
  verified_.erase(m.name);
  members_.erase(e.name);  // m is gone; its name stays in probe_order_ until the round ends
  ++counters_.removed;
  arm_gossip();
  hooks_.log(LogLevel::kInfo, describe(e));
  hooks_.changed(e);
}

void Membership::remember_gone(const MemberUpdate& u) {
  if (ghosts_.size() >= kMaxGone && !ghosts_.count(u.name)) {
    // The oldest, from the order they came in (a scan of every record for
    // each statement made a flood of forged "left" statements costly).
    // Entries whose record is gone, or was renewed since, are skipped.
    while (!ghost_order_.empty()) {
      auto [since, name] = std::move(ghost_order_.front());
      ghost_order_.pop_front();
      auto g = ghosts_.find(name);
      if (g == ghosts_.end() || g->second.since_us != since) continue;
      ghosts_.erase(g);
      ++counters_.table_drops;
      break;
    }
  }
  ghosts_[u.name] = Gone{u.uid, u.addr, u.incarnation, u.state, now_.mono_us, 0};
  ghost_order_.emplace_back(now_.mono_us, u.name);
  if (ghost_order_.size() > 2 * kMaxGone) {
    // Mostly stale entries (records removed or renewed): rebuilt from the table.
    ghost_order_.clear();
    for (const auto& [name, g] : ghosts_) ghost_order_.emplace_back(g.since_us, name);
    std::sort(ghost_order_.begin(), ghost_order_.end());
  }
  due_for_reaping(now_.mono_us + cfg_.reap_after() * kMs);
}

void Membership::due_for_reaping(uint64_t at_us) {
  if (at_us >= next_reap_us_) return;
  next_reap_us_ = at_us;
  timers_.set(TimerKind::kReap, 0, next_reap_us_);
}

void Membership::reap_tick() {
  const uint64_t t = now_.mono_us;
  const uint64_t after = cfg_.reap_after() * kMs;
  next_reap_us_ = kNever;
  timers_.cancel(TimerKind::kReap, 0);
  std::vector<std::string> due;
  for (const auto& [name, m] : members_) {
    if (m.state != MemberState::kDead && m.state != MemberState::kLeft) continue;
    if (t >= m.state_since_us + after) {
      due.push_back(name);
    } else {
      due_for_reaping(m.state_since_us + after);
    }
  }
  for (const std::string& name : due) {
    Member& m = members_.at(name);
    hooks_.log(LogLevel::kInfo, "reaping " + name + ": " + wire::member_state_name(m.state) + " for " +
                                    std::to_string((t - m.state_since_us) / (1000 * kMs)) + " s (--reap-after " +
                                    std::to_string(cfg_.reap_after()) + " ms)");
    remove(m);
  }
  // The memory of a removed member lasts as long again: by then every node
  // that held it has reaped it too, and its gossip has died down.
  std::erase_if(ghosts_, [&](const auto& g) {
    if (t >= g.second.since_us + after) return true;
    due_for_reaping(g.second.since_us + after);
    return false;
  });
}

Result<MemberUpdate> Membership::forget(std::string_view name) {
  const std::string n(name);
  if (name == self_.name) {
    return Status::Invalid(n + " is this node: to take it out of the mesh, stop it (quit at its prompt, "
                               "or SIGTERM), and it leaves gracefully");
  }
  Member* m = find_mut(name);
  if (!m) {
    return Status::NotFound("no member named " + n + (gone(name) ? " (it was removed already)" : ""));
  }
  if (m->state == MemberState::kAlive) {
    return Status::Invalid(n + " is alive: only a suspect, dead or left member can be forgotten (a live "
                               "process would refute and be back at once); stop it first, it then "
                               "leaves gracefully");
  }
  const MemberUpdate was = m->update();
  MemberUpdate left = was;
  left.state = MemberState::kLeft;
  // The others remove it on hearing this (it is no longer alive to them
  // either, or soon will not be): tell each directly, twice, as a leave is
  // told, and gossip it. A suspect hears it too: if alive after all, it
  // refutes, and everyone adds it again.
  hooks_.log(LogLevel::kWarn, "forgetting member " + n + " (" + was.addr.to_string() + "), " +
                                  wire::member_state_name(was.state) + ", at the operator's request");
  for (const auto& [other, o] : members_) {
    if (!o.reachable()) continue;
    send_members(o.addr, {left});
    send_members(o.addr, {left});
  }
  queue_broadcast(left);
  ++counters_.forgotten;
  remove(*m);
  ghosts_.at(n).state = MemberState::kLeft;  // as the others will remember it
  return was;
}

void Membership::on_members(const Endpoint& from, const wire::Members& m) {
  for (const auto& u : m.updates) apply_update(u, &from);
}

void Membership::heard_from(const Endpoint& from, uint64_t uid) {
  for (SeedWatch& w : seed_watch_) {
    if (w.addr == from) w.answered = true;
  }
  if (Member* m = by_uid_mut(uid)) {
    m->last_contact_us = now_.mono_us;
    // Its own process, from its own address: it exists there (a member
    // named only in others' datagrams never gets here; anti_entropy.cc,
    // on_member, says why that matters).
    if (!m->verified && from == m->addr) verify(*m);
    return;
  }
  // A process we have no record of talks to us (its record was lost on the
  // way, or it restarted): introduce ourselves; its answer to a Join is its
  // whole member list, itself included. At most once a second per uid, and
  // five times a second in all: when hundreds of nodes start at once, each
  // hears from hundreds it does not know yet, and answering every one with
  // a whole member list made the traffic cubic in the mesh size; gossip
  // brings those records anyway.
  if (now_.mono_us < last_intro_us_ + 200 * kMs && last_intro_us_ != 0) return;
  // At most five a second: records older than a second limit nothing.
  if (introduced_us_.size() >= 16) {
    std::erase_if(introduced_us_, [&](const auto& e) { return now_.mono_us >= e.second + kIntroduceEveryUs; });
  }
  uint64_t& last = introduced_us_[uid];
  if (last != 0 && now_.mono_us < last + kIntroduceEveryUs) return;
  last = now_.mono_us;
  last_intro_us_ = now_.mono_us;
  if (!leaving_) hooks_.sender->send(from, wire::Join{self_update()});
}

void Membership::on_join(const Endpoint& from, const wire::Join& j) {
  // Trust the address the joiner's datagram came from over the one it
  // claims: behind NAT or a wildcard bind the claim may be unusable.
  MemberUpdate self = j.self;
  self.addr = from;
  apply_update(self, &from);
  // The joiner learns everyone, including what we believe about itself, so a
  // restarted or partitioned node sees the rumour it must refute.
  send_members(from, all_updates());
}

// ---- joining, leaving, gossip ---------------------------------------------------

void Membership::join(const std::vector<Endpoint>& seeds) {
  for (const auto& e : seeds) {
    if (std::find(seeds_.begin(), seeds_.end(), e) == seeds_.end()) seeds_.push_back(e);
    if (e == self_.addr) continue;
    hooks_.sender->send(e, wire::Join{self_update()});
    auto w = std::find_if(seed_watch_.begin(), seed_watch_.end(), [&](const SeedWatch& s) { return s.addr == e; });
    if (w == seed_watch_.end()) {
      if (seed_watch_.size() >= kMaxSeedWatch) continue;
      w = seed_watch_.insert(seed_watch_.end(), SeedWatch{e});
    }
    if (!w->answered) w->asked_us = now_.mono_us, w->warned = false;
  }
}

void Membership::check_silent_seeds() {
  for (SeedWatch& w : seed_watch_) {
    if (w.answered || w.warned || now_.mono_us - w.asked_us < kSeedSilentMs * kMs) continue;
    w.warned = true;
    hooks_.log(LogLevel::kWarn,
               "join: no answer from " + w.addr.to_string() + " in " + std::to_string(kSeedSilentMs / 1000) +
                   " s (retried while this node has no other member): nothing may listen there, or it drops what this node sends: a "
                   "sealed mesh drops datagrams without its cluster key, an unsealed node drops sealed "
                   "ones, and a mesh with allowed_peers refuses identities not on it (the refusing node "
                   "logs why)");
  }
}

void Membership::leave() {
  leaving_ = true;
  ++incarnation_;
  const MemberUpdate me = self_update();
  for (auto& [name, m] : members_) {
    if (m.reachable()) {
      send_members(m.addr, {me});
      send_members(m.addr, {me});  // twice: a lossy link should still hear it
    }
  }
}

void Membership::tick() {
  const uint64_t t = now_.mono_us;
  suspicion_tick();
  if (probe_.active || t >= next_probe_us_) probe_tick();
  if (t >= next_gossip_us_) gossip_tick();
  if (t >= next_reconnect_us_) reconnect_tick();
  if (t >= next_reap_us_) reap_tick();
  std::erase_if(relays_, [&](const auto& r) {
    if (r.second.expires_us > t) return false;
    timers_.cancel(TimerKind::kRelay, r.first);
    return true;
  });
}

void Membership::gossip_tick() {
  last_gossip_us_ = now_.mono_us;
  next_gossip_us_ = now_.mono_us + cfg_.gossip_interval_ms * kMs;
  arm_gossip();
  // Greetings beyond a round's share (many members learned at once), and
  // again to members that have not answered theirs.
  // Not while more than kMaxRetriedUnverified are unverified: a forged list
  // of 50 names, greeted 10 times each, slowed the collection of tombstones
  // in tests/proc_attack_mesh.sh (attack 4) from 5 to 9-11 s on a loaded
  // machine, past its bound; a real mesh is below the mark within a round
  // or two of greetings.
  if (to_greet_.empty()) {
    std::vector<std::string> again;
    for (const auto& [name, m] : members_) {
      if (!m.verified && m.reachable() && m.greetings > 0 && m.greetings < kMaxGreetings) again.push_back(name);
    }
    if (again.size() <= kMaxRetriedUnverified) to_greet_.insert(to_greet_.end(), again.begin(), again.end());
  }
  greet_due();
  // A suspect hears the rumour about itself every round until it refutes or
  // is declared dead: a refutation that is never provoked cannot happen.
  // Of the suspects never heard from directly, only a few a round: a forged
  // list can name thousands of suspects, and telling each of them five
  // times a second crowded out the datagrams of real members.
  size_t unverified_told = 0;
  for (const auto& [deadline, name] : suspects_) {
    if (unverified_told == kUnverifiedRemindersPerRound) break;
    const Member& m = *find(name);
    if (m.verified) continue;  // told below
    send_members(m.addr, {m.update()});
    ++unverified_told;
  }
  for (const std::string& name : verified_) {
    const Member& m = *find(name);
    if (m.state == MemberState::kSuspect) send_members(m.addr, {m.update()});
  }
  if (broadcasts_.empty()) return;
  auto targets = random_members(kGossipFanout, "");
  if (targets.empty()) return;
  auto ups = take_piggyback(cfg_.mtu - wire::kHeaderBytes - 10);
  for (const Member* m : targets) send_members(m->addr, ups);
}

void Membership::reconnect_tick() {
  const bool alone = live_count() == 1;
  alone_retry_ms_ = alone && !seeds_.empty() ? std::min<uint64_t>(alone_retry_ms_ * 2, 1000) : 100;
  next_reconnect_us_ = now_.mono_us + (alone && !seeds_.empty() ? alone_retry_ms_ : 1000) * kMs;
  timers_.set(TimerKind::kReconnect, 0, next_reconnect_us_);
  if (leaving_) return;
  check_silent_seeds();
  // Dead members may only be partitioned away: knock on one door per second.
  std::vector<const Member*> dead;
  for (const auto& [name, m] : members_) {
    if (m.state == MemberState::kDead) dead.push_back(&m);
  }
  if (!dead.empty()) {
    const Member* m = dead[rng_() % dead.size()];
    hooks_.sender->send(m->addr, wire::Join{self_update()});
  }
  // Alone: keep trying the seeds we were given.
  if (alone) {
    for (const auto& e : seeds_) {
      if (e != self_.addr) hooks_.sender->send(e, wire::Join{self_update()});
    }
  }
}

}  // namespace meshkv::node
