// A replica: the LWW map, its causal context, its HLC and its own write
// counter. Everything the protocol needs from the CRDT goes through here.
//
// Delta extraction ("what does a peer with vector V miss?") and the apply rule
// for delta chunks live here, because their correctness argument spans the
// map and the vector together:
//
//   A peer asks with its vector V. For each origin o the answer lists every
//   winning entry of o with seq > V[o], in seq order, cut into chunks labelled
//   (o, from, to]. A chunk claims "these are all my winners of o in (from,to]";
//   the receiver merges the entries (always safe) and raises its vector for o
//   to `to` only if it already covered `from`. A write of o in (from, to] that
//   is absent was superseded by an entry that beats it; the key's global
//   winner always travels in its own origin's stream, so once a vector covers
//   the winner's dot, the state holds the winner. A lost chunk merely leaves a
//   gap that the next round asks for again.
//
//   The chunk ending at the sender's vector is labelled up to vv[o] even when
//   the last seqs were superseded, so the receiver's vector can catch up.
//   Entries the sender holds above its own vv[o] (received out of order) go in
//   a chunk with from == to: their dots are recorded one by one, no range is
//   claimed.
//
// The rule that keeps collected deletes deleted (quarantine) lives here too:
//
//   A tombstone is collected once every member counted by a majority holds
//   it (node/gc.cc). The `horizon` is the HLC of the newest delete this
//   replica collected, or learned that a peer collected; only ever raised.
//   Every live entry a replica shows is above every collected delete of its
//   key, by induction: an entry only becomes a key's winner by beating the
//   entry there (which is above them), or, when the key is absent, by being
//   above the horizon (above every collected delete of every key), or by
//   being vouched (below).
//
//   A member left out of a collection (dead past the grace period while the
//   others collected) may return with writes nobody ordered against the
//   deletes collected meanwhile: a value older than an acknowledged delete
//   would come back if merged as usual, since the tombstone that would beat
//   it is gone. So entries from such a member, until it has reconciled, and
//   entries marked `unordered`, are *judged* (apply with judge = true):
//     - its dot is covered: superseded or seen, as always;
//     - its key is present here: the present entry is above every collected
//       delete of the key, so ordinary LWW against it is exact; if the entry
//       wins it is marked vouched (the verdict travels with it);
//     - its HLC is above the horizon: above every collected delete, merged;
//     - otherwise it cannot be ordered: it goes to quarantine, never shown.
//       Its dot is not recorded, and the judged sender's range claims are
//       not taken, so that a node holding it as a winner sends it again.
//       An operator applies (as a new write) or drops it.
//   A quarantined entry leaves quarantine when it can be ordered:
//     - its key becomes present: it wins (vouched) or loses against the
//       new winner;
//     - a copy arrives from a node that holds it without judging it (a
//       trusted sender: that node ordered it against everything it
//       collected, since it counted in every collection), or marked vouched
//       (another node ordered it) by a sender that need not reconcile: it
//       is merged as usual. A vouched mark from a member that must
//       reconcile counts for nothing: the mark dates from when the write
//       was ordered, and that member may have missed a newer delete of the
//       key, collected since (a generated history found it bringing such a
//       write back). Every full digest names a few quarantined writes, so
//       that a node holding one as its winner sends the copy (node/gc.cc).
//   So nodes that judged an entry before its key reached them, or against a
//   horizon raised by deletes of other keys, end up agreeing with the nodes
//   that could order it.
//   The returning member judges its own unreconciled writes the same way
//   when it reconciles (node/gc.cc), records the dots of those it wrote
//   (nobody else can close that gap), and sends them out marked unordered,
//   so the majority's verdict decides where the key is live.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "crdt/hlc.h"
#include "crdt/lww_map.h"
#include "crdt/version_vector.h"

namespace meshkv::crdt {

struct KeyedEntry {
  std::string key;
  Entry entry;
  friend bool operator==(const KeyedEntry&, const KeyedEntry&) = default;
};

// Winning entries of one origin with seqs in (from, to]; see above.
// How a sender's entries are judged (apply_chunk): all of them (a member
// that must reconcile), or those at or below `up_to` (one that had to
// reconcile up to there: what it sent before it did may still arrive).
struct Judging {
  bool all = false;
  Hlc up_to{};
};

struct Chunk {
  Origin origin = 0;
  uint64_t from = 0;
  uint64_t to = 0;
  std::vector<KeyedEntry> entries;
  friend bool operator==(const Chunk&, const Chunk&) = default;
};

// Validates sizes of a key and value against kMaxKeyBytes / kMaxValueBytes.
Status check_key(std::string_view key);
Status check_value(std::string_view value);
// Validates a time to live against kMaxTtlMs.
Status check_ttl(uint64_t ttl_ms);

class Replica {
 public:
  Replica(Origin self, uint64_t max_skew_ms = 60'000);

  Origin self() const { return self_; }
  const LwwMap& map() const { return map_; }
  const CausalContext& context() const { return ctx_; }
  const VersionVector& vv() const { return ctx_.vv(); }
  HlcClock& clock() { return clock_; }
  const HlcClock& clock() const { return clock_; }
  uint64_t last_seq() const { return next_seq_ - 1; }
  // Local writes that took the clock more than max_skew ahead of the
  // physical time, to stay above the entry they replaced (see write()).
  uint64_t forced_ahead() const { return forced_ahead_; }

  // A local write: `value` set, or a tombstone when nullopt. Assigns the next
  // dot and an HLC timestamp above both the clock's and the HLC of the entry
  // it replaces here, so the write is the key's winner on this replica
  // (read-your-write, whatever a peer's clock said). The clock moves up to
  // that timestamp, so the origin's writes stay in HLC order. State is
  // unchanged on error. A value may carry a time to live (Entry::ttl_ms).
  Result<KeyedEntry> write(std::string_view key, std::optional<std::string_view> value,
                           uint64_t phys_ms, uint64_t ttl_ms = 0);

  // This replica's HLC reading at physical time `phys_ms`, without ticking:
  // what expiry is judged against (crdt::expired). Every node stops serving
  // an expiring write once its reading passes the write's expiry instant.
  Hlc reading(uint64_t phys_ms) const {
    const Hlc p = Hlc::make(phys_ms, 0);
    return p > clock_.last() ? p : clock_.last();
  }
  // The entry of `key` that reads as live at `phys_ms`: not a tombstone and
  // not expired; nullptr otherwise.
  EntryPtr live(std::string_view key, uint64_t phys_ms) const {
    EntryPtr e = map_.find(key);
    return e != nullptr && !dead(*e, reading(phys_ms)) ? e : nullptr;
  }

  // Merges one entry received from a peer (pushed or inside a chunk) and
  // records its dot. Returns true if the entry became the key's winner.
  // An entry whose dot the causal context already covers is not merged: it
  // was incorporated before, or something that beats it was (possibly a
  // tombstone since collected), so it can never be the key's final winner.
  // With `judge` (or an entry marked unordered) the quarantine rule above
  // applies. Entries leaving quarantine because of this call are added to
  // released() (won or lost).
  // REQUIRES: the entry passed validate_entry().
  enum class Applied { kSkipped, kWon, kLost, kQuarantined };
  Applied apply(std::string_view key, const Entry& e, uint64_t phys_ms, bool judge = false);
  bool apply_entry(std::string_view key, const Entry& e, uint64_t phys_ms) {
    return apply(key, e, phys_ms) == Applied::kWon;
  }

  // Applies a delta chunk (entries, then the range claim). Rejects the whole
  // chunk, changing nothing, if it is malformed. Appends the entries that won
  // to `changed` when given.
  // With `judge_to` (not 0), entries whose HLC is at or below it are judged
  // too, whatever `judge` says: they come from a member that had to
  // reconcile up to there, and may have been sent before it did.
  Status apply_chunk(const Chunk& c, uint64_t phys_ms,
                     std::vector<const KeyedEntry*>* changed = nullptr, bool judge = false,
                     Hlc judge_to = Hlc{});

  // ---- the collection horizon and quarantine (see above) ----
  Hlc horizon() const { return horizon_; }
  // Returns whether it rose.
  bool raise_horizon(Hlc h);
  // Entries kept aside, by key; each key's in (hlc, origin) order.
  const std::map<std::string, std::vector<Entry>, std::less<>>& quarantine() const {
    return quarantine_;
  }
  size_t quarantined() const { return quarantined_; }
  // Puts an entry aside as it is (replaying a log or snapshot, or judging
  // the writes a reconciling node kept; `report`: listed by
  // take_quarantined()). Returns false when it already was, or the
  // quarantine is full (kMaxQuarantined; counted in overflow()).
  bool quarantine_entry(std::string_view key, const Entry& e, bool report = false);
  // What apply() (or a reporting quarantine_entry) put aside since the last call.
  std::vector<KeyedEntry> take_quarantined() { return std::exchange(quarantined_new_, {}); }
  // Takes a quarantined entry out (dropped by an operator, or replayed):
  // the entry of `key` with `dot`, or every entry of `key` when dot.seq is 0.
  // Returns what it took.
  std::vector<Entry> unquarantine(std::string_view key, Dot dot);
  // What left quarantine as a side effect of apply()/write() since the last
  // call: (key, entry, whether it won).
  struct Released {
    KeyedEntry ke;
    bool won = false;   // it is the key's winner now
    bool same = false;  // the winner is this very write, merged by another way
  };
  std::vector<Released> take_released() { return std::exchange(released_, {}); }
  uint64_t quarantine_overflow() const { return quarantine_overflow_; }
  // Bounds of the quarantine: entries, and bytes of keys and values (a
  // member sending 1 MiB values must not exhaust memory).
  static constexpr size_t kMaxQuarantined = 100'000;
  static constexpr size_t kMaxQuarantinedBytes = 64 << 20;

  // What a peer whose vector is `peer` misses, for origins in [lo, hi], cut
  // into chunks whose entries take at most `max_chunk_bytes` (a single entry
  // larger than that travels alone). At most `max_chunks` chunks: the first
  // ones, each a valid claim, so a peer missing a million keys costs one
  // answer's worth of work per round, not a million entries' worth.
  // With `retired`, the origins this replica retired come too, after the
  // others, each up to its final seq (for a peer that has not retired them,
  // and may lack their writes: crdt/version_vector.h).
  std::vector<Chunk> delta(const VersionVector& peer, size_t max_chunk_bytes,
                           Origin lo = 0, Origin hi = ~Origin{0},
                           size_t max_chunks = ~size_t{0}, bool retired = false) const;

  // Retiring the origin of an ended process (crdt/version_vector.h,
  // node/retire.cc); false when the context refuses.
  bool retire(Origin o, uint64_t final_seq) { return o != self_ && ctx_.retire(o, final_seq); }
  bool unretire(Origin o) { return ctx_.unretire(o); }

  // Tombstone garbage collection: drops `key` if its winner is still the
  // tombstone (or expiring write, judged expired by the caller) with dot `d`, and returns whether it did. The causal context
  // keeps covering `d`, so a superseded write of the key that arrives late is
  // still recognised as such (see apply_entry).
  bool collect(std::string_view key, Dot d);
  // Withdraws a local write whose log record never reached the disk (the
  // node refused it; net/storage.h): if `key`'s winner is still the write
  // with dot `d`, the entry it replaced (`prev`, or nothing) is put back.
  // The dot stays recorded: a dot is never reused, and one without an entry
  // is what a superseded write leaves anyway. Returns whether it did.
  // What the write released from quarantine stays released.
  bool retract(std::string_view key, Dot d, const std::optional<Entry>& prev);
  // Starting over from peers: forgets every entry and the causal context
  // except `keep` (their dots are recorded one by one), retired origins
  // included (the peers send their winners again). The clock and the
  // write counter stay, so no dot is reused and time never goes back.
  // The quarantine and the horizon stay.
  void reset_to(std::vector<KeyedEntry> keep);
  // A delete of `key` at `hlc` that starting over dropped (the peer holds
  // it, or collected it): until a write of the key at or above it arrives,
  // an older write of the key is recorded as beaten instead of shown. A
  // member lagging behind could otherwise send one before the delete came
  // back, and this node would show a value older than a delete it showed.
  // Bounded (kMaxShadowDeletes); reset_to() clears them.
  void shadow_delete(std::string_view key, Hlc hlc);
  size_t shadow_deletes() const { return shadow_.size(); }
  static constexpr size_t kMaxShadowDeletes = 65536;
  // Gives memory held by erased entries back (after a large collection).
  void shrink() { map_.shrink(); }

  // Loading a snapshot: the entry as it was (no dot recorded, the clock only
  // moved forward), and the vector as it was.
  void load_entry(std::string_view key, const EntryView& e);
  void load_entry(std::string&& key, Entry&& e);  // takes the strings
  // Room for `n` entries in all (loading a snapshot).
  void reserve(size_t n) { map_.reserve(n); }
  void load_vv(const VersionVector& vv);
  // Marks a dot as handled without an entry (see the quarantine rule).
  void record_dot(Dot d) { ctx_.add(d); }
  // Replaying a logged range claim (see apply_chunk).
  void claim_range(Origin o, uint64_t from, uint64_t to) { ctx_.add_range(o, from, to); }

 private:
  Origin self_;
  uint64_t next_seq_ = 1;
  uint64_t forced_ahead_ = 0;
  HlcClock clock_;
  LwwMap map_;
  CausalContext ctx_;
  Hlc horizon_;
  std::map<std::string, std::vector<Entry>, std::less<>> quarantine_;
  size_t quarantined_ = 0, quarantined_bytes_ = 0;
  uint64_t quarantine_overflow_ = 0;
  std::vector<Released> released_;
  std::vector<KeyedEntry> quarantined_new_;
  std::map<std::string, Hlc, std::less<>> shadow_;  // see shadow_delete()

  // `key` just got a winner: order its quarantined entries against it.
  void order_quarantined(std::string_view key);
  // Takes the quarantined entry of `key` with `dot` out, if there is one.
  std::optional<Entry> take_quarantined_copy(std::string_view key, Dot dot);
};

// Checks an entry received from the network before it may touch state.
Status validate_entry(std::string_view key, const Entry& e);

}  // namespace meshkv::crdt
