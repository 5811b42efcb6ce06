// Tombstone garbage collection, and the reconciliation that keeps it safe.
//
// A tombstone exists so that a delete beats older writes of its key that are
// still travelling. Once every member's vector covers the tombstone's dot,
// every member holds the tombstone or something newer, and its own causal
// context remembers the delete's dot after the tombstone is gone: a late copy
// of an older write is then recognised as superseded (Replica::apply_entry).
// So a tombstone is dropped when
//   - this node sees a majority of its members (a node cut off from the rest
//     never collects: the others may not have its deletes),
//   - the vector of every member that is not gone covers the dot (vectors are
//     learned from anti-entropy digests; a member dead for longer than the
//     grace period, or left, no longer counts), and
//   - the grace period has passed since the delete.
//
// A member that did not count may hold values older than deletes the others
// dropped, and writes nobody ordered against them. It cannot be trusted to
// know that it was away (it may have been paused, or its clock stepped), so
// the majority decides:
//   - Every node records each member it left out of a collection, with the
//     horizon that collection reached (`excluded_`, kept in the data
//     directory), and until that member's digests say it reconciled up to
//     there, it judges the member's entries (crdt/replica.h: an entry it
//     cannot order against the collected deletes goes to quarantine) and
//     tells it, in every digest, to reconcile.
//   - A node told so starts over from the node that told it, whatever its
//     own clock says: it keeps its entries above that node's horizon, drops
//     the others that node's vector covers (the node has them, or what beat
//     them), and puts the rest in quarantine and sends them, marked
//     unordered, for the majority to judge. Anti-entropy refills the rest.
//     Its reconciled horizon is then the other node's, which ends the
//     exclusion there.
// Only that notice makes a node start over: one that decided by itself (by
// its own clock, or its own view of the quorum) could pick a peer as stale
// as itself. It only logs that it was away.
//
// "A majority of its members" needs the whole membership. A node counts only
// members it has heard from directly (the roster, anti_entropy.cc), so that
// forged names cannot take the majority away; but a node that joined a
// moment ago has heard from only some, and cut off then, it would take the
// few it knows for the mesh (two of five that count each other and the
// seed are "two of three") and collect on a minority's word. So a node also
// needs to be settled (settled()):
//   - it once knew the whole mesh: it founded it (no seed to join and nobody
//     known), or it has heard directly from every member it has heard of
//     (left ones aside), or its data directory was part of a majority (its
//     roster came with it); and
//   - no member on its roster reports counting more members than it does
//     (full digests carry 1 + the sender's roster size: first-hand only,
//     never an echo of other reports, which could then never shrink).
// A node that joins and is cut off before it heard from everyone it was
// told of never collects until it has. Forged names never reach a roster,
// so they change no count and no settled node's majority; a node joining a
// mesh whose gossip still carries such names settles only once they are
// reaped or forgotten (`meshkv forget`), and until then collects nothing
// itself (the others do).
#include <algorithm>

#include "crdt/counter.h"
#include "crdt/orset.h"
#include "node/anti_entropy.h"
#include "wire/codec.h"

namespace meshkv::node {

namespace {
using wire::MemberState;
constexpr uint64_t kMs = 1000;
// A collection this large is worth a snapshot (the log still holds the
// tombstones) and giving memory back.
constexpr uint64_t kCompactAfter = 1024;
}  // namespace

bool AntiEntropy::settled() const {
  if (!settled_once_) return false;
  const uint64_t mine = 1 + roster_.size();
  for (const std::string& name : roster_) {
    const Member* m = members_.find(name);
    if (m == nullptr) continue;
    const auto p = peer_vv_.find(m->uid);
    if (p != peer_vv_.end() && p->second.mesh_size > mine) return false;
  }
  return true;
}

void AntiEntropy::note_settled_report(uint64_t uid, const wire::Digest& d) {
  if (auto p = peer_vv_.find(uid); p != peer_vv_.end()) p->second.mesh_size = d.mesh_size;
}

void AntiEntropy::note_join() {
  join_asked_ = true;
  if (members_.members().empty() && roster_.empty()) settled_once_ = false;
}

void AntiEntropy::check_settled() {
  if (settled_once_) return;
  if (members_.members().empty()) {
    // The founder: no seed to join, nobody known, nothing restored.
    settled_once_ = !join_asked_ && cfg_.join.empty() && roster_.empty();
    return;
  }
  for (const auto& [name, m] : members_.members()) {
    if (m.state != MemberState::kLeft && !roster_.count(name)) return;
  }
  settled_once_ = true;
}

void AntiEntropy::gc_tick() {
  next_gc_us_ = now_.mono_us + std::min<uint64_t>(1000, cfg_.tombstone_grace_ms / 4) * kMs;
  timers_.set(TimerKind::kCollect, 0, next_gc_us_);
  check_settled();
  check_startup();
  send_unordered();
  // Told to reconcile: the teller is in reach, whatever our view of the quorum.
  if (notice_from_ != 0 && must_resync_) {
    try_resync();
    return;
  }
  if (!tombs_scanned_) {
    tombs_scanned_ = true;
    replica_.map().for_each([&](std::string_view k, const crdt::EntryView& e) {
      if (e.tombstone || e.ttl_ms != 0) tomb_fifo_.emplace_back(now_.mono_us / kMs, k);
    });
  }
  if (quorum_tick()) {
    collect();
    retire_ended();
  }
}

void AntiEntropy::check_startup() {
  if (startup_checked_) return;
  startup_checked_ = true;
  // Restarted from a data directory after being away longer than half the
  // grace period: the others may have collected deletes we never saw.
  const uint64_t grace = cfg_.tombstone_grace_ms;
  if (last_quorum_wall_ms_ != 0 && replica_.map().size() > 0 &&
      now_.wall_ms > last_quorum_wall_ms_ + grace / 2) {
    hooks_.log(LogLevel::kInfo, "the data directory was last in touch with a majority " +
                                    std::to_string((now_.wall_ms - last_quorum_wall_ms_) / 1000) +
                                    " s ago (by this clock), longer than half the tombstone grace "
                                    "period: the others say whether this node must reconcile");
  }
}

bool AntiEntropy::quorum_tick() {
  const uint64_t grace = cfg_.tombstone_grace_ms;
  if (!has_quorum()) {
    if (quorum_lost_us_ == 0) quorum_lost_us_ = std::max<uint64_t>(now_.mono_us, 1);
    return false;
  }
  if (quorum_lost_us_ != 0) {
    const uint64_t away_ms = (now_.mono_us - quorum_lost_us_) / kMs;
    quorum_lost_us_ = 0;
    quorum_back_us_ = now_.mono_us;
    if (away_ms > grace / 2 && replica_.map().size() > 0) {
      hooks_.log(LogLevel::kInfo, "back in touch with a majority after " + std::to_string(away_ms / 1000) +
                                      " s, longer than half the tombstone grace period: the others say "
                                      "whether this node must reconcile");
    }
  }
  if (must_resync_ && !try_resync()) return false;
  // Remember (durably) that we were part of a majority now.
  last_quorum_wall_ms_ = now_.wall_ms;
  if (durable_ && now_.wall_ms >= quorum_logged_ms_ + grace / 8) {
    quorum_logged_ms_ = now_.wall_ms;
    hooks_.journal(LogOp{LogOp::Kind::kQuorum, false, {}, 0, 0, now_.wall_ms});
  }
  return true;
}

void AntiEntropy::collect() {
  const uint64_t grace = cfg_.tombstone_grace_ms;
  while (!tomb_fifo_.empty() && tomb_fifo_.front().first + grace <= now_.mono_us / kMs) {
    tomb_ripe_.push_back(std::move(tomb_fifo_.front().second));
    tomb_fifo_.pop_front();
  }
  if (tomb_ripe_.empty()) return;
  // What every member that counts has: the pointwise minimum of vectors.
  // Our retired origins stand as rows at their final seqs, in ours and in
  // those of peers that retired the same (retire.cc).
  const auto& retired = replica_.context().retired();
  crdt::VersionVector stable = replica_.vv();
  for (const auto& [o, f] : retired) stable.raise(o, f);
  std::vector<const std::string*> left_out;
  std::vector<const std::string*> uncounted;
  for (const auto& [name, m] : members_.members()) {
    // Never heard from, and never counted: perhaps nothing but a name in a
    // forged datagram (anti_entropy.cc, on_member). Not waited for; left out
    // only if it turns out to exist.
    if (!m.verified && !roster_.count(name)) {
      if (m.reachable()) uncounted.push_back(&name);
      continue;
    }
    if (m.state == MemberState::kLeft ||
        (m.state == MemberState::kDead && now_.mono_us > m.state_since_us + grace * kMs)) {
      left_out.push_back(&name);
      continue;
    }
    auto p = peer_vv_.find(m.uid);
    if (p == peer_vv_.end()) return;  // not heard yet: nothing is known to be stable
    if (!retired.empty() && same_retired(p->second)) {
      crdt::VersionVector theirs = p->second.vv;
      for (const auto& [o, f] : retired) theirs.raise(o, f);
      stable.meet(theirs);
    } else {
      stable.meet(p->second.vv);
    }
  }
  // Members known from the data directory that this process has not seen
  // yet: as dead members, they hold collection back for the grace period.
  // Past --reap-after unseen, one is forgotten as a reaped member would be.
  std::vector<std::string> reaped;
  for (const std::string& name : roster_) {
    if (members_.find(name) != nullptr) continue;
    if (now_.mono_us < started_us_ + grace * kMs) return;
    if (now_.mono_us >= started_us_ + cfg_.reap_after() * kMs) {
      reaped.push_back(name);
    } else {
      left_out.push_back(&name);
    }
  }
  for (const std::string& name : reaped) {
    roster_.erase(name);
    if (durable_) hooks_.journal(LogOp{LogOp::Kind::kRoster, false, {name, {}}, 0, 0, 0});
    exclude(name);
  }
  uint64_t collected = 0;
  const uint64_t horizon_before = replica_.horizon().raw;
  std::erase_if(tomb_ripe_, [&](const std::string& key) {
    crdt::EntryPtr e = replica_.map().find(key);
    if (!e || !(e->tombstone || e->ttl_ms != 0)) return true;  // overwritten, or collected already
    // An expiring write is a delete at its expiry instant: it waits (in the
    // ripe list, looked at again each round) until the grace period has
    // passed after that instant. Not yet expired: not yet a delete at all.
    const uint64_t dead_ms = e->tombstone ? e->hlc.physical() : crdt::expires_at(*e).physical();
    if (dead_ms + grace > now_.wall_ms) return false;  // a delete from the future
    if (!stable.covers(e->dot)) return false;
    if (replica_.collect(key, e->dot)) ++collected;
    return true;
  });
  if (collected == 0) return;
  // The horizon rose (Replica::collect): everyone left out, now or before,
  // must reconcile up to here before its entries are trusted again. It
  // rises with every collection, by one tick when the deletes collected
  // were all older than it: an exclusion must name a point no member could
  // have reconciled to before this collection, or one that reconciled
  // earlier at the same horizon would count as reconciled now, holding
  // values older than the deletes just collected without it.
  if (replica_.horizon().raw == horizon_before) replica_.raise_horizon(crdt::Hlc{horizon_before + 1});
  // Collecting is no reconciliation: this node's own reconciled horizon
  // moves only when it starts over from a member that told it to
  // (resync_from). A member that another node left out, and that collected
  // since with others, still lacks what that node collected without it.
  if (durable_) {
    hooks_.journal(LogOp{LogOp::Kind::kHorizon, false, {}, 0, reconciled_, replica_.horizon().raw});
  }
  for (const std::string* name : left_out) exclude(*name);
  for (const std::string* name : uncounted) uncounted_.insert(*name);
  for (auto& [name, h] : excluded_) {
    const Member* m = members_.find(name);
    if (m == nullptr || !m->reachable()) exclude(name);
  }
  gc_collected_ += collected;
  gc_collected_since_compaction_ += collected;
  if (gc_collected_since_compaction_ >= kCompactAfter ||
      gc_collected_since_compaction_ * 4 >= replica_.map().size()) {
    gc_collected_since_compaction_ = 0;
    replica_.shrink();
    tomb_ripe_.shrink_to_fit();
    tomb_fifo_.shrink_to_fit();
    hooks_.compact();
  }
  hooks_.log(LogLevel::kDebug, "collected " + std::to_string(collected) + " tombstones");
}

// Starts over from the member that said we were left out, once its vector
// as of the notice has arrived. A teller that is gone frees us to wait for
// another notice. Returns whether nothing is left to wait for.
bool AntiEntropy::try_resync() {
  const Member* m = members_.by_uid(notice_from_);
  if (m == nullptr) {
    notice_from_ = 0;
    must_resync_ = false;
    return true;
  }
  if (!m->reachable()) return false;
  auto p = peer_vv_.find(m->uid);
  if (p != peer_vv_.end() && p->second.updated_us >= quorum_back_us_ && !p->second.resyncing) {
    resync_from(*m);
    return true;
  }
  send_digest(m->addr, false);  // it answers a resyncing digest with its vector
  return false;
}

void AntiEntropy::resync_from(const Member& from) {
  const PeerVector& peer = peer_vv_[from.uid];
  const crdt::VersionVector& theirs = peer.vv;
  replica_.raise_horizon(crdt::Hlc{peer.horizon});
  const crdt::Hlc horizon = replica_.horizon();
  std::vector<crdt::KeyedEntry> keep, aside;
  std::vector<std::pair<std::string, crdt::Hlc>> shadows;
  uint64_t dropped_covered = 0;
  // A peer that retired the same origins as we did held their writes (retire.cc).
  const bool same = !replica_.context().retired().empty() && same_retired(peer);
  replica_.map().for_each([&](std::string_view k, const crdt::EntryView& e) {
    // This node's own counter parts stay: its next increment reads its
    // totals from them, and one made before the peer sent them back would
    // start from zero and, being newer, replace all it had counted. Only
    // this node writes them and parts are never deleted, so the peer holds
    // exactly these or older; nothing collected can be older than them.
    // The same holds for its add and remove entries of sets: each carries
    // a count or the counts it saw, which the next sadd or srem builds on.
    if (auto ik = crdt::parse_internal_key(k);
        e.dot.origin == replica_.self() &&
        ((ik && ik->kind == crdt::InternalKey::Kind::kPart) || crdt::parse_set_key(k).has_value())) {
      keep.push_back(crdt::KeyedEntry{std::string(k), e.to_entry()});
      return;
    }
    // Above every collected delete: kept, even where the peer's vector
    // covers it. That vector is as of the notice, and the peer may have
    // started over itself since, dropping the write on this node's word (a
    // generated history lost the last write of a key that way, two nodes
    // each dropping it for the other to send back).
    if (e.hlc > horizon) {
      keep.push_back(crdt::KeyedEntry{std::string(k), e.to_entry()});
    } else if (theirs.covers(e.dot) || (same && replica_.context().retired_at(e.dot.origin) >= e.dot.seq)) {
      ++dropped_covered;  // the peer has it or what replaced it: it comes back if current
      if (e.tombstone) shadows.emplace_back(std::string(k), e.hlc);
    } else {
      aside.push_back(crdt::KeyedEntry{std::string(k), e.to_entry()});  // may be older than a collected delete
    }
  });
  const size_t kept = keep.size();
  replica_.reset_to(std::move(keep));
  for (const auto& [k, h] : shadows) replica_.shadow_delete(k, h);
  for (auto& ke : aside) {
    replica_.quarantine_entry(ke.key, ke.entry, /*report=*/true);
    // Our own writes' dots close here (nobody else can); another writer's
    // stay open for a node holding the write to send it (crdt/replica.h).
    if (ke.entry.dot.origin == replica_.self()) replica_.record_dot(ke.entry.dot);
    ke.entry.unordered = true;
    ke.entry.vouched = false;
  }
  const size_t quarantined = aside.size();
  unordered_out_ = std::move(aside);
  unordered_to_ = from.uid;
  unordered_sends_ = unordered_out_.empty() ? 0 : 3;
  tomb_fifo_.clear();
  tomb_ripe_.clear();
  tombs_scanned_ = false;
  must_resync_ = false;
  notice_from_ = 0;
  reconciled_ = std::max({reconciled_, peer.horizon, horizon.raw});
  ++resyncs_;
  hooks_.compact();  // the log describes the state we just dropped
  if (durable_) {
    hooks_.journal(LogOp{LogOp::Kind::kHorizon, false, {}, 0, reconciled_, horizon.raw});
  }
  hooks_.log(quarantined ? LogLevel::kWarn : LogLevel::kInfo,
             "reconciled with " + from.name + ": dropped " + std::to_string(dropped_covered) +
                 " entries it has, kept " + std::to_string(kept) + " it lacks" +
                 (quarantined ? ", put " + std::to_string(quarantined) +
                                    " in quarantine (older than deletes collected meanwhile; "
                                    "`meshkv quarantine list`)"
                              : std::string()));
  send_digest(from.addr, false);
  send_unordered();
}

void AntiEntropy::send_unordered() {
  if (unordered_sends_ == 0) return;
  --unordered_sends_;
  const Member* to = members_.by_uid(unordered_to_);
  if (to == nullptr || !to->reachable()) return;
  // Loose chunks, one origin each (their dots are recorded one by one).
  std::sort(unordered_out_.begin(), unordered_out_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.entry.dot.origin, a.entry.dot.seq) < std::pair(b.entry.dot.origin, b.entry.dot.seq);
  });
  const size_t budget = cfg_.mtu - wire::kChunkOverhead;
  crdt::Chunk cur;
  size_t bytes = 0;
  auto flush = [&] {
    if (!cur.entries.empty()) hooks_.sender->send(to->addr, wire::ChunkMsg{std::move(cur), reconciled_});
    cur = crdt::Chunk{};
    bytes = 0;
  };
  for (const auto& ke : unordered_out_) {
    const size_t sz = crdt::entry_size_bound(ke.key.size(), ke.entry.value.size());
    if (ke.entry.dot.origin != cur.origin || (bytes + sz > budget && !cur.entries.empty())) flush();
    cur.origin = ke.entry.dot.origin;
    cur.entries.push_back(ke);
    bytes += sz;
  }
  flush();
  if (unordered_sends_ == 0) {
    unordered_out_.clear();
    unordered_out_.shrink_to_fit();
  }
}

// Why a quarantined write is asked about. Judging depends on what the judge
// holds when the write arrives (its key present or not, its horizon), so one
// write can be quarantined on some nodes and ordered (vouched) on others. A
// copy from a node that holds it as a winner releases it (crdt/replica.h),
// but anti-entropy sends only what a peer's vector lacks, and the write's dot
// may be covered where it waits: its writer closes its own dots when it
// reconciles, and passes the closed range on in its claims. Nothing would
// then ever send the copy, and the nodes would disagree on the key for ever
// with equal vectors (the generated histories of tests/sim_gc_test.cc found
// this). So every full digest names a few quarantined writes, in turn, and a
// peer holding one as its key's winner sends it back as it is: the asker
// takes it only as the rule allows (a trusted sender, or vouched), so the
// ask adds no new way out of quarantine, only the copy the rule waits for.
// A write every node holds in quarantine is asked about for as long as it
// stays there (a few dots a digest), which is the operator's call to end.
std::vector<crdt::Dot> AntiEntropy::quarantine_asks() {
  std::vector<crdt::Dot> out;
  const auto& q = replica_.quarantine();
  if (q.empty()) return out;
  const size_t want = std::min(kAsksPerDigest, replica_.quarantined());
  // Resume after the write last asked about, wrapping around.
  auto it = q.lower_bound(ask_cursor_.first);
  bool first = true;
  for (size_t keys = 0; out.size() < want && keys <= q.size(); ++keys, ++it, first = false) {
    if (it == q.end()) it = q.begin();
    for (const crdt::Entry& e : it->second) {
      if (out.size() >= want) break;
      if (first && it->first == ask_cursor_.first && e.dot.seq <= ask_cursor_.second) continue;
      out.push_back(e.dot);
      ask_cursor_ = {it->first, e.dot.seq};
    }
  }
  return out;
}

void AntiEntropy::answer_asks(const Endpoint& from, const wire::Digest& d) {
  // A node told to start over holds what it may not show: it answers nothing.
  if (must_resync_) return;
  std::map<crdt::Origin, crdt::Chunk> chunks;
  size_t n = 0;
  for (const crdt::Dot& want : d.quarantine_asks) {
    if (++n > wire::kMaxQuarantineAsks) break;
    replica_.map().scan_origin(want.origin, want.seq - 1, [&](std::string_view k, const crdt::EntryView& e) {
      if (e.dot == want) {
        crdt::Chunk& c = chunks[want.origin];
        // Loose (from == to): the entries' dots are taken one by one, no range is claimed.
        c.origin = want.origin;
        c.from = c.to = 0;
        c.entries.push_back(crdt::KeyedEntry{std::string(k), e.to_entry()});
      }
      return false;  // only the first winner at or above the seq
    });
  }
  for (auto& [o, c] : chunks) {
    asks_answered_ += c.entries.size();
    hooks_.sender->send(from, wire::ChunkMsg{std::move(c), reconciled_});
  }
}

void AntiEntropy::exclude(const std::string& name) {
  const uint64_t h = replica_.horizon().raw;
  if (h == 0) return;
  auto it = excluded_.find(name);
  if (it == excluded_.end()) {
    if (excluded_.size() >= kMaxExcluded) {
      // Forget the oldest exclusion; that member still starts over by itself
      // if it can tell it was away (the second line above).
      auto oldest = std::min_element(excluded_.begin(), excluded_.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
      if (durable_) hooks_.journal(LogOp{LogOp::Kind::kExcluded, false, {oldest->first, {}}, 0, 0, 0});
      excluded_.erase(oldest);
    }
    it = excluded_.emplace(name, 0).first;
    hooks_.log(LogLevel::kInfo, name + " was left out of tombstone collection: it must reconcile when it returns");
  }
  if (it->second >= h) return;
  it->second = h;
  note_judged_to(name, h);
  if (durable_) hooks_.journal(LogOp{LogOp::Kind::kExcluded, false, {name, {}}, 0, 0, h});
}

void AntiEntropy::note_removed(const std::string& name) { exclude(name); }

void AntiEntropy::restore_reconciled(uint64_t horizon) { reconciled_ = std::max(reconciled_, horizon); }

void AntiEntropy::restore_roster(const std::string& name, bool counts) {
  if (counts) {
    roster_.insert(name);
  } else {
    roster_.erase(name);
  }
}

void AntiEntropy::restore_excluded(const std::string& name, uint64_t horizon) {
  if (horizon == 0) {
    excluded_.erase(name);
  } else if (excluded_.size() < kMaxExcluded || excluded_.count(name)) {
    excluded_[name] = std::max(excluded_[name], horizon);
    note_judged_to(name, horizon);
  }
}

// Why messages carry their sender's reconciled horizon: "reconciled" is the
// sender's state when its digest said so, not when it sent what arrives
// now. Chunks and pushes it sent before (retransmitted, reordered, or
// queued while a process was paused) can arrive after its digest cleared
// it, carrying the stale values it held then; a generated history found one
// shown again, older than a delete collected meanwhile. So a message stamped
// below the horizon its sender had to reach is judged as if the sender had
// not reconciled, for its entries at or below that horizon (the stale values
// are older than the deletes it missed); its newer writes are taken as
// anyone's, and so is everything it sends once it has reconciled.
crdt::Judging AntiEntropy::judging(uint64_t uid, const Endpoint& from, uint64_t reconciled) const {
  crdt::Judging j;
  j.all = unreconciled(uid, from);
  if (j.all || judged_to_.empty()) return j;
  const Member* m = members_.by_uid(uid);
  if (m == nullptr) m = members_.at(from);
  if (m == nullptr) return j;
  if (auto it = judged_to_.find(m->name); it != judged_to_.end() && reconciled < it->second) {
    j.up_to = crdt::Hlc{it->second};
  }
  return j;
}

namespace {
// Raises `name`'s horizon in `m` to at least `h`; a new name beyond `cap`
// names first pushes out the one with the lowest horizon.
void raise_bounded(std::map<std::string, uint64_t, std::less<>>& m, const std::string& name, uint64_t h,
                   size_t cap) {
  auto it = m.find(name);
  if (it != m.end()) {
    it->second = std::max(it->second, h);
    return;
  }
  if (m.size() >= cap) {
    m.erase(std::min_element(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.second < b.second; }));
  }
  m.emplace(name, h);
}
}  // namespace

void AntiEntropy::note_heard_exclusion(uint64_t uid, const std::string& name, uint64_t h) {
  // Known to have reconciled past it already: nothing to judge.
  if (auto p = peer_vv_.find(uid); p != peer_vv_.end() && p->second.reconciled >= h) return;
  raise_bounded(heard_exclusions_, name, h, kMaxHeardExclusions);
  note_judged_to(name, h);
}

void AntiEntropy::note_judged_to(const std::string& name, uint64_t h) {
  raise_bounded(judged_to_, name, h, kMaxExcluded);
}

bool AntiEntropy::unreconciled(uint64_t uid, const Endpoint& from) const {
  if (excluded_.empty() && heard_exclusions_.empty()) return false;
  const Member* m = members_.by_uid(uid);
  // A process not (yet) in the table may be an excluded member restarted:
  // the member at its address.
  if (m == nullptr) m = members_.at(from);
  // Nobody in the table at all (this process has just started, and has not
  // heard who is there yet): it may be an excluded member, resumed from a
  // pause with a state as stale as ever, and its writes are judged until
  // it is known. Writes that can be ordered are merged as usual; the rest
  // wait in quarantine for a trusted copy (quarantine_asks). A generated
  // history found a restarted node taking a paused member's stale write,
  // older than a delete it had collected itself.
  if (m == nullptr) return true;
  return excluded_.count(m->name) > 0 || heard_exclusions_.count(m->name) > 0;
}

}  // namespace meshkv::node
