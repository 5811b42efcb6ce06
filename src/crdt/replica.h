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
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

  // A local write: `value` set, or a tombstone when nullopt. Assigns the next
  // dot and an HLC timestamp above both the clock's and the HLC of the entry
  // it replaces here, so the write is the key's winner on this replica
  // (read-your-write, whatever a peer's clock said). State is unchanged on
  // error.
  Result<KeyedEntry> write(std::string_view key, std::optional<std::string_view> value,
                           uint64_t phys_ms);

  // Merges one entry received from a peer (pushed or inside a chunk) and
  // records its dot. Returns true if the entry became the key's winner.
  // An entry whose dot the causal context already covers is not merged: it
  // was incorporated before, or something that beats it was (possibly a
  // tombstone since collected), so it can never be the key's final winner.
  // REQUIRES: the entry passed validate_entry().
  bool apply_entry(std::string_view key, const Entry& e, uint64_t phys_ms);

  // Applies a delta chunk (entries, then the range claim). Rejects the whole
  // chunk, changing nothing, if it is malformed. Appends the entries that won
  // to `changed` when given.
  Status apply_chunk(const Chunk& c, uint64_t phys_ms,
                     std::vector<const KeyedEntry*>* changed = nullptr);

  // What a peer whose vector is `peer` misses, for origins in [lo, hi], cut
  // into chunks whose entries take at most `max_chunk_bytes` (a single entry
  // larger than that travels alone). At most `max_chunks` chunks: the first
  // ones, each a valid claim, so a peer missing a million keys costs one
  // answer's worth of work per round, not a million entries' worth.
  std::vector<Chunk> delta(const VersionVector& peer, size_t max_chunk_bytes,
                           Origin lo = 0, Origin hi = ~Origin{0},
                           size_t max_chunks = ~size_t{0}) const;

  // Tombstone garbage collection: drops `key` if its winner is still the
  // tombstone with dot `d`, and returns whether it did. The causal context
  // keeps covering `d`, so a superseded write of the key that arrives late is
  // still recognised as such (see apply_entry).
  bool collect(std::string_view key, Dot d);
  // Starting over from peers: forgets every entry and the causal context
  // except `keep` (their dots are recorded one by one). The clock and the
  // write counter stay, so no dot is reused and time never goes back.
  void reset_to(std::vector<KeyedEntry> keep);
  // Gives memory held by erased entries back (after a large collection).
  void shrink() { map_.shrink(); }

  // Loading a snapshot: the entry as it was (no dot recorded, the clock only
  // moved forward), and the vector as it was.
  void load_entry(std::string_view key, const Entry& e);
  void load_vv(const VersionVector& vv);
  // Replaying a logged range claim (see apply_chunk).
  void claim_range(Origin o, uint64_t from, uint64_t to) { ctx_.add_range(o, from, to); }

 private:
  Origin self_;
  uint64_t next_seq_ = 1;
  HlcClock clock_;
  LwwMap map_;
  CausalContext ctx_;
};

// Checks an entry received from the network before it may touch state.
Status validate_entry(std::string_view key, const Entry& e);

}  // namespace meshkv::crdt
