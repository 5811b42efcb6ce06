// Tombstone garbage collection, and the resynchronisation that makes it safe.
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
//     grace period no longer counts), and
//   - the grace period has passed since the delete.
//
// A member that was gone longer than that may still hold values whose
// tombstones the others dropped. It knows, because it was itself without a
// majority for that long (or its data directory says when it last had one).
// On regaining a majority it starts over from a peer that was not gone: it
// drops every entry the peer's vector covers, keeps the writes the peer lacks
// that are younger than the grace period, and lets anti-entropy refill it.
#include <algorithm>

#include "node/anti_entropy.h"

namespace meshkv::node {

namespace {
using wire::MemberState;
constexpr uint64_t kMs = 1000;
// A collection this large is worth a snapshot (the log still holds the
// tombstones) and giving memory back.
constexpr uint64_t kCompactAfter = 1024;
}  // namespace

void AntiEntropy::gc_tick() {
  next_gc_us_ = now_.mono_us + std::min<uint64_t>(1000, cfg_.tombstone_grace_ms / 4) * kMs;
  timers_.set(TimerKind::kCollect, 0, next_gc_us_);
  check_startup();
  if (!tombs_scanned_) {
    tombs_scanned_ = true;
    replica_.map().for_each([&](const std::string& k, const crdt::Entry& e) {
      if (e.tombstone) tomb_fifo_.emplace_back(now_.wall_ms, k);
    });
  }
  if (quorum_tick()) collect();
}

void AntiEntropy::check_startup() {
  if (startup_checked_) return;
  startup_checked_ = true;
  // Restarted from a data directory after being away longer than half the
  // grace period: the others may have collected deletes we never saw.
  const uint64_t grace = cfg_.tombstone_grace_ms;
  if (last_quorum_wall_ms_ != 0 && replica_.map().size() > 0 &&
      now_.wall_ms > last_quorum_wall_ms_ + grace / 2) {
    must_resync_ = true;
    hooks_.log(LogLevel::kWarn, "the data directory was last in touch with a majority " +
                                    std::to_string((now_.wall_ms - last_quorum_wall_ms_) / 1000) +
                                    " s ago, longer than half the tombstone grace period: "
                                    "will resync from a peer");
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
      must_resync_ = true;
      hooks_.log(LogLevel::kWarn, "back in touch with a majority after " + std::to_string(away_ms / 1000) +
                                      " s, longer than half the tombstone grace period: will resync "
                                      "from a peer");
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
  while (!tomb_fifo_.empty() && tomb_fifo_.front().first + grace <= now_.wall_ms) {
    tomb_ripe_.push_back(std::move(tomb_fifo_.front().second));
    tomb_fifo_.pop_front();
  }
  if (tomb_ripe_.empty()) return;
  // What every member that counts has: the pointwise minimum of vectors.
  crdt::VersionVector stable = replica_.vv();
  for (const auto& [name, m] : members_.members()) {
    if (m.state == MemberState::kLeft) continue;
    if (m.state == MemberState::kDead && now_.mono_us > m.state_since_us + grace * kMs) continue;
    auto p = peer_vv_.find(m.uid);
    if (p == peer_vv_.end()) return;  // not heard yet: nothing is known to be stable
    stable.meet(p->second.vv);
  }
  uint64_t collected = 0;
  std::erase_if(tomb_ripe_, [&](const std::string& key) {
    const crdt::Entry* e = replica_.map().find(key);
    if (!e || !e->tombstone) return true;  // overwritten, or collected already
    if (e->hlc.physical() + grace > now_.wall_ms) return false;  // a delete from the future
    if (!stable.covers(e->dot)) return false;
    if (replica_.collect(key, e->dot)) ++collected;
    return true;
  });
  if (collected == 0) return;
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

// A peer in reach whose vector arrived since we are back, and that is not
// starting over itself; counts the members that are, and those that count.
const Member* AntiEntropy::resync_source(size_t& resyncing, size_t& known) const {
  const Member* from = nullptr;
  for (const auto& [name, m] : members_.members()) {
    if (m.state == MemberState::kLeft) continue;
    ++known;
    if (!m.reachable()) continue;
    auto p = peer_vv_.find(m.uid);
    if (p == peer_vv_.end() || p->second.updated_us < quorum_back_us_) continue;
    if (p->second.resyncing) {
      ++resyncing;
    } else if (!from) {
      from = &m;
    }
  }
  return from;
}

bool AntiEntropy::try_resync() {
  size_t resyncing = 0, known = 1;
  const Member* from = resync_source(resyncing, known);
  if (from) {
    resync_from(*from);
    return true;
  }
  // Everyone in reach was away as long as we were (a whole cluster
  // restarted): nobody could collect meanwhile, since collecting takes a
  // majority, so there is nothing to start over from.
  // (Only once peers have answered: at start-up nobody has yet.)
  if ((resyncing > 0 && (resyncing + 1) * 2 > known) || (members_.members().empty() && !members_.has_seeds())) {
    must_resync_ = false;
    hooks_.log(LogLevel::kInfo, "every member in reach was away too: no resync needed");
    return true;
  }
  // Ask for vectors: peers answer a resyncing digest with theirs.
  for (const auto& [name, m] : members_.members()) {
    if (m.state == MemberState::kAlive) send_digest(m.addr, false);
  }
  return false;
}

void AntiEntropy::resync_from(const Member& from) {
  const crdt::VersionVector& theirs = peer_vv_[from.uid].vv;
  const uint64_t horizon =
      now_.wall_ms > cfg_.tombstone_grace_ms ? now_.wall_ms - cfg_.tombstone_grace_ms : 0;
  std::vector<crdt::KeyedEntry> keep;
  uint64_t dropped_covered = 0, dropped_old = 0;
  replica_.map().for_each([&](const std::string& k, const crdt::Entry& e) {
    if (theirs.covers(e.dot)) {
      ++dropped_covered;  // the peer has it or what replaced it: it comes back if current
    } else if (e.hlc.physical() < horizon) {
      ++dropped_old;  // may have lost to a delete the others collected
    } else {
      keep.push_back(crdt::KeyedEntry{k, e});
    }
  });
  const size_t kept = keep.size();
  replica_.reset_to(std::move(keep));
  tomb_fifo_.clear();
  tomb_ripe_.clear();
  tombs_scanned_ = false;
  must_resync_ = false;
  ++resyncs_;
  resync_dropped_ += dropped_old;
  hooks_.compact();  // the log describes the state we just dropped
  hooks_.log(dropped_old ? LogLevel::kWarn : LogLevel::kInfo,
             "resyncing from " + from.name + ": dropped " + std::to_string(dropped_covered) +
                 " entries it has, kept " + std::to_string(kept) + " it lacks" +
                 (dropped_old ? ", dropped " + std::to_string(dropped_old) +
                                    " it lacks that are older than the grace period"
                              : std::string()));
  send_digest(from.addr, false);
}

}  // namespace meshkv::node
