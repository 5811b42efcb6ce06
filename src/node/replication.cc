// Replication: eager pushes of local writes (acknowledged, retransmitted
// with backoff, duplicates suppressed) and anti-entropy by version vectors
// (push-pull digests answered with chunked deltas). The correctness argument
// for chunks is in crdt/replica.h.
#include <algorithm>

#include "node/engine_impl.h"
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
// Chunks one digest is answered with. A peer that still misses more asks
// again as soon as the answer advanced its vector, so a large sync proceeds
// in RTT-clocked rounds instead of one burst that overflows socket buffers.
constexpr size_t kMaxChunksPerAnswer = 48;
}  // namespace

// ---- replication: eager push ------------------------------------------------

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

void Engine::Impl::note_local_write(const crdt::KeyedEntry& ke) {
  const uint64_t gap = std::min<uint64_t>(now.mono_us - last_write_us, 2000);
  write_gap_us = (7 * write_gap_us + gap) / 8;
  last_write_us = now.mono_us;
  unpushed_bytes += crdt::entry_size_bound(ke.key.size(), ke.entry.value.size());
  unpushed.push_back(ke);
}

void Engine::Impl::flush_pushes_gathered() {
  if (unpushed.empty()) return;
  const size_t budget = cfg.mtu > wire::kPushOverhead ? cfg.mtu - wire::kPushOverhead : 0;
  if (write_gap_us < kLoadedGapUs && now.mono_us < last_push_us + kPushHoldUs &&
      unpushed_bytes < budget) {
    push_due_us = last_push_us + kPushHoldUs;
    return;
  }
  flush_pushes();
}

void Engine::Impl::flush_pushes() {
  if (unpushed.empty()) return;
  last_push_us = now.mono_us;
  push_due_us = 0;
  unpushed_bytes = 0;
  std::vector<Member*> targets;
  for (auto& [name, m] : members) {
    if (m.reachable()) targets.push_back(&m);
  }
  const size_t budget = cfg.mtu > wire::kPushOverhead ? cfg.mtu - wire::kPushOverhead : 0;
  size_t i = 0;
  while (i < unpushed.size()) {
    wire::Push p;
    p.msg_seq = ++msg_seq;
    p.chunk.origin = self_uid;
    size_t bytes = 0;
    // Pack writes into one datagram while they fit; a large one goes alone
    // and is fragmented.
    while (i < unpushed.size()) {
      const auto& ke = unpushed[i];
      const size_t sz = crdt::entry_size_bound(ke.key.size(), ke.entry.value.size());
      if (!p.chunk.entries.empty() && bytes + sz > budget) break;
      p.chunk.entries.push_back(std::move(unpushed[i++]));
      bytes += sz;
    }
    if (targets.empty()) continue;  // anti-entropy brings it to members who join later
    wire::Bytes b = wire::encode(wire::Envelope{wire::kVersion, self_uid, std::move(p)});
    constexpr auto kPushType = static_cast<size_t>(wire::MsgType::kPush);
    counters.sent_by_type[kPushType] += targets.size();
    counters.sent_bytes_by_type[kPushType] += b.size() * targets.size();
    std::vector<wire::Bytes> dgrams;
    if (b.size() <= cfg.mtu) {
      dgrams.push_back(std::move(b));
    } else {
      dgrams = wire::fragment(self_uid, b, cfg.mtu);
    }
    for (Member* m : targets) {
      if (m->pending.size() >= kMaxPendingPerMember) {
        drop_pending(*m, m->pending.begin());  // oldest; anti-entropy repairs it
        ++counters.queue_drops;
      }
      m->pending[msg_seq].datagrams = dgrams;
      m->waiting.push_back(msg_seq);
      release_waiting(*m);
    }
  }
  unpushed.clear();
}

void Engine::Impl::release_waiting(Member& m) {
  while (m.in_flight < kPushWindow && !m.waiting.empty()) {
    const uint64_t seq = m.waiting.front();
    m.waiting.pop_front();
    auto it = m.pending.find(seq);
    if (it == m.pending.end() || it->second.sent) continue;  // dropped meanwhile
    PendingPush& pp = it->second;
    for (const auto& d : pp.datagrams) send_raw(m.addr, d);
    pp.sent = true;
    pp.attempts = 1;
    pp.first_sent_us = now.mono_us;
    pp.deadline_us = now.mono_us + m.rtt.rto_us();
    retransmit_timers.push({pp.deadline_us, {m.name, seq}});
    ++m.in_flight;
  }
}

void Engine::Impl::drop_pending(Member& m, std::map<uint64_t, PendingPush>::iterator it) {
  if (it->second.sent) --m.in_flight;
  m.pending.erase(it);  // a waiting one's seq stays queued and is skipped
}

void Engine::Impl::retransmit_due() {
  while (!retransmit_timers.empty() && retransmit_timers.top().first <= now.mono_us) {
    auto [deadline, key] = retransmit_timers.top();
    retransmit_timers.pop();
    auto m = members.find(key.first);
    if (m == members.end()) continue;
    auto p = m->second.pending.find(key.second);
    if (p == m->second.pending.end() || p->second.deadline_us != deadline) continue;  // stale
    Member& mem = m->second;
    PendingPush& pp = p->second;
    if (!mem.reachable() || pp.attempts > cfg.max_retransmits) {
      ++counters.push_gave_up;
      drop_pending(mem, p);
      release_waiting(mem);
      continue;
    }
    for (const auto& d : pp.datagrams) send_raw(mem.addr, d);
    ++counters.retransmits;
    pp.deadline_us = now.mono_us + backoff_us(mem.rtt.rto_us(), pp.attempts);
    ++pp.attempts;
    retransmit_timers.push({pp.deadline_us, key});
  }
}

void Engine::Impl::on_push(const Endpoint& from, uint64_t sender, const wire::Push& p) {
  // Always acknowledge: the sender may have lost our previous ack.
  send(from, wire::Ack{p.msg_seq});
  if (p.chunk.origin != sender || p.chunk.from != p.chunk.to) {
    ++counters.dropped;
    return;
  }
  // One window per sender uid; uids of processes that are gone are forgotten
  // when the table grows (a forgotten window only risks a harmless re-apply).
  if (push_seen.size() > 1024 && !push_seen.count(sender)) {
    std::erase_if(push_seen, [&](const auto& kv) { return member_by_uid(kv.first) == nullptr; });
  }
  if (!push_seen[sender].check_and_mark(p.msg_seq)) {
    ++counters.duplicates;
    return;
  }
  std::vector<const crdt::KeyedEntry*> won;
  Status s = replica.apply_chunk(p.chunk, now.wall_ms, &won);
  if (!s.ok()) {
    ++counters.dropped;
    log(LogLevel::kDebug, "dropped push from " + from.to_string() + ": " + s.to_string());
    return;
  }
  for (const auto* ke : won) {
    record_change(*ke, false);
    log_entry(*ke);
  }
}

void Engine::Impl::on_ack(uint64_t sender, const wire::Ack& a) {
  Member* m = member_by_uid(sender);
  if (!m) return;
  if (auto t = traces.find(a.msg_seq); t != traces.end()) {
    for (auto& [name, at] : t->second.acks) {
      if (name == m->name && at == 0) at = now.mono_us;
    }
  }
  auto p = m->pending.find(a.msg_seq);
  if (p == m->pending.end()) return;
  if (!p->second.sent) return;  // an ack for a push not sent yet: a forged or stale seq
  if (p->second.attempts == 1) m->rtt.sample(now.mono_us - p->second.first_sent_us);  // Karn
  drop_pending(*m, p);
  release_waiting(*m);
}

// ---- replication: anti-entropy ---------------------------------------------

void Engine::Impl::send_digest(const Endpoint& to, bool counter, const Member* peer,
                               bool ask_back) {
  ++counters.ae_rounds;
  // In sync as far as we know (its last digest, or its confirmation of our
  // summary, showed our vector): ask with the context's hash only. Any
  // difference, in the vector or in the dots beyond gaps, makes the peer
  // answer with its full digest, and the exchange runs as below.
  if (peer && !counter && !must_resync) {
    auto p = peer_vv.find(peer->uid);
    if (p != peer_vv.end() && !p->second.resyncing && p->second.vv == replica.vv()) {
      wire::Digest d;
      d.summary = true;
      d.context_hash = replica.context().fingerprint();
      send(to, std::move(d));
      return;
    }
  }
  // Split the vector by origin ranges so that no digest exceeds the MTU.
  const auto& items = replica.vv().items();
  const size_t per = std::max<size_t>(1, (cfg.mtu - wire::kHeaderBytes - 40) / 19);
  size_t i = 0;
  uint64_t lo = 0;
  do {
    wire::Digest d;
    d.counter = counter;
    d.ask_back = ask_back && lo == 0;  // one piece asks: the answer is whole
    d.resyncing = must_resync;
    d.origin_lo = lo;
    const size_t end = std::min(items.size(), i + per);
    for (; i < end; ++i) d.vv.raise(items[i].first, items[i].second);
    d.origin_hi = i < items.size() ? items[i - 1].first : ~uint64_t{0};
    lo = d.origin_hi + 1;
    send(to, std::move(d));
  } while (i < items.size());
}

void Engine::Impl::on_digest(const Endpoint& from, uint64_t sender, const wire::Digest& d) {
  if (d.origin_hi < d.origin_lo) {
    ++counters.dropped;
    return;
  }
  if (d.summary) {
    if (d.context_hash == replica.context().fingerprint()) {
      note_peer_in_sync(sender);
    } else {
      // Our full vector, and theirs back in any case: equal vectors with
      // different dots beyond gaps need both sides' deltas.
      send_digest(from, /*counter=*/false, nullptr, /*ask_back=*/true);
    }
    return;
  }
  note_peer_vv(sender, d);
  if (d.reply) {
    const size_t budget = cfg.mtu - wire::kChunkOverhead;
    auto chunks = replica.delta(d.vv, budget, d.origin_lo, d.origin_hi, kMaxChunksPerAnswer);
    for (auto& c : chunks) {
      ++counters.chunks_sent;
      send(from, wire::ChunkMsg{std::move(c)});
    }
  }
  if (d.counter) return;
  // A peer starting over needs our vector to know what to drop; a peer
  // that answered our summary wants it too.
  if (d.resyncing || d.ask_back) {
    send_digest(from, /*counter=*/true);
    return;
  }
  // Push-pull: if the asker holds writes we lack, ask back once.
  for (const auto& [o, s] : d.vv.items()) {
    if (s > replica.vv().get(o)) {
      send_digest(from, /*counter=*/true);
      return;
    }
  }
}

void Engine::Impl::on_chunk(uint64_t sender, const wire::ChunkMsg& c) {
  ++counters.chunks_received;
  const uint64_t before = replica.vv().get(c.chunk.origin);
  std::vector<const crdt::KeyedEntry*> won;
  Status s = replica.apply_chunk(c.chunk, now.wall_ms, &won);
  if (!s.ok()) {
    ++counters.dropped;
    log(LogLevel::kDebug, "dropped chunk: " + s.to_string());
    return;
  }
  for (const auto* ke : won) {
    record_change(*ke, false);
    log_entry(*ke);
  }
  // Progress means the sender may have more for us: ask again soon.
  if (replica.vv().get(c.chunk.origin) > before) {
    if (durable && c.chunk.from < c.chunk.to) {
      log_ops.push_back(LogOp{LogOp::Kind::kRange, false, {}, c.chunk.origin, c.chunk.from, c.chunk.to});
    }
    if (Member* m = member_by_uid(sender)) {
      auto& when = ae_followup[m->name];
      if (when == 0) when = now.mono_us + std::max<uint64_t>(m->rtt.srtt_us(), 1000);
    }
  }
}

}  // namespace meshkv::node
