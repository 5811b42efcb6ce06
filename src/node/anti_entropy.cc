// Anti-entropy by version vectors: push-pull digests answered with chunked
// deltas. The correctness argument for chunks is in crdt/replica.h.
#include "node/anti_entropy.h"

#include <algorithm>

#include "wire/codec.h"

namespace meshkv::node {

using wire::MemberState;

namespace {
constexpr uint64_t kMs = 1000;
// Chunks one digest is answered with. A peer that still misses more asks
// again as soon as the answer advanced its vector, so a large sync proceeds
// in RTT-clocked rounds instead of one burst that overflows socket buffers.
constexpr size_t kMaxChunksPerAnswer = 48;
}  // namespace

AntiEntropy::AntiEntropy(const Config& cfg, const Now& now, std::mt19937_64& rng, crdt::Replica& replica,
                         const Membership& members, Timers& timers, Hooks hooks)
    : cfg_(cfg),
      now_(now),
      replica_(replica),
      members_(members),
      timers_(timers),
      hooks_(std::move(hooks)),
      durable_(!cfg.data_dir.empty()) {
  // Spread rounds so that nodes started together do not digest together.
  next_ae_us_ = now_.mono_us + (rng() % (cfg_.anti_entropy_interval_ms * kMs + 1));
  timers_.set(TimerKind::kAntiEntropy, 0, next_ae_us_);
  timers_.set(TimerKind::kCollect, 0, next_gc_us_);
}

void AntiEntropy::on_member(const MemberEvent& e) {
  if (e.kind == MemberEvent::Kind::kRefuted) return;
  const bool counted_before = e.kind != MemberEvent::Kind::kAdded && e.from != MemberState::kLeft;
  const bool counted_after = e.kind != MemberEvent::Kind::kRemoved && e.to != MemberState::kLeft;
  quorum_known_ += counted_after - counted_before;
  quorum_up_ += e.reachable_after() - e.reachable_before();
  if (e.reachable_after() && !e.reachable_before()) came_back_us_ = now_.mono_us;
  if (e.kind == MemberEvent::Kind::kRemoved) {
    // Its vector no longer counts (nor those of processes it replaced).
    std::erase_if(peer_vv_, [&](const auto& p) { return members_.by_uid(p.first) == nullptr; });
    // Back to a majority by reaping, with nobody back meanwhile: every
    // member in reach was in reach all along, and so counted us before
    // collecting anything. Nothing was collected that we lack, and a resync
    // (gc.cc) would only drop and refetch everything, racing the others'.
    if (quorum_lost_us_ != 0 && has_quorum() && came_back_us_ < quorum_lost_us_) quorum_lost_us_ = 0;
  }
  // A member that appears, comes back (a partition healed) or restarted is
  // synced at once.
  if (e.reachable_after() && (!e.reachable_before() || e.new_process)) send_digest(e.addr, false);
}

void AntiEntropy::on_applied(const crdt::KeyedEntry& ke) {
  if (ke.entry.tombstone) tomb_fifo_.emplace_back(now_.wall_ms, ke.key);
}

void AntiEntropy::restore_quorum_ms(uint64_t wall_ms) {
  last_quorum_wall_ms_ = std::max(last_quorum_wall_ms_, wall_ms);
}

// ---- the periodic exchange ----------------------------------------------------------

void AntiEntropy::tick() {
  const uint64_t t = now_.mono_us;
  if (t >= next_gc_us_) gc_tick();
  if (t >= next_ae_us_) round();
  follow_up();
}

void AntiEntropy::round() {
  next_ae_us_ = now_.mono_us + cfg_.anti_entropy_interval_ms * kMs;
  timers_.set(TimerKind::kAntiEntropy, 0, next_ae_us_);
  auto peers = members_.random_members(1, "");
  if (!peers.empty() && peers[0]->state == MemberState::kAlive) {
    send_digest(peers[0]->addr, false, cfg_.ae_summaries ? peers[0] : nullptr);
  }
}

void AntiEntropy::follow_up() {
  for (auto it = followup_.begin(); it != followup_.end();) {
    if (it->second.at_us > now_.mono_us) {
      ++it;
      continue;
    }
    const Member* m = members_.find(it->first);
    if (m && m->reachable()) send_digest(m->addr, true);
    timers_.cancel(TimerKind::kFollowUp, it->second.timer);
    it = followup_.erase(it);
  }
}

void AntiEntropy::send_digest(const Endpoint& to, bool counter, const Member* peer, bool ask_back) {
  ++counters_.ae_rounds;
  // In sync as far as we know (its last digest, or its confirmation of our
  // summary, showed our vector): ask with the context's hash only. Any
  // difference, in the vector or in the dots beyond gaps, makes the peer
  // answer with its full digest, and the exchange runs as below.
  if (peer && !counter && !must_resync_) {
    auto p = peer_vv_.find(peer->uid);
    if (p != peer_vv_.end() && !p->second.resyncing && p->second.vv == replica_.vv()) {
      wire::Digest d;
      d.summary = true;
      d.context_hash = replica_.context().fingerprint();
      hooks_.sender->send(to, std::move(d));
      return;
    }
  }
  // Split the vector by origin ranges so that no digest exceeds the MTU.
  const auto& items = replica_.vv().items();
  const size_t per = std::max<size_t>(1, (cfg_.mtu - wire::kHeaderBytes - 40) / 19);
  size_t i = 0;
  uint64_t lo = 0;
  do {
    wire::Digest d;
    d.counter = counter;
    d.ask_back = ask_back && lo == 0;  // one piece asks: the answer is whole
    d.resyncing = must_resync_;
    d.origin_lo = lo;
    const size_t end = std::min(items.size(), i + per);
    for (; i < end; ++i) d.vv.raise(items[i].first, items[i].second);
    d.origin_hi = i < items.size() ? items[i - 1].first : ~uint64_t{0};
    lo = d.origin_hi + 1;
    hooks_.sender->send(to, std::move(d));
  } while (i < items.size());
}

// ---- answering -----------------------------------------------------------------------

void AntiEntropy::on_digest(const Endpoint& from, uint64_t sender, const wire::Digest& d) {
  if (d.origin_hi < d.origin_lo) {
    ++counters_.dropped;
    return;
  }
  if (d.summary) {
    if (d.context_hash == replica_.context().fingerprint()) {
      note_peer_in_sync(sender);
    } else {
      // Our full vector, and theirs back in any case: equal vectors with
      // different dots beyond gaps need both sides' deltas.
      send_digest(from, /*counter=*/false, nullptr, /*ask_back=*/true);
    }
    return;
  }
  note_peer_vv(sender, d);
  if (d.reply) answer(from, d);
  if (d.counter) return;
  // A peer starting over needs our vector to know what to drop; a peer
  // that answered our summary wants it too.
  if (d.resyncing || d.ask_back) {
    send_digest(from, /*counter=*/true);
    return;
  }
  // Push-pull: if the asker holds writes we lack, ask back once.
  for (const auto& [o, s] : d.vv.items()) {
    if (s > replica_.vv().get(o)) {
      send_digest(from, /*counter=*/true);
      return;
    }
  }
}

void AntiEntropy::answer(const Endpoint& from, const wire::Digest& d) {
  const size_t budget = cfg_.mtu - wire::kChunkOverhead;
  auto chunks = replica_.delta(d.vv, budget, d.origin_lo, d.origin_hi, kMaxChunksPerAnswer);
  for (auto& c : chunks) {
    ++counters_.chunks_sent;
    hooks_.sender->send(from, wire::ChunkMsg{std::move(c)});
  }
}

void AntiEntropy::on_chunk(uint64_t sender, const wire::ChunkMsg& c) {
  ++counters_.chunks_received;
  const uint64_t before = replica_.vv().get(c.chunk.origin);
  std::vector<const crdt::KeyedEntry*> won;
  Status s = replica_.apply_chunk(c.chunk, now_.wall_ms, &won);
  if (!s.ok()) {
    ++counters_.dropped;
    hooks_.log(LogLevel::kDebug, "dropped chunk: " + s.to_string());
    return;
  }
  for (const auto* ke : won) hooks_.applied(*ke);
  if (replica_.vv().get(c.chunk.origin) <= before) return;
  // Progress means the sender may have more for us: ask again soon.
  if (durable_ && c.chunk.from < c.chunk.to) {
    hooks_.journal(LogOp{LogOp::Kind::kRange, false, {}, c.chunk.origin, c.chunk.from, c.chunk.to});
  }
  if (const Member* m = members_.by_uid(sender)) {
    auto [f, fresh] = followup_.try_emplace(m->name);
    if (!fresh) return;  // already due
    f->second = {now_.mono_us + std::max<uint64_t>(m->rtt.srtt_us(), 1000), m->key};
    timers_.set(TimerKind::kFollowUp, m->key, f->second.at_us);
  }
}

void AntiEntropy::note_peer_vv(uint64_t uid, const wire::Digest& d) {
  if (uid == 0 || !members_.by_uid(uid)) return;
  PeerVector& p = peer_vv_[uid];
  p.vv.replace_range(d.origin_lo, d.origin_hi, d.vv);
  p.updated_us = now_.mono_us;
  p.resyncing = d.resyncing;
}

void AntiEntropy::note_peer_in_sync(uint64_t uid) {
  if (uid == 0 || !members_.by_uid(uid)) return;
  PeerVector& p = peer_vv_[uid];
  p.vv = replica_.vv();
  p.updated_us = now_.mono_us;
  p.resyncing = false;
}

// ---- views ---------------------------------------------------------------------------

crdt::VersionVector AntiEntropy::furthest() const {
  crdt::VersionVector best = replica_.vv();
  for (const auto& [uid, p] : peer_vv_) best.join(p.vv);
  return best;
}

wire::Value AntiEntropy::status() const {
  wire::Value v = wire::Value::object();
  v.set("tombstone_grace_ms", cfg_.tombstone_grace_ms);
  v.set("tombstones", static_cast<uint64_t>(replica_.map().tombstones()));
  v.set("waiting", static_cast<uint64_t>(tomb_fifo_.size() + tomb_ripe_.size()));
  v.set("collected", gc_collected_);
  v.set("quorum", has_quorum());
  v.set("resync_pending", must_resync_);
  v.set("resyncs", resyncs_);
  v.set("resync_dropped", resync_dropped_);
  return v;
}

}  // namespace meshkv::node
