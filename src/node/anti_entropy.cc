// Anti-entropy by version vectors: push-pull digests answered with chunked
// deltas. The correctness argument for chunks is in crdt/replica.h.
#include "node/anti_entropy.h"

#include <algorithm>

#include "wire/codec.h"

namespace meshkv::node {

using wire::MemberState;

namespace {
constexpr uint64_t kMs = 1000;
// A summary's check on the receiver's record of the sender's vector.
uint64_t vv_sum(const crdt::VersionVector& vv) {
  uint64_t sum = 0;
  for (const auto& [o, s] : vv.items()) sum += s;
  return sum;
}
// Chunks one digest is answered with. A peer that still misses more asks
// again as soon as the answer advanced its vector, so a large sync proceeds
// in RTT-clocked rounds instead of one burst that overflows socket buffers.
// 128 chunks are about 170 KB, inside Linux's default receive buffer of
// 208 KiB. A full sync of 1,000,000 keys (scripts/bench_mem.sh's setting)
// took 2.09 s in 48-chunk rounds and 1.29-1.43 s in 128-chunk ones; 256
// sent more twice and was no faster.
constexpr size_t kMaxChunksPerAnswer = 128;
}  // namespace

AntiEntropy::AntiEntropy(const Config& cfg, const Now& now, std::mt19937_64& rng, crdt::Replica& replica,
                         const Membership& members, Timers& timers, Hooks hooks)
    : cfg_(cfg),
      now_(now),
      rng_(rng),
      replica_(replica),
      members_(members),
      timers_(timers),
      hooks_(std::move(hooks)),
      durable_(!cfg.data_dir.empty()) {
  // Spread rounds so that nodes started together do not digest together.
  started_us_ = now_.mono_us;
  next_ae_us_ = now_.mono_us + (rng() % (cfg_.anti_entropy_interval_ms * kMs + 1));
  next_period_us_ = next_ae_us_;
  timers_.set(TimerKind::kAntiEntropy, 0, next_ae_us_ + ride_wait_us());
  timers_.set(TimerKind::kCollect, 0, next_gc_us_);
}

void AntiEntropy::on_member(const MemberEvent& e) {
  if (e.kind == MemberEvent::Kind::kRefuted) return;
  // Who counts toward the majority (the roster, the members in reach, the
  // vectors collection waits for, the exclusions taken from digests): only
  // a member this node has heard from directly, that is a datagram from the
  // member's process sent from the member's own address (Member::verified).
  // On an unsealed mesh anyone can send a Members datagram naming members
  // that do not exist, and gossip carries it to every node; were such
  // members counted, a forged list longer than the mesh would take the
  // majority away for good (the forger restates them alive), and every one
  // of them, never reaching us, would wait in collect() for a vector that
  // never comes, be excluded when reaped, and have that exclusion gossiped
  // on. A member that exists only in datagrams never sends from its address
  // (a forger would have to own that address, and then it simply is a
  // member, as anyone can be on an unsealed mesh). Statements from others
  // do not verify a member: they are what can be forged. The cost: a real
  // member counts from its first datagram to us (its Join, a probe, an
  // ack: well within a probe round of its joining), and collection neither
  // waits for it nor leaves it out before that; if a collection happened
  // meanwhile, it is excluded when heard from (uncounted_), as a member
  // that was away would be, and reconciles.
  const bool rostered = roster_.count(e.name) > 0;
  quorum_up_ += e.counted_after() - e.counted_before();
  const bool present = e.kind != MemberEvent::Kind::kRemoved && e.to != MemberState::kLeft;
  // Once counted, a member stays on the roster until it leaves or is
  // removed, verified or not (a forged statement that it restarted
  // elsewhere must not shrink the majority).
  const bool counts = present && (rostered || e.verified_after);
  if (counts != rostered) {
    if (counts) {
      roster_.insert(e.name);
    } else {
      roster_.erase(e.name);
    }
    if (durable_) hooks_.journal(LogOp{LogOp::Kind::kRoster, false, {e.name, {}}, 0, 0, counts ? 1u : 0u});
  }
  if (e.verified_after && !e.verified_before) {
    if (auto u = uncounted_.find(e.name); u != uncounted_.end()) {
      uncounted_.erase(u);
      exclude(e.name);  // a collection went on without it
    }
  }
  if (e.kind == MemberEvent::Kind::kRemoved) {
    uncounted_.erase(e.name);
    // Its vector no longer counts (nor those of processes it replaced); if
    // it returns, it reconciles first. A member that never counted was
    // never waited for nor left out: nothing to reconcile (and a forger's
    // names stay off the exclusion list).
    std::erase_if(peer_vv_, [&](const auto& p) { return members_.by_uid(p.first) == nullptr; });
    if (rostered || e.verified_before) note_removed(e.name);
  }
  // A member that appears, comes back (a partition healed) or restarted is
  // synced at once: once heard from (a forged list of members must not make
  // us send a digest to every address it names).
  if (e.counted_after() && !e.counted_before()) send_digest(e.addr, false);
}

void AntiEntropy::on_applied(const crdt::KeyedEntry& ke) {
  // Expiring writes too: once expired, they are collected as tombstones are.
  if (ke.entry.tombstone || ke.entry.ttl_ms != 0) tomb_fifo_.emplace_back(now_.mono_us / kMs, ke.key);
}

void AntiEntropy::restore_quorum_ms(uint64_t wall_ms) {
  last_quorum_wall_ms_ = std::max(last_quorum_wall_ms_, wall_ms);
  // Part of a majority before: its roster, kept with it, was the whole mesh.
  if (wall_ms != 0) settled_once_ = true;
}

// ---- the periodic exchange ----------------------------------------------------------

void AntiEntropy::tick() {
  const uint64_t t = now_.mono_us;
  if (t >= next_gc_us_) gc_tick();
  if (t >= next_ae_us_ + ride_wait_us()) round();
  follow_up();
}

// A due round's digest waits this long for a probe to carry it (ride_along):
// a probe starts every probe interval, unless the one before is still out,
// which it is for at most another interval.
uint64_t AntiEntropy::ride_wait_us() const { return 2 * cfg_.probe_interval_ms * kMs; }

void AntiEntropy::next_round() {
  // From when the round was due, not when a probe took it: rounds keep their
  // rate, each only shifted to the probe after it.
  const uint64_t period_us = cfg_.anti_entropy_interval_ms * kMs;
  next_period_us_ += period_us;
  if (next_period_us_ <= now_.mono_us) next_period_us_ = now_.mono_us;
  // At a random point of the period: the probe that takes the round is
  // then any of the period's. Rounds due at a fixed pace took every second
  // probe, and start_probe() can repeat its order round after round (a
  // silent member first): a node's digests then went to the same two of
  // its four peers, and the other two never learned its state.
  next_ae_us_ = next_period_us_ + (period_us == 0 ? 0 : rng_() % period_us);
  timers_.set(TimerKind::kAntiEntropy, 0, next_ae_us_ + ride_wait_us());
}

void AntiEntropy::round() {
  // No probe took the digest in time (this node probes nobody, or its
  // probes keep failing): it goes on its own.
  next_round();
  auto peers = members_.random_members(1, "");
  if (!peers.empty() && peers[0]->state == MemberState::kAlive) {
    send_digest(peers[0]->addr, false, cfg_.ae_summaries ? peers[0] : nullptr);
  }
}

std::optional<wire::Digest> AntiEntropy::ride_along(const Member& target, size_t budget) {
  // Only to a member heard from directly: probes go to every member listed,
  // forged ones too (50 forged names among 3 members took nearly every
  // digest, and tombstones were not collected: tests/proc_attack_mesh.sh).
  // The round waits for a probe of such a member, or goes on its own to
  // one (round(), random_members() preferring them).
  if (now_.mono_us < next_ae_us_ || target.state != MemberState::kAlive || !target.verified) return std::nullopt;
  std::vector<wire::Digest> pieces = digests(target.addr, false, cfg_.ae_summaries ? &target : nullptr, false);
  next_round();
  ++counters_.ae_rounds;
  if (pieces.size() == 1 && wire::encode(wire::Envelope{wire::kVersion, 0, pieces[0]}).size() <= budget) {
    return std::move(pieces[0]);
  }
  // A vector too long for the ping's spare room goes beside it, on its own
  // and in pieces: now, not when the round would give up on probes.
  for (wire::Digest& d : pieces) hooks_.sender->send(target.addr, std::move(d));
  return std::nullopt;
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
  for (wire::Digest& d : digests(to, counter, peer, ask_back)) hooks_.sender->send(to, std::move(d));
}

std::vector<wire::Digest> AntiEntropy::digests(const Endpoint& to, bool counter, const Member* peer,
                                               bool ask_back) {
  std::vector<wire::Digest> out;
  // In sync as far as we know (its last digest, or its confirmation of our
  // summary, showed our vector): ask with the context's hash only. Any
  // difference, in the vector or in the dots beyond gaps, makes the peer
  // answer with its full digest, and the exchange runs as below.
  // A summary states the collection fields a full digest would carry
  // (horizon, reconciled, the roster report), so it is sent only while
  // there is nothing else to tell: no member left out (their names go
  // round in full digests, a few at a time) and nothing in quarantine to
  // ask about. Without them, a receiver kept the roster report of the last
  // full digest: two survivors of a mesh of five each held the other's
  // stale "5 members", never settled, and never collected again.
  if (peer && !counter && !must_resync_ && excluded_.empty() && replica_.quarantined() == 0) {
    auto p = peer_vv_.find(peer->uid);
    if (p != peer_vv_.end() && p->second.reads_summary_gc && !p->second.resyncing && p->second.vv == replica_.vv() &&
        same_retired(p->second)) {
      wire::Digest d;
      d.summary = true;
      d.context_hash = replica_.context().fingerprint();
      d.vv_sum = vv_sum(replica_.vv());
      d.gc_stated = true;
      d.horizon = replica_.horizon().raw;
      d.reconciled = reconciled_;
      d.mesh_size = 1 + roster_.size();
      out.push_back(std::move(d));
      return out;
    }
  }
  // A member left out of our collections is told so in every full digest.
  bool excluded = false;
  if (!excluded_.empty()) {
    const Member* m = members_.at(to);
    excluded = m != nullptr && excluded_.count(m->name) > 0;
  }
  // Exclusions we know of, a few per digest in turn: every node judges a
  // member any node left out, and learns it even if it was not there to
  // collect (it restarted, or started over from one that did).
  std::vector<std::pair<std::string, uint64_t>> excl;
  size_t excl_bytes = 0;
  if (!excluded_.empty()) {
    auto it = excluded_.upper_bound(excl_cursor_);
    for (size_t i = 0; i < std::min(kExclusionsPerDigest, excluded_.size()); ++i) {
      if (it == excluded_.end()) it = excluded_.begin();
      if (it->first.size() <= kMaxExcludedName) {
        excl.emplace_back(it->first, it->second);
        excl_bytes += it->first.size() + 12;
      }
      excl_cursor_ = it->first;
      ++it;
    }
  }
  // Retired origins: their count and hash, and while the peer's differ,
  // some of them by name and all of them as rows (retire.cc).
  wire::Digest retired;
  const crdt::VersionVector shown = retired_fields(to, retired);
  const size_t retired_bytes = retired.retired_count != 0 ? 24 + 19 * retired.retired.size() : 0;
  // Split the vector by origin ranges so that no digest exceeds the MTU.
  const auto& items = shown.items();
  std::vector<crdt::Dot> asks = quarantine_asks();
  const size_t overhead = wire::kHeaderBytes + 64 + excl_bytes + retired_bytes + 4 + 19 * asks.size();
  const size_t per = cfg_.mtu > overhead + 19 ? (cfg_.mtu - overhead) / 19 : 1;
  size_t i = 0;
  uint64_t lo = 0;
  do {
    wire::Digest d;
    d.counter = counter;
    d.ask_back = ask_back && lo == 0;  // one piece asks: the answer is whole
    d.resyncing = must_resync_;
    d.horizon = replica_.horizon().raw;
    d.reconciled = reconciled_;
    d.excluded = excluded;
    if (lo == 0) d.exclusions = excl;
    d.retired_count = retired.retired_count;
    d.retired_hash = retired.retired_hash;
    d.mesh_size = 1 + roster_.size();
    d.reads_summary_gc = true;
    if (lo == 0) d.retired = retired.retired;
    if (lo == 0) d.quarantine_asks = std::move(asks);
    d.origin_lo = lo;
    const size_t end = std::min(items.size(), i + per);
    for (; i < end; ++i) d.vv.raise(items[i].first, items[i].second);
    d.origin_hi = i < items.size() ? items[i - 1].first : ~uint64_t{0};
    lo = d.origin_hi + 1;
    out.push_back(std::move(d));
  } while (i < items.size());
  return out;
}

// ---- answering -----------------------------------------------------------------------

void AntiEntropy::on_digest(const Endpoint& from, uint64_t sender, const wire::Digest& d) {
  if (d.origin_hi < d.origin_lo) {
    ++counters_.dropped;
    return;
  }
  if (d.summary) {
    const bool same = d.context_hash == replica_.context().fingerprint();
    if (same) note_peer_in_sync(sender);
    // Its collection fields, taken as from a full digest. A summary never
    // tells its receiver it was left out, so nothing here starts a resync.
    if (d.gc_stated) {
      if (auto p = peer_vv_.find(sender); p != peer_vv_.end()) {
        p->second.horizon = std::max(p->second.horizon, d.horizon);
      }
      note_settled_report(sender, d);
      on_gc_fields(from, sender, d);
    }
    if (same) return;
    // What made summaries slow repair: a summary that finds a difference
    // used to cost a round trip more than a full digest. The full digest's
    // receiver answers at once with what the sender lacks; the summary's
    // receiver knew only that something differs, sent its vector, and the
    // sender had to send its own back before anything it lacked came (four
    // datagrams instead of two, each exposed to loss, and a lost one waits
    // a whole round). At the end of a burst of writes, when a node that
    // missed some sends a summary to one that has them, that was a second
    // or more. Now, when our last record of the sender's vector (from its
    // digests or its confirmed summaries, and vectors only grow) has the
    // sum the summary states, it is the sender's vector: what it lacks goes
    // now (dots beyond its gaps included), and our full digest asks only
    // for what we lack. When the record is stale, nothing is lost but the
    // shortcut: the exchange runs as before.
    if (auto p = peer_vv_.find(sender); p != peer_vv_.end() && d.vv_sum != 0 && !p->second.resyncing &&
                                        p->second.retired_known && vv_sum(p->second.vv) == d.vv_sum) {
      wire::Digest known;
      known.vv = p->second.vv;
      known.retired_count = p->second.retired_count;
      known.retired_hash = p->second.retired_hash;
      answer(from, known);
      send_digest(from, /*counter=*/false);
      return;
    }
    // Our full vector, and theirs back in any case: equal vectors with
    // different dots beyond gaps need both sides' deltas.
    send_digest(from, /*counter=*/false, nullptr, /*ask_back=*/true);
    return;
  }
  note_peer_vv(sender, d);
  on_retired(sender, d);
  if (on_gc_fields(from, sender, d)) return;
  if (!d.quarantine_asks.empty()) answer_asks(from, d);
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
    if (s > std::max(replica_.vv().get(o), replica_.context().retired_at(o))) {
      send_digest(from, /*counter=*/true);
      return;
    }
  }
}

bool AntiEntropy::on_gc_fields(const Endpoint& from, uint64_t sender, const wire::Digest& d) {
  // A peer's horizon: every node judges against the newest collection it
  // heard of (one from the future is a forgery or a broken clock).
  const uint64_t limit_ms = now_.wall_ms + cfg_.max_clock_skew_ms;
  if (crdt::Hlc{d.horizon}.physical() <= limit_ms && replica_.raise_horizon(crdt::Hlc{d.horizon}) && durable_) {
    hooks_.journal(LogOp{LogOp::Kind::kHorizon, false, {}, 0, reconciled_, d.horizon});
  }
  const Member* m = members_.by_uid(sender);
  if (m == nullptr) return false;
  if (auto p = peer_vv_.find(sender); p != peer_vv_.end()) p->second.reconciled = d.reconciled;
  // Members it knows were left out: unless we know they reconciled since.
  // Only from a member that counts, and only about members that count here
  // (on_member): exclusions are gossiped, so one forged digest would
  // otherwise put names on every node's list. A member that is in the table
  // but not heard from directly is judged all the same, on a separate list
  // that is not passed on and that forged names can only crowd among
  // themselves (heard_exclusions_): a generated history found a node,
  // restarted while such a member was cut off, taking its stale writes as
  // it came back, before it reconciled.
  const bool teller_counts = m->verified || roster_.count(m->name) > 0;
  for (const auto& [name, h] : d.exclusions) {
    if (name == members_.self_name() || h == 0 || name.size() > kMaxExcludedName) continue;
    const Member* x = members_.find(name);
    if (!teller_counts || (!roster_.count(name) && !(x && x->verified))) {
      if (!excluded_.count(name)) ++exclusions_refused_;
      if (teller_counts && x != nullptr && !excluded_.count(name)) note_heard_exclusion(x->uid, name, h);
      continue;
    }
    if (x != nullptr) {
      auto p = peer_vv_.find(x->uid);
      if (p != peer_vv_.end() && p->second.reconciled >= h) continue;
    }
    auto it = excluded_.find(name);
    if (it != excluded_.end() && it->second >= h) continue;
    if (it == excluded_.end() && excluded_.size() >= kMaxExcluded) continue;
    excluded_[name] = h;
    note_judged_to(name, h);
    if (durable_) hooks_.journal(LogOp{LogOp::Kind::kExcluded, false, {name, {}}, 0, 0, h});
  }
  if (auto it = heard_exclusions_.find(m->name); it != heard_exclusions_.end() && d.reconciled >= it->second &&
                                                   !d.resyncing) {
    heard_exclusions_.erase(it);
  }
  // We left it out: has it reconciled up to there since?
  if (auto it = excluded_.find(m->name); it != excluded_.end()) {
    if (d.reconciled >= it->second && !d.resyncing) {
      hooks_.log(LogLevel::kInfo, m->name + " has reconciled: its entries are trusted again");
      if (durable_) hooks_.journal(LogOp{LogOp::Kind::kExcluded, false, {m->name, {}}, 0, 0, 0});
      excluded_.erase(it);
    } else if (!d.counter && !d.resyncing) {
      send_digest(from, /*counter=*/true);  // says "reconcile with me"
    }
  }
  // It left us out: reconcile with it, whatever our own view says.
  // A second teller replaces the first when the first is starting over
  // itself (two members that left each other out would otherwise wait on
  // each other for ever) or knows of a newer collection.
  bool better = false;
  if (d.excluded && notice_from_ != 0 && notice_from_ != sender && d.horizon > reconciled_ &&
      !d.resyncing) {
    auto cur = peer_vv_.find(notice_from_);
    better = cur == peer_vv_.end() || cur->second.resyncing || d.horizon > cur->second.horizon;
  }
  // A teller that is starting over itself is not followed (yet): it may be
  // waiting on this node in turn, each for the other's vector for ever (a
  // generated history found two such). It tells again once it is done.
  if (d.excluded && (notice_from_ == 0 || better) && d.horizon > reconciled_ && !d.resyncing) {
    ++reconcile_notices_;
    notice_from_ = sender;
    must_resync_ = true;
    quorum_back_us_ = now_.mono_us;  // wait for its vector as of now
    hooks_.log(LogLevel::kWarn, m->name + " says this node was left out of tombstone collection: "
                                          "reconciling with it");
    if (d.origin_lo == 0 && d.origin_hi == ~uint64_t{0}) {
      try_resync();  // its whole vector came with the notice
    } else {
      send_digest(from, false);
    }
    return true;
  }
  return false;
}

void AntiEntropy::answer(const Endpoint& from, const wire::Digest& d) {
  const size_t budget = cfg_.mtu - wire::kChunkOverhead;
  // A peer whose retired origins differ from ours may lack the writes of
  // ours (it joined later, or started over): they come too, after the others.
  const bool retired = !replica_.context().retired().empty() &&
                       (d.retired_count != replica_.context().retired().size() ||
                        d.retired_hash != replica_.context().retired_hash());
  auto chunks = replica_.delta(d.vv, budget, d.origin_lo, d.origin_hi, kMaxChunksPerAnswer, retired);
  for (auto& c : chunks) {
    ++counters_.chunks_sent;
    hooks_.sender->send(from, wire::ChunkMsg{std::move(c), reconciled_});
  }
}

void AntiEntropy::on_chunk(const Endpoint& from, uint64_t sender, const wire::ChunkMsg& c) {
  ++counters_.chunks_received;
  const uint64_t before = replica_.vv().get(c.chunk.origin);
  std::vector<const crdt::KeyedEntry*> won;
  const crdt::Judging j = judging(sender, from, c.reconciled);
  Status s = replica_.apply_chunk(c.chunk, now_.wall_ms, &won, j.all, j.up_to);
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
  p.horizon = std::max(p.horizon, d.horizon);
  p.retired_known = true;
  p.retired_count = d.retired_count;
  p.retired_hash = d.retired_hash;
  p.reads_summary_gc = d.reads_summary_gc;
  if (crdt::covers_all(replica_.vv(), p.vv)) p.covered_us = now_.mono_us;
  note_settled_report(uid, d);
}

void AntiEntropy::note_peer_in_sync(uint64_t uid) {
  if (uid == 0 || !members_.by_uid(uid)) return;
  PeerVector& p = peer_vv_[uid];
  p.vv = replica_.vv();
  p.updated_us = now_.mono_us;
  p.covered_us = now_.mono_us;
  p.resyncing = false;
  // The hash it matched covers the retired origins too.
  p.retired_known = true;
  p.retired_count = replica_.context().retired().size();
  p.retired_hash = replica_.context().retired_hash();
}

const crdt::VersionVector* AntiEntropy::peer_vector(uint64_t uid) const {
  auto p = peer_vv_.find(uid);
  return p == peer_vv_.end() ? nullptr : &p->second.vv;
}

uint64_t AntiEntropy::covered_us(uint64_t uid) const {
  auto p = peer_vv_.find(uid);
  return p == peer_vv_.end() ? 0 : p->second.covered_us;
}

void AntiEntropy::pull(const Member& m) { send_digest(m.addr, /*counter=*/false); }

void AntiEntropy::exchange(const Member& m) {
  send_digest(m.addr, /*counter=*/false, nullptr, /*ask_back=*/true);
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
  v.set("settled", settled());
  v.set("mesh_size", static_cast<uint64_t>(1 + roster_.size()));
  v.set("resync_pending", must_resync_);
  v.set("resyncs", resyncs_);
  v.set("horizon", replica_.horizon().raw);
  v.set("reconciled", reconciled_);
  v.set("reconcile_notices", reconcile_notices_);
  wire::Value ex = wire::Value::list();
  for (const auto& [name, h] : excluded_) ex.push(wire::Value(name));
  v.set("excluded", std::move(ex));
  v.set("exclusions_refused", exclusions_refused_);
  v.set("uncounted", static_cast<uint64_t>(uncounted_.size()));
  v.set("quarantined", static_cast<uint64_t>(replica_.quarantined()));
  v.set("quarantine_overflow", replica_.quarantine_overflow());
  v.set("quarantine_asks_answered", asks_answered_);
  v.set("retired_origins", static_cast<uint64_t>(replica_.context().retired().size()));
  v.set("retirements", retirements_);
  v.set("retirements_taken", retirements_taken_);
  v.set("unretirements", unretirements_);
  return v;
}

}  // namespace meshkv::node
