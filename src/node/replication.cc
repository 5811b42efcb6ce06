// Replication: eager pushes of local writes, acknowledged, retransmitted with
// backoff, duplicates suppressed.
#include "node/replication.h"

#include <algorithm>

#include "wire/codec.h"

namespace meshkv::node {

namespace {
constexpr size_t kMaxPendingPerMember = 4096;
// Pushes in flight to one member (sent, not yet acknowledged). More wait in
// order and leave as acknowledgements come back. Without a bound, a node
// that accepts writes faster than its peers can apply them floods their
// receive buffers: with batched clients 61 % of datagrams were dropped by
// the kernel and more than half of all datagrams sent were retransmissions.
// 256 leaves room for the retransmissions of a 50 %-loss link at 500
// pushes a second, while bounding what a peer must queue per sender to
// about 360 KB.
constexpr size_t kPushWindow = 256;
// A retransmission waits, up to kMaxQueuedWaitUs after the push was first
// sent, while no later push was acknowledged by a member with this many
// pushes in flight to it (tick()).
constexpr size_t kSilentInFlight = 32;
constexpr uint64_t kMaxQueuedWaitUs = 100'000;
constexpr size_t kMaxTraces = 64;

// Pushes leave at once when writes are sparse. Under load (local writes
// more often than every kLoadedGapUs, smoothed over about 8 writes, so a
// burst counts as load from its 16th write on), the writes that follow a
// push wait until kPushHoldUs have passed since it, or until they fill a
// datagram: a push then carries many writes, and every peer receives,
// checks and acknowledges a fraction of the datagrams, at the price of at
// most that delay. (At 10,000 writes/s into a node a push carried 2.4
// writes without it.)
constexpr uint64_t kPushHoldUs = 1000;
constexpr uint64_t kLoadedGapUs = 250;
}  // namespace

Replication::Replication(const Config& cfg, uint64_t self_uid, const Now& now, crdt::Replica& replica,
                         const Membership& members, Timers& timers, Hooks hooks)
    : cfg_(cfg),
      self_uid_(self_uid),
      now_(now),
      replica_(replica),
      members_(members),
      timers_(timers),
      hooks_(std::move(hooks)) {}

void Replication::note_local_write(const crdt::KeyedEntry& ke) {
  const uint64_t gap = std::min<uint64_t>(now_.mono_us - last_write_us_, 2000);
  write_gap_us_ = (7 * write_gap_us_ + gap) / 8;
  last_write_us_ = now_.mono_us;
  unpushed_bytes_ += crdt::entry_size_bound(ke.key.size(), ke.entry.value.size());
  unpushed_.push_back(ke);
}

void Replication::flush_gathered() {
  if (unpushed_.empty()) return;
  const size_t budget = cfg_.mtu > wire::kPushOverhead ? cfg_.mtu - wire::kPushOverhead : 0;
  if (write_gap_us_ < kLoadedGapUs && now_.mono_us < last_push_us_ + kPushHoldUs &&
      unpushed_bytes_ < budget) {
    timers_.set(TimerKind::kPushHold, 0, last_push_us_ + kPushHoldUs);
    return;
  }
  flush();
}

void Replication::flush() {
  if (unpushed_.empty()) return;
  last_push_us_ = now_.mono_us;
  timers_.cancel(TimerKind::kPushHold, 0);
  unpushed_bytes_ = 0;
  // Pushed to members heard from directly (Member::verified). One not yet
  // heard from (it appeared only just) gets these writes by anti-entropy. On an unsealed mesh anyone can list members at
  // any address: pushing to them would send every write, and its
  // retransmissions, once per name listed, to addresses of the forger's
  // choosing, and keep a copy per name until the retransmissions ran out.
  std::vector<const Member*> targets;
  for (const auto& [name, m] : members_.members()) {
    if (m.reachable() && m.verified) targets.push_back(&m);
  }
  const size_t budget = cfg_.mtu > wire::kPushOverhead ? cfg_.mtu - wire::kPushOverhead : 0;
  size_t i = 0;
  while (i < unpushed_.size()) {
    wire::Push p;
    p.msg_seq = ++msg_seq_;
    p.reconciled = hooks_.reconciled ? hooks_.reconciled() : 0;
    p.chunk.origin = self_uid_;
    size_t bytes = 0;
    // Pack writes into one datagram while they fit; a large one goes alone
    // and is fragmented.
    while (i < unpushed_.size()) {
      const auto& ke = unpushed_[i];
      const size_t sz = crdt::entry_size_bound(ke.key.size(), ke.entry.value.size());
      if (!p.chunk.entries.empty() && bytes + sz > budget) break;
      p.chunk.entries.push_back(std::move(unpushed_[i++]));
      bytes += sz;
    }
    if (targets.empty()) continue;  // anti-entropy brings it to members who join later
    const uint64_t first_seq = p.chunk.entries.front().entry.dot.seq;
    const uint64_t last_seq = p.chunk.entries.back().entry.dot.seq;
    const std::vector<wire::Bytes> dgrams = hooks_.sender->encode(std::move(p), targets.size());
    for (const Member* m : targets) enqueue(*m, msg_seq_, first_seq, last_seq, dgrams);
  }
  unpushed_.clear();
}

void Replication::enqueue(const Member& m, uint64_t seq, uint64_t first_seq, uint64_t last_seq,
                          const std::vector<wire::Bytes>& dgrams) {
  Queue& q = queues_[m.name];
  if (q.pending.size() >= kMaxPendingPerMember) {
    drop_pending(q, q.pending.begin());  // oldest; anti-entropy repairs it
    ++counters_.queue_drops;
  }
  PendingPush& pp = q.pending[seq];
  pp.datagrams = dgrams;
  pp.first_seq = first_seq;
  pp.last_seq = last_seq;
  q.waiting.push_back(seq);
  release_waiting(m, q);
}

void Replication::release_waiting(const Member& m, Queue& q) {
  while (q.in_flight < kPushWindow && !q.waiting.empty()) {
    const uint64_t seq = q.waiting.front();
    q.waiting.pop_front();
    auto it = q.pending.find(seq);
    if (it == q.pending.end() || it->second.sent) continue;  // dropped meanwhile
    PendingPush& pp = it->second;
    for (const auto& d : pp.datagrams) hooks_.sender->send_encoded(m.addr, d);
    pp.sent = true;
    pp.attempts = 1;
    if (q.answered_us == 0) q.answered_us = now_.mono_us;
    pp.first_sent_us = now_.mono_us;
    pp.deadline_us = now_.mono_us + m.rtt.rto_us();
    retransmit_timers_.push({pp.deadline_us, {m.name, seq}});
    ++q.in_flight;
  }
  arm_retransmit();
}

void Replication::arm_retransmit() {
  if (retransmit_timers_.empty()) return timers_.cancel(TimerKind::kRetransmit, 0);
  timers_.set(TimerKind::kRetransmit, 0, retransmit_timers_.top().first);
}

void Replication::drop_pending(Queue& q, std::map<uint64_t, PendingPush>::iterator it) {
  if (it->second.sent) --q.in_flight;
  q.pending.erase(it);  // a waiting one's seq stays queued and is skipped
}

void Replication::retract(uint64_t from_seq) {
  std::erase_if(unpushed_, [&](const crdt::KeyedEntry& ke) { return ke.entry.dot.seq >= from_seq; });
  unpushed_bytes_ = 0;
  for (const auto& ke : unpushed_) unpushed_bytes_ += crdt::entry_size_bound(ke.key.size(), ke.entry.value.size());
  for (auto& [name, q] : queues_) {
    for (auto it = q.pending.begin(); it != q.pending.end();) {
      auto next = std::next(it);
      if (it->second.last_seq >= from_seq) drop_pending(q, it);
      it = next;
    }
    // Room in the window goes to the pushes waiting for it.
    const auto m = members_.members().find(name);
    if (m != members_.members().end() && m->second.reachable()) release_waiting(m->second, q);
  }
}

void Replication::on_member(const MemberEvent& e) {
  if (e.kind == MemberEvent::Kind::kRemoved) {
    queues_.erase(e.name);  // its timers find no queue and are skipped
    return;
  }
  if (e.reachable_after()) return;
  // Anti-entropy catches it up if it returns.
  if (auto q = queues_.find(e.name); q != queues_.end()) q->second = Queue{};
}

void Replication::tick() {
  while (!retransmit_timers_.empty() && retransmit_timers_.top().first <= now_.mono_us) {
    auto [deadline, key] = retransmit_timers_.top();
    retransmit_timers_.pop();
    const Member* m = members_.find(key.first);
    auto q = queues_.find(key.first);
    if (!m || q == queues_.end()) continue;
    auto p = q->second.pending.find(key.second);
    if (p == q->second.pending.end() || p->second.deadline_us != deadline) continue;  // stale
    PendingPush& pp = p->second;
    const bool urgent = hooks_.urgent && hooks_.urgent(pp.first_seq, pp.last_seq);
    if (!m->reachable() || (pp.attempts > cfg_.max_retransmits && !urgent)) {
      ++counters_.push_gave_up;
      drop_pending(q->second, p);
      release_waiting(*m, q->second);
      continue;
    }
    if (hooks_.expired) hooks_.expired(m->name, pp.first_sent_us);
    // A receiver works through its pushes in the order they were sent. While
    // no push sent after this one has been acknowledged, with dozens in
    // flight, this one is most likely still queued there (a receiver
    // descheduled, or working through its socket buffer), and resending only
    // adds duplicates: in the batched throughput run every retransmission
    // arrived twice (17,592 duplicates of 17,592 retransmissions, no datagram
    // lost). So it waits, up to 100 ms after it was first sent. A later push
    // acknowledged first means this one or its ack was lost: it goes again
    // at once. With few in flight, as with single writes under loss, nothing
    // waits.
    if (!urgent && q->second.in_flight >= kSilentInFlight && q->second.highest_acked < key.second &&
        now_.mono_us < pp.first_sent_us + kMaxQueuedWaitUs) {
      ++counters_.retransmits_deferred;
      pp.deadline_us = now_.mono_us + m->rtt.rto_us();
      retransmit_timers_.push({pp.deadline_us, key});
      continue;
    }
    for (const auto& d : pp.datagrams) hooks_.sender->send_encoded(m->addr, d);
    ++counters_.retransmits;
    // A write a client waits for is retried at the RTO: under 30 % loss a
    // member's round trip fails half the time, and backoff made the wait
    // for all members take a second at the 99th percentile.
    // The RTO carries 4 deviations of the RTT, which loss and a loaded
    // machine inflate; twice the smoothed RTT is enough for a retry.
    const uint64_t quick = std::clamp<uint64_t>(2 * m->rtt.srtt_us(), RttEstimator::kMinRtoUs, m->rtt.rto_us());
    pp.deadline_us = now_.mono_us + (urgent ? quick : backoff_us(m->rtt.rto_us(), pp.attempts));
    ++pp.attempts;
    retransmit_timers_.push({pp.deadline_us, key});
  }
  arm_retransmit();
}

void Replication::on_push(const Endpoint& from, uint64_t sender, const wire::Push& p) {
  // Always acknowledge: the sender may have lost our previous ack.
  hooks_.sender->send(from, wire::Ack{p.msg_seq});
  if (p.chunk.origin != sender || p.chunk.from != p.chunk.to) {
    ++counters_.dropped;
    return;
  }
  // One window per sender uid; uids of processes that are gone are forgotten
  // when the table grows (a forgotten window only risks a harmless re-apply).
  if (push_seen_.size() > 1024 && !push_seen_.count(sender)) {
    std::erase_if(push_seen_, [&](const auto& kv) { return members_.by_uid(kv.first) == nullptr; });
  }
  if (!push_seen_[sender].check_and_mark(p.msg_seq)) {
    // A push again: our acknowledgement (or the push) was lost. Once more,
    // so that one more loss does not cost the sender another round trip.
    hooks_.sender->send(from, wire::Ack{p.msg_seq});
    ++counters_.duplicates;
    return;
  }
  std::vector<const crdt::KeyedEntry*> won;
  const crdt::Judging j = hooks_.judge(sender, from, p.reconciled);
  Status s = replica_.apply_chunk(p.chunk, now_.wall_ms, &won, j.all, j.up_to);
  if (!s.ok()) {
    ++counters_.dropped;
    hooks_.log(LogLevel::kDebug, "dropped push from " + from.to_string() + ": " + s.to_string());
    return;
  }
  for (const auto* ke : won) hooks_.applied(*ke);
}

void Replication::on_ack(uint64_t sender, const wire::Ack& a) {
  const Member* m = members_.by_uid(sender);
  if (!m) return;
  if (auto t = traces_.find(a.msg_seq); t != traces_.end()) {
    for (auto& [name, at] : t->second.acks) {
      if (name == m->name && at == 0) at = now_.mono_us;
    }
  }
  auto q = queues_.find(m->name);
  if (q == queues_.end()) return;
  auto p = q->second.pending.find(a.msg_seq);
  if (p == q->second.pending.end()) return;
  if (!p->second.sent) return;  // an ack for a push not sent yet: a forged or stale seq
  if (p->second.attempts == 1) hooks_.sample_rtt(m->name, now_.mono_us - p->second.first_sent_us);  // Karn
  if (hooks_.acked) hooks_.acked(m->name, p->second.first_seq, p->second.last_seq);
  q->second.answered_us = now_.mono_us;
  q->second.highest_acked = std::max(q->second.highest_acked, a.msg_seq);
  drop_pending(q->second, p);
  release_waiting(*m, q->second);
}

// ---- traces and views --------------------------------------------------------------

uint64_t Replication::trace_last_push() {
  Trace t;
  t.start_us = now_.mono_us;
  for (const auto& [name, m] : members_.members()) {
    if (m.reachable()) t.acks.emplace_back(name, 0);
  }
  if (traces_.size() >= kMaxTraces) traces_.erase(traces_.begin());
  traces_[msg_seq_] = std::move(t);
  return msg_seq_;
}

wire::Value Replication::trace_report(uint64_t id, uint64_t now_us) const {
  auto it = traces_.find(id);
  if (it == traces_.end()) return nullptr;
  const Trace& t = it->second;
  wire::Value v = wire::Value::object();
  v.set("id", id);
  v.set("age_us", now_us - t.start_us);
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

size_t Replication::pending() const {
  size_t n = 0;
  for (const auto& [name, q] : queues_) n += q.pending.size();
  return n;
}

size_t Replication::congestion() const {
  size_t most = 0;
  for (const auto& [name, q] : queues_) {
    if (q.pending.size() <= most || now_.mono_us > q.answered_us + kAnsweringUs) continue;
    const Member* m = members_.find(name);
    if (m != nullptr && m->state == wire::MemberState::kAlive) most = q.pending.size();
  }
  return most;
}

bool Replication::congested() const { return congestion() >= kCongestedAt; }

size_t Replication::pending_for(std::string_view member) const {
  auto q = queues_.find(member);
  return q == queues_.end() ? 0 : q->second.pending.size();
}

}  // namespace meshkv::node
