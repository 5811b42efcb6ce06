// Version vectors and the causal context built on them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "crdt/entry.h"

namespace meshkv::crdt {

// For each origin, the highest seq whose effects are incorporated: every write
// (o, s) with s <= vv[o] is reflected in the state (itself, or something that
// beats it). Stored as a vector sorted by origin: small, cache-friendly, and
// iterated in a deterministic order for encoding and display.
class VersionVector {
 public:
  using Item = std::pair<Origin, uint64_t>;

  uint64_t get(Origin o) const;
  // The item of origin o, or null. The pointer is valid until the next raise.
  Item* find(Origin o);
  // Raises vv[o] to `seq` if that is higher. Never lowers.
  void raise(Origin o, uint64_t seq);
  // Drops the row of o (a retired origin, CausalContext).
  void erase(Origin o);
  bool covers(Dot d) const { return d.seq != 0 && get(d.origin) >= d.seq; }

  const std::vector<Item>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  // Pointwise maximum.
  void join(const VersionVector& other);
  // Pointwise minimum: what both cover (an origin absent from either is 0).
  void meet(const VersionVector& other);
  // Replaces the items of origins in [lo, hi] by those of `part` (which holds
  // only origins in that range): how a vector sent in pieces is reassembled.
  void replace_range(Origin lo, Origin hi, const VersionVector& part);
  friend bool operator==(const VersionVector&, const VersionVector&) = default;

 private:
  std::vector<Item> items_;  // sorted by origin, seq > 0
};

// Whether `a` covers every item of `b` (a[o] >= b[o] for every origin).
bool covers_all(const VersionVector& a, const VersionVector& b);

// A version vector plus the "cloud" of dots received beyond a gap (a push of
// seq 7 that arrived before seq 6). Dots in the cloud are folded into the
// vector as soon as they become contiguous. The cloud is bounded per origin;
// forgetting a cloud dot is always safe (anti-entropy resends it), claiming
// one never is.
//
// Retired origins. Every process start is a new origin, so a vector that kept
// a row for each would grow by one per restart, forever. The origin of a
// process that has ended (node/retire.cc decides when) is *retired* with its
// final seq f: its row leaves the vector, and every dot (o, s <= f) counts as
// covered, by this context and by anyone comparing against it. That is only
// true because retirement waits until every member that counts holds
// (o, 1..f); a replica that lacks some of them (one that joined later, or
// started over) is sent the retired origin's winners by anti-entropy up to f
// (Replica::delta with the retired origins), and takes the retirement only
// once its own row reaches f (retire() refuses before). A dot of a retired
// origin above f (a write that reached only a member that did not count)
// is news: it brings the row back at f (unretire), and the origin is retired
// again later at its new final seq.
class CausalContext {
 public:
  static constexpr size_t kMaxCloudPerOrigin = 4096;

  const VersionVector& vv() const { return vv_; }
  bool covers(Dot d) const;
  // Records that the write `d` itself has been incorporated.
  void add(Dot d);
  // Records that every write of `o` in (from, to] is incorporated, which is
  // only true if (0, from] already was: raises vv[o] to `to` iff vv[o] >= from.
  // Returns whether it raised. Of a retired origin: only a range reaching
  // past its final seq counts (it unretires it first).
  bool add_range(Origin o, uint64_t from, uint64_t to);
  size_t cloud_size() const;
  // A 64-bit hash of the vector, the cloud and the retired origins: equal
  // contexts hash equal, and different ones differ but for a 2^-64 chance.
  // Anti-entropy compares it to skip sending whole vectors between replicas
  // already in sync.
  uint64_t fingerprint() const;

  // ---- retired origins (see above) ----
  // Retires `o` at final seq `f`: only if its row is exactly f, with nothing
  // of it beyond a gap. Returns whether it did.
  bool retire(Origin o, uint64_t f);
  // Puts a retired origin's row back at its final seq. Returns whether it was retired.
  bool unretire(Origin o);
  // The final seq of a retired origin, 0 if it is not retired.
  uint64_t retired_at(Origin o) const;
  // (origin, final seq), sorted by origin.
  const std::vector<std::pair<Origin, uint64_t>>& retired() const { return retired_; }
  // An order-independent summary of retired(): replicas with equal hashes
  // have retired the same origins at the same seqs.
  uint64_t retired_hash() const { return retired_hash_; }
  friend bool operator==(const CausalContext&, const CausalContext&) = default;

 private:
  void absorb(Origin o);
  VersionVector vv_;
  // origin -> sorted seqs above vv[origin] + 1
  std::vector<std::pair<Origin, std::vector<uint64_t>>> cloud_;
  std::vector<std::pair<Origin, uint64_t>> retired_;
  uint64_t retired_hash_ = 0;
};

// The term a retired origin contributes to CausalContext::retired_hash (XOR
// of all): anti-entropy computes the same over a peer's list.
uint64_t retired_term(Origin o, uint64_t f);

}  // namespace meshkv::crdt
