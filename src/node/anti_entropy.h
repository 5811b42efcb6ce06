// Internal to src/node: the anti-entropy and garbage collection component.
// It owns what this node knows of its peers' version vectors (learned from
// their digests), the digest exchange and its follow-ups, the tombstone
// queue, the quorum record, and the resynchronisation that makes tombstone
// collection safe (the argument is in gc.cc).
//
// Contract:
//   - Every entry that wins locally (local writes included) is reported to
//     on_applied(); tombstones among them are collected once stable.
//   - Reacts to MemberEvents: a member that appears, comes back or restarts
//     is sent a digest at once; the quorum tally follows member states.
//   - Entries its chunks make win are reported through `applied`; what a
//     durable node must log goes through `journal`; a collection or a resync
//     large enough to be worth a snapshot asks for one through `compact`.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "crdt/replica.h"
#include "node/config.h"
#include "node/events.h"
#include "node/membership.h"
#include "node/persist.h"
#include "node/sender.h"
#include "node/timers.h"

namespace meshkv::node {

class AntiEntropy {
 public:
  struct Counters {
    uint64_t ae_rounds = 0;  // digests sent
    uint64_t chunks_sent = 0, chunks_received = 0;
    uint64_t dropped = 0;  // malformed digests, chunks that do not apply
  };
  struct Hooks {
    Sender* sender = nullptr;
    std::function<void(const crdt::KeyedEntry&)> applied;  // a replicated entry won
    std::function<void(LogOp)> journal;                      // durable nodes only
    std::function<void()> compact;
    LogFn log;
  };

  // Draws the first round's jitter from `rng` (construction order matters
  // for a reproducible simulation).
  AntiEntropy(const Config& cfg, const Now& now, std::mt19937_64& rng, crdt::Replica& replica,
              const Membership& members, Timers& timers, Hooks hooks);

  // ---- inputs ----
  void on_digest(const Endpoint& from, uint64_t sender, const wire::Digest& d);
  void on_chunk(uint64_t sender, const wire::ChunkMsg& c);
  void on_member(const MemberEvent& e);
  void on_applied(const crdt::KeyedEntry& ke);
  // Runs what is due: collection, the periodic round, follow-ups.
  void tick();
  // The wall time (ms) this node last saw a majority, from its data
  // directory (snapshot or log); only ever raised.
  void restore_quorum_ms(uint64_t wall_ms);

  // ---- outputs and views ----
  uint64_t last_quorum_ms() const { return last_quorum_wall_ms_; }
  // {tombstone_grace_ms, tombstones, waiting, collected, quorum, ...} (status).
  wire::Value status() const;
  uint64_t collected() const { return gc_collected_; }
  // The pointwise maximum of this node's vector and every peer's last known.
  crdt::VersionVector furthest() const;
  const Counters& counters() const { return counters_; }

 private:
  struct PeerVector {
    crdt::VersionVector vv;   // reassembled from the peer's digests
    uint64_t updated_us = 0;  // when a digest last changed or confirmed it
    bool resyncing = false;   // the peer said it is starting over
  };

  // A full digest, or, when `peer` is given and our last word from it says
  // it holds what we hold, a summary (one hash) asking it to confirm.
  void send_digest(const Endpoint& to, bool counter, const Member* peer = nullptr, bool ask_back = false);
  void answer(const Endpoint& from, const wire::Digest& d);
  void round();
  void follow_up();
  bool has_quorum() const { return quorum_up_ * 2 > quorum_known_; }
  void note_peer_vv(uint64_t uid, const wire::Digest& d);
  // Its summary matched our context: it holds exactly our vector.
  void note_peer_in_sync(uint64_t uid);
  // ---- gc.cc ----
  void gc_tick();
  void check_startup();
  // Whether collection may go on: in a quorum, and not waiting to resync.
  bool quorum_tick();
  void collect();
  bool try_resync();
  const Member* resync_source(size_t& resyncing, size_t& known) const;
  void resync_from(const Member& from);

  const Config& cfg_;
  const Now& now_;
  crdt::Replica& replica_;
  const Membership& members_;
  Timers& timers_;
  Hooks hooks_;
  Counters counters_;
  const bool durable_;

  uint64_t next_ae_us_ = 0;
  struct FollowUp {
    uint64_t at_us = 0;
    uint64_t timer = 0;  // the member's key
  };
  std::map<std::string, FollowUp> followup_;  // by member: when to digest again
  std::unordered_map<uint64_t, PeerVector> peer_vv_;  // by member uid

  // Members, self included, as the quorum counts them: every one not left,
  // and those of them in reach. Kept from MemberEvents.
  size_t quorum_known_ = 1, quorum_up_ = 1;
  std::deque<std::pair<uint64_t, std::string>> tomb_fifo_;  // (wall ms noticed, key)
  std::vector<std::string> tomb_ripe_;  // past the grace period, waiting for every member
  bool tombs_scanned_ = false;          // tombstones loaded at start are queued once
  uint64_t next_gc_us_ = 0;
  uint64_t quorum_lost_us_ = 0;  // monotonic; 0 while in a quorum
  uint64_t quorum_back_us_ = 0;  // when the quorum was last regained
  uint64_t came_back_us_ = 0;    // when a member last appeared or became reachable
  uint64_t last_quorum_wall_ms_ = 0, quorum_logged_ms_ = 0;
  bool startup_checked_ = false;
  bool must_resync_ = false;
  uint64_t gc_collected_ = 0, gc_collected_since_compaction_ = 0, resyncs_ = 0, resync_dropped_ = 0;
};

}  // namespace meshkv::node
