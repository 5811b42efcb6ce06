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
#include <optional>
#include <random>
#include <set>
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

  // Draws each round's jitter from `rng` (construction order matters for a
  // reproducible simulation).
  AntiEntropy(const Config& cfg, const Now& now, std::mt19937_64& rng, crdt::Replica& replica,
              const Membership& members, Timers& timers, Hooks hooks);

  // ---- inputs ----
  void on_digest(const Endpoint& from, uint64_t sender, const wire::Digest& d);
  void on_chunk(const Endpoint& from, uint64_t sender, const wire::ChunkMsg& c);
  void on_member(const MemberEvent& e);
  void on_applied(const crdt::KeyedEntry& ke);
  // Runs what is due: collection, the periodic round, follow-ups.
  void tick();
  // The periodic round's digest for a probe of `target` to carry, when a
  // round is due and the digest fits in `budget` bytes (one piece); a
  // longer one is sent to `target` on its own. A round no probe takes
  // within ride_wait_us() goes to a random member.
  std::optional<wire::Digest> ride_along(const Member& target, size_t budget);
  // The wall time (ms) this node last saw a majority, from its data
  // directory (snapshot or log); only ever raised.
  void restore_quorum_ms(uint64_t wall_ms);
  // From the data directory: the horizon this node reconciled with or
  // collected to, and a member left out of collections (horizon 0: it
  // reconciled since).
  void restore_reconciled(uint64_t horizon);
  void restore_excluded(const std::string& name, uint64_t horizon);
  void restore_roster(const std::string& name, bool counts);
  // A member was removed from the table (reaped or forgotten): should it
  // return, it must reconcile first.
  void note_removed(const std::string& name);

  // ---- outputs and views ----
  uint64_t last_quorum_ms() const { return last_quorum_wall_ms_; }
  uint64_t reconciled() const { return reconciled_; }
  const std::map<std::string, uint64_t, std::less<>>& excluded() const { return excluded_; }
  const std::set<std::string, std::less<>>& roster() const { return roster_; }
  // Whether entries from process `uid` are judged (crdt/replica.h): it is a
  // member this node left out of a collection and it has not reconciled
  // (or one not yet known while exclusions stand).
  bool unreconciled(uint64_t uid, const Endpoint& from) const;
  // How entries from process `uid` are judged: all of them while it is
  // unreconciled; after that, those of a message stamped with a reconciled
  // horizon below the one it had to reach, at or below that (gc.cc).
  // `reconciled`: the sender's reconciled horizon stamped on the message.
  crdt::Judging judging(uint64_t uid, const Endpoint& from, uint64_t reconciled) const;
  // {tombstone_grace_ms, tombstones, waiting, collected, quorum, ...} (status).
  wire::Value status() const;
  uint64_t collected() const { return gc_collected_; }
  uint64_t exclusions_refused() const { return exclusions_refused_; }
  // The pointwise maximum of this node's vector and every peer's last known.
  crdt::VersionVector furthest() const;
  // The last vector heard from process `uid` (its digests), or null.
  const crdt::VersionVector* peer_vector(uint64_t uid) const;
  // When this node last knew it held everything process `uid` had
  // incorporated (its digest's vector was covered by ours, or it confirmed
  // our summary): 0 if never.
  uint64_t covered_us(uint64_t uid) const;
  // Asks `m` for what this node lacks now: a full digest, which it answers
  // with chunks (a quorum list, node/consistency.cc).
  void pull(const Member& m);
  // Both ways with `m`: a full digest that asks for its vector back, which
  // this node then answers with what `m` lacks (a write's wait whose push
  // was lost or never sent: node/consistency.cc).
  void exchange(const Member& m);
  const Counters& counters() const { return counters_; }

  // Told to join a mesh (at start or later): a node alone until then is no
  // founder, and knows the mesh only once it has heard from its members.
  void note_join();

 private:
  struct PeerVector {
    crdt::VersionVector vv;   // reassembled from the peer's digests
    uint64_t updated_us = 0;  // when a digest last changed or confirmed it
    uint64_t covered_us = 0;  // when our vector last covered it (staleness)
    bool resyncing = false;   // the peer said it is starting over
    uint64_t horizon = 0;     // its horizon, from its full digests and summaries
    uint64_t reconciled = 0;  // the horizon it reconciled with or collected to
    // Its retired origins (count and hash, crdt/version_vector.h), from its
    // last full digest; `retired_known` once one said.
    bool retired_known = false;
    uint64_t retired_count = 0, retired_hash = 0;
    // Its roster report (gc.cc, settled()): how many members it counts,
    // itself included (0: not said).
    uint64_t mesh_size = 0;
    // Its full digests say it reads a summary's collection fields: only
    // then does it get summaries.
    bool reads_summary_gc = false;
  };

  // A full digest, or, when `peer` is given and our last word from it says
  // it holds what we hold, a summary (one hash) asking it to confirm.
  void send_digest(const Endpoint& to, bool counter, const Member* peer = nullptr, bool ask_back = false);
  // The pieces send_digest() sends.
  std::vector<wire::Digest> digests(const Endpoint& to, bool counter, const Member* peer, bool ask_back);
  uint64_t ride_wait_us() const;
  void next_round();
  void answer(const Endpoint& from, const wire::Digest& d);
  // The collection fields of a full digest, or of a summary that states
  // them (gc.cc's rule); true when the digest told us to reconcile and was
  // handled (a summary never does).
  bool on_gc_fields(const Endpoint& from, uint64_t sender, const wire::Digest& d);
  void round();
  void follow_up();
  // A majority of the whole mesh in reach (gc.cc): only a node that knows
  // the whole mesh can tell.
  bool has_quorum() const { return settled() && quorum_up_ * 2 > 1 + roster_.size(); }
  // Whether this node's roster is the whole mesh as far as anyone who knows
  // it has said (gc.cc).
  bool settled() const;
  void note_settled_report(uint64_t uid, const wire::Digest& d);
  void check_settled();
  void note_peer_vv(uint64_t uid, const wire::Digest& d);
  // Its summary matched our context: it holds exactly our vector.
  void note_peer_in_sync(uint64_t uid);
  // ---- retire.cc ----
  // Whether the peer at `to` is known to have retired exactly what we have.
  bool same_retired(const Endpoint& to) const;
  bool same_retired(const PeerVector& p) const;
  // Whether the process `origin` has ended, by this node's membership.
  bool ended(uint64_t origin) const;
  // Retires the origins of ended processes that every member that counts
  // holds up to the same final seq.
  void retire_ended();
  // The retirement fields of a full digest from `sender`.
  void on_retired(uint64_t sender, const wire::Digest& d);
  // Fills a digest's retirement fields for the peer at `to`; returns the
  // vector to show it (ours, plus retired origins as rows while the peer's
  // retired set differs).
  crdt::VersionVector retired_fields(const Endpoint& to, wire::Digest& d);
  // ---- gc.cc ----
  void gc_tick();
  void check_startup();
  // Whether collection may go on: in a quorum, and not waiting to resync.
  bool quorum_tick();
  void collect();
  bool try_resync();
  void resync_from(const Member& from);
  // Marks `name` as left out of collections up to the current horizon.
  void exclude(const std::string& name);
  // Sends the writes a reconciliation put aside to the peer it reconciled
  // with, marked unordered, so that the majority judges them.
  void send_unordered();
  // A few of the writes this node holds in quarantine, in turn, to ask
  // about in a digest; and the answer to a peer's asks: the ones held here
  // as their key's winner, sent back as they are.
  std::vector<crdt::Dot> quarantine_asks();
  // Whether a write of origin `o` above seq `f` waits in quarantine here (retire.cc).
  bool quarantined_above(crdt::Origin o, uint64_t f) const;
  void answer_asks(const Endpoint& from, const wire::Digest& d);

  const Config& cfg_;
  const Now& now_;
  std::mt19937_64& rng_;
  crdt::Replica& replica_;
  const Membership& members_;
  Timers& timers_;
  Hooks hooks_;
  Counters counters_;
  const bool durable_;

  // The period of the next round starts at next_period_us_; the round is
  // due at next_ae_us_, a random point of it (next_round()).
  uint64_t next_period_us_ = 0;
  uint64_t next_ae_us_ = 0;
  struct FollowUp {
    uint64_t at_us = 0;
    uint64_t timer = 0;  // the member's key
  };
  std::map<std::string, FollowUp> followup_;  // by member: when to digest again
  std::unordered_map<uint64_t, PeerVector> peer_vv_;  // by member uid

  // Members in reach that count (MemberEvent::counted_after), self
  // included. Kept from MemberEvents.
  size_t quorum_up_ = 1;
  // Every member that counts toward the majority (not self, not left or
  // removed), kept in the data directory: a node restarted while its peers
  // are down must not take itself for the whole mesh and collect alone.
  std::set<std::string, std::less<>> roster_;
  uint64_t started_us_ = 0;
  std::deque<std::pair<uint64_t, std::string>> tomb_fifo_;  // (monotonic ms noticed, key)
  std::vector<std::string> tomb_ripe_;  // past the grace period, waiting for every member
  bool tombs_scanned_ = false;          // tombstones loaded at start are queued once
  uint64_t next_gc_us_ = 0;
  uint64_t quorum_lost_us_ = 0;  // monotonic; 0 while in a quorum
  uint64_t quorum_back_us_ = 0;  // when the quorum was last regained
  uint64_t last_quorum_wall_ms_ = 0, quorum_logged_ms_ = 0;
  bool startup_checked_ = false;
  // Once this node has known the whole mesh: it founded it, it heard from
  // every member it knows of, or its data directory was part of a majority
  // (gc.cc).
  bool settled_once_ = false;
  bool join_asked_ = false;
  bool must_resync_ = false;
  uint64_t gc_collected_ = 0, gc_collected_since_compaction_ = 0, resyncs_ = 0;

  // The quarantine rule's bookkeeping (crdt/replica.h, gc.cc).
  // Members left out of a collection, with the horizon it reached; erased
  // when the member's digest shows it reconciled up to there.
  std::map<std::string, uint64_t, std::less<>> excluded_;
  static constexpr size_t kMaxExcluded = 4096;
  static constexpr size_t kExclusionsPerDigest = 8;
  static constexpr size_t kMaxExcludedName = 64;  // longer names are not passed on
  std::string excl_cursor_;  // the last exclusion a digest carried
  // Every member once excluded here, with the highest horizon it had to
  // reconcile to (kept after it did; bounded as excluded_ is): its messages
  // stamped below that are judged (gc.cc, judging()).
  std::map<std::string, uint64_t, std::less<>> judged_to_;
  void note_judged_to(const std::string& name, uint64_t h);
  // Exclusions heard of members in the table that do not count here (not
  // heard from directly): judged as excluded_ ones, but not passed on,
  // bounded on their own (forged names crowd only each other out), and
  // ended by the member's digest like an exclusion of ours.
  std::map<std::string, uint64_t, std::less<>> heard_exclusions_;
  static constexpr size_t kMaxHeardExclusions = 1024;
  void note_heard_exclusion(uint64_t uid, const std::string& name, uint64_t h);
  uint64_t exclusions_refused_ = 0;  // exclusions in digests about members that do not count (status)
  // Members in reach that did not count (never heard from) when a
  // collection went on: excluded if they answer. Only members in the table
  // (bounded) are named here, and removal erases them.
  std::set<std::string, std::less<>> uncounted_;
  uint64_t reconciled_ = 0;         // the horizon this node reconciled with or collected to
  uint64_t notice_from_ = 0;        // uid of the member that told us to reconcile
  uint64_t reconcile_notices_ = 0;  // notices received (status)
  // Writes a reconciliation put aside, to send (marked unordered) to `unordered_to_`.
  std::vector<crdt::KeyedEntry> unordered_out_;
  uint64_t unordered_to_ = 0;
  unsigned unordered_sends_ = 0;
  static constexpr size_t kAsksPerDigest = 4;
  std::pair<std::string, uint64_t> ask_cursor_;  // the last quarantined write a digest asked about (key, seq)
  uint64_t asks_answered_ = 0;                   // quarantined writes sent back to askers (status)

  // Retirement (retire.cc): the last retired origin a digest listed, and counts for status.
  uint64_t retired_cursor_ = 0;
  uint64_t retirements_ = 0, retirements_taken_ = 0, unretirements_ = 0;
  static constexpr size_t kRetiredPerDigest = 8;
};

}  // namespace meshkv::node
