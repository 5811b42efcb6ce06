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

#include "node/engine_impl.h"

namespace meshkv::node {

namespace {
using wire::MemberState;
constexpr uint64_t kMs = 1000;
// A collection this large is worth a snapshot (the log still holds the
// tombstones) and giving memory back.
constexpr uint64_t kCompactAfter = 1024;
}  // namespace

bool Engine::Impl::has_quorum() const {
  size_t known = 1, up = 1;
  for (const auto& [name, m] : members) {
    if (m.state == MemberState::kLeft) continue;
    ++known;
    up += m.reachable();
  }
  return up * 2 > known;
}

void Engine::Impl::note_peer_vv(uint64_t uid, const wire::Digest& d) {
  if (uid == 0 || !member_by_uid(uid)) return;
  PeerVector& p = peer_vv[uid];
  p.vv.replace_range(d.origin_lo, d.origin_hi, d.vv);
  p.updated_us = now.mono_us;
  p.resyncing = d.resyncing;
}

void Engine::Impl::note_peer_in_sync(uint64_t uid) {
  if (uid == 0 || !member_by_uid(uid)) return;
  PeerVector& p = peer_vv[uid];
  p.vv = replica.vv();
  p.updated_us = now.mono_us;
  p.resyncing = false;
}

void Engine::Impl::gc_tick() {
  const uint64_t grace = cfg.tombstone_grace_ms;
  next_gc_us = now.mono_us + std::min<uint64_t>(1000, grace / 4) * kMs;

  if (!startup_checked) {
    startup_checked = true;
    // Restarted from a data directory after being away longer than half the
    // grace period: the others may have collected deletes we never saw.
    if (last_quorum_wall_ms != 0 && replica.map().size() > 0 &&
        now.wall_ms > last_quorum_wall_ms + grace / 2) {
      must_resync = true;
      log(LogLevel::kWarn, "the data directory was last in touch with a majority " +
                               std::to_string((now.wall_ms - last_quorum_wall_ms) / 1000) +
                               " s ago, longer than half the tombstone grace period: "
                               "will resync from a peer");
    }
  }
  if (!tombs_scanned) {
    tombs_scanned = true;
    replica.map().for_each([&](const std::string& k, const crdt::Entry& e) {
      if (e.tombstone) tomb_fifo.emplace_back(now.wall_ms, k);
    });
  }

  const bool quorum = has_quorum();
  if (!quorum) {
    if (quorum_lost_us == 0) quorum_lost_us = std::max<uint64_t>(now.mono_us, 1);
    return;
  }
  if (quorum_lost_us != 0) {
    const uint64_t away_ms = (now.mono_us - quorum_lost_us) / kMs;
    quorum_lost_us = 0;
    quorum_back_us = now.mono_us;
    if (away_ms > grace / 2 && replica.map().size() > 0) {
      must_resync = true;
      log(LogLevel::kWarn, "back in touch with a majority after " + std::to_string(away_ms / 1000) +
                               " s, longer than half the tombstone grace period: will resync "
                               "from a peer");
    }
  }
  if (must_resync && !try_resync()) return;

  // Remember (durably) that we were part of a majority now.
  last_quorum_wall_ms = now.wall_ms;
  if (durable && now.wall_ms >= quorum_logged_ms + grace / 8) {
    quorum_logged_ms = now.wall_ms;
    log_ops.push_back(LogOp{LogOp::Kind::kQuorum, false, {}, 0, 0, now.wall_ms});
  }

  while (!tomb_fifo.empty() && tomb_fifo.front().first + grace <= now.wall_ms) {
    tomb_ripe.push_back(std::move(tomb_fifo.front().second));
    tomb_fifo.pop_front();
  }
  if (tomb_ripe.empty()) return;

  // What every member that counts has: the pointwise minimum of vectors.
  crdt::VersionVector stable = replica.vv();
  for (const auto& [name, m] : members) {
    if (m.state == MemberState::kLeft) continue;
    if (m.state == MemberState::kDead && now.mono_us > m.state_since_us + grace * kMs) continue;
    auto p = peer_vv.find(m.uid);
    if (p == peer_vv.end()) return;  // not heard yet: nothing is known to be stable
    stable.meet(p->second.vv);
  }

  uint64_t collected = 0;
  std::erase_if(tomb_ripe, [&](const std::string& key) {
    const crdt::Entry* e = replica.map().find(key);
    if (!e || !e->tombstone) return true;  // overwritten, or collected already
    if (e->hlc.physical() + grace > now.wall_ms) return false;  // a delete from the future
    if (!stable.covers(e->dot)) return false;
    if (replica.collect(key, e->dot)) ++collected;
    return true;
  });
  if (collected == 0) return;
  gc_collected += collected;
  gc_collected_since_compaction += collected;
  if (gc_collected_since_compaction >= kCompactAfter ||
      gc_collected_since_compaction * 4 >= replica.map().size()) {
    gc_collected_since_compaction = 0;
    replica.shrink();
    tomb_ripe.shrink_to_fit();
    tomb_fifo.shrink_to_fit();
    want_compaction = true;
  }
  log(LogLevel::kDebug, "collected " + std::to_string(collected) + " tombstones");
}

bool Engine::Impl::try_resync() {
  // A peer in reach whose vector arrived since we are back, and that is not
  // starting over itself.
  const Member* from = nullptr;
  size_t resyncing = 0, known = 1;
  for (const auto& [name, m] : members) {
    if (m.state == MemberState::kLeft) continue;
    ++known;
    if (!m.reachable()) continue;
    auto p = peer_vv.find(m.uid);
    if (p == peer_vv.end() || p->second.updated_us < quorum_back_us) continue;
    if (p->second.resyncing) {
      ++resyncing;
    } else if (!from) {
      from = &m;
    }
  }
  if (!from) {
    // Everyone in reach was away as long as we were (a whole cluster
    // restarted): nobody could collect meanwhile, since collecting takes a
    // majority, so there is nothing to start over from.
    // (Only once peers have answered: at start-up nobody has yet.)
    if ((resyncing > 0 && (resyncing + 1) * 2 > known) || (members.empty() && seeds.empty())) {
      must_resync = false;
      log(LogLevel::kInfo, "every member in reach was away too: no resync needed");
      return true;
    }
    // Ask for vectors: peers answer a resyncing digest with theirs.
    for (const auto& [name, m] : members) {
      if (m.state == MemberState::kAlive) send_digest(m.addr, false);
    }
    return false;
  }

  const crdt::VersionVector& theirs = peer_vv[from->uid].vv;
  const uint64_t horizon =
      now.wall_ms > cfg.tombstone_grace_ms ? now.wall_ms - cfg.tombstone_grace_ms : 0;
  std::vector<crdt::KeyedEntry> keep;
  uint64_t dropped_covered = 0, dropped_old = 0;
  replica.map().for_each([&](const std::string& k, const crdt::Entry& e) {
    if (theirs.covers(e.dot)) {
      ++dropped_covered;  // the peer has it or what replaced it: it comes back if current
    } else if (e.hlc.physical() < horizon) {
      ++dropped_old;  // may have lost to a delete the others collected
    } else {
      keep.push_back(crdt::KeyedEntry{k, e});
    }
  });
  const size_t kept = keep.size();
  replica.reset_to(std::move(keep));
  tomb_fifo.clear();
  tomb_ripe.clear();
  tombs_scanned = false;
  must_resync = false;
  ++resyncs;
  resync_dropped += dropped_old;
  want_compaction = true;  // the log describes the state we just dropped
  log(dropped_old ? LogLevel::kWarn : LogLevel::kInfo,
      "resyncing from " + from->name + ": dropped " + std::to_string(dropped_covered) +
          " entries it has, kept " + std::to_string(kept) + " it lacks" +
          (dropped_old ? ", dropped " + std::to_string(dropped_old) +
                             " it lacks that are older than the grace period"
                       : std::string()));
  send_digest(from->addr, false);
  return true;
}

wire::Value Engine::Impl::gc_status() const {
  wire::Value v = wire::Value::object();
  v.set("tombstone_grace_ms", cfg.tombstone_grace_ms);
  v.set("tombstones", static_cast<uint64_t>(replica.map().tombstones()));
  v.set("waiting", static_cast<uint64_t>(tomb_fifo.size() + tomb_ripe.size()));
  v.set("collected", gc_collected);
  v.set("quorum", has_quorum());
  v.set("resync_pending", must_resync);
  v.set("resyncs", resyncs);
  v.set("resync_dropped", resync_dropped);
  return v;
}

}  // namespace meshkv::node
