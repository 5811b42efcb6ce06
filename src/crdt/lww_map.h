// The last-writer-wins map: key -> winning Entry (value or tombstone).
//
// Entries live in numbered slots (in fixed chunks: a slot keeps its address
// while others are added, so find() results stay valid like a node map's); the key
// index is a flat open-addressing table of 4-byte slot numbers
// (boost::unordered_flat_set), looked up by string_view through the slots.
// That replaced std::unordered_map, whose node allocation, bucket array and
// pointer chasing dominated merge time and took about 40 bytes a key
// (issue 19; figures in scripts/bench_mem.sh and meshkv_bench --only merge).
//
// Besides the key index, an index per origin orders the current winners by
// seq, so "winners of origin o above seq s" costs O(log n + answer), which
// keeps delta extraction proportional to what a peer misses, not to the map.
//
// Keys beginning with kOrderedPrefix (a set's internal entries, crdt/orset.h)
// are also kept in byte order, so that one set's entries are found by a
// range scan instead of a pass over the whole map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/unordered/unordered_flat_set.hpp>

#include "crdt/digest.h"
#include "crdt/entry.h"

namespace meshkv::crdt {

// The keys LwwMap also keeps in order (scan_ordered()).
inline constexpr std::string_view kOrderedPrefix{"\0s", 2};

class LwwMap {
 public:
  enum class MergeResult { kInserted, kReplaced, kStale };

  // Keeps the winner of `e` and the current entry for `key`. The only mutation
  // besides erase(); commutative, associative and idempotent.
  MergeResult merge(std::string_view key, const Entry& e);
  // The same, taking the key and entry's strings instead of copying them
  // (loading a snapshot: a million keys, two copies each saved).
  MergeResult merge(std::string&& key, Entry&& e);

  LwwMap();
  LwwMap(const LwwMap& o);
  LwwMap(LwwMap&& o);
  LwwMap& operator=(const LwwMap& o);
  LwwMap& operator=(LwwMap&& o);
  ~LwwMap();

  const Entry* find(std::string_view key) const;
  // Removes `key` (tombstone garbage collection). Returns whether it existed.
  bool erase(std::string_view key);

  // Releases hash buckets and index slots left over from erased entries.
  void shrink();

  size_t size() const { return table_.size(); }  // values and tombstones
  size_t tombstones() const { return tombstones_; }
  size_t live() const { return table_.size() - tombstones_; }
  // Makes room for `n` entries in all, so loading a snapshot or a full sync
  // does not rehash the table over and over.
  void reserve(size_t n) { table_.reserve(n); }

  // fn(const std::string& key, const Entry&) for every entry, in no order.
  template <class F>
  void for_each(F&& fn) const {
    for (uint32_t i : table_) fn((*slots_)[i].key, (*slots_)[i].entry);
  }

  // fn(const std::string& key, const Entry&) -> bool for each winner of
  // `origin` with seq > `after`, in seq order, until fn returns false.
  template <class F>
  void scan_origin(Origin origin, uint64_t after, F&& fn) const {
    auto o = by_origin_.find(origin);
    if (o == by_origin_.end()) return;
    const auto& slots = o->second.slots;
    for (auto it = o->second.after(after); it != slots.end(); ++it) {
      if (it->second != kNoSlot && !fn((*slots_)[it->second].key, (*slots_)[it->second].entry)) return;
    }
  }

  // fn(const std::string& key, const Entry&) -> bool for each entry whose
  // key begins with kOrderedPrefix and is >= `from`, in key order, until fn
  // returns false.
  template <class F>
  void scan_ordered(std::string_view from, F&& fn) const {
    for (auto it = ordered_.lower_bound(from); it != ordered_.end(); ++it) {
      if (!fn((*slots_)[*it].key, (*slots_)[*it].entry)) return;
    }
  }
  size_t ordered_size() const { return ordered_.size(); }

  // Origins that currently hold at least one winning entry, ascending.
  std::vector<Origin> origins() const;

  // The digest of every entry, kept current by merge() and erase().
  const Digest& digest() const { return digest_; }

 private:
  struct Slot {
    std::string key;  // empty while the slot is free
    Entry entry;
  };
  // Slots in chunks of 4096 (about 400 KB): a slot keeps its address as
  // others are added, and the store's memory comes in large blocks instead
  // of std::deque's 512-byte ones, which the write path's short-lived
  // allocations fragmented (1M keys loaded: 245 MB RSS with a deque, in
  // memory; see the closing note of issue 19).
  class Slots {
   public:
    static constexpr size_t kChunk = 4096;
    Slots() = default;
    Slots(const Slots& o) : size_(o.size_) {
      for (const auto& c : o.chunks_) {
        chunks_.push_back(std::make_unique<Slot[]>(kChunk));
        std::copy(c.get(), c.get() + kChunk, chunks_.back().get());
      }
    }
    Slots& operator=(const Slots&) = delete;
    Slot& operator[](size_t i) { return chunks_[i / kChunk][i % kChunk]; }
    const Slot& operator[](size_t i) const { return chunks_[i / kChunk][i % kChunk]; }
    size_t size() const { return size_; }
    void push_back(Slot s) {
      if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<Slot[]>(kChunk));
      (*this)[size_++] = std::move(s);
    }
    void pop_back() {
      (*this)[--size_] = Slot{};
      if (chunks_.size() * kChunk >= size_ + kChunk) chunks_.pop_back();
    }
    void clear() {
      chunks_.clear();
      size_ = 0;
    }
    void shrink_to_fit() { chunks_.shrink_to_fit(); }

   private:
    std::vector<std::unique_ptr<Slot[]>> chunks_;
    size_t size_ = 0;
  };
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  // The table holds slot numbers; hashing and comparing go through the slots,
  // and accept a string_view for lookups by key.
  struct Hash {
    using is_transparent = void;
    const Slots* slots;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    size_t operator()(uint32_t i) const { return (*this)(std::string_view((*slots)[i].key)); }
  };
  struct Eq {
    using is_transparent = void;
    const Slots* slots;
    std::string_view key(uint32_t i) const { return (*slots)[i].key; }
    std::string_view key(std::string_view s) const { return s; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return key(a) == key(b); }
  };
  using Table = boost::unordered_flat_set<uint32_t, Hash, Eq>;
  // Orders slot numbers by their keys; accepts a string_view for lookups.
  struct Less {
    using is_transparent = void;
    const Slots* slots;
    std::string_view key(uint32_t i) const { return (*slots)[i].key; }
    std::string_view key(std::string_view s) const { return s; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return key(a) < key(b); }
  };
  using Ordered = std::set<uint32_t, Less>;
  static bool ordered_key(std::string_view k) { return k.starts_with(kOrderedPrefix); }

  // One origin's winners in seq order. Writes of one origin mostly arrive in
  // seq order, so indexing is an append; a superseded winner's slot is
  // cleared in place (found by binary search) and the vector is compacted
  // once cleared slots outnumber live ones. No allocation per entry.
  struct OriginIndex {
    std::vector<std::pair<uint64_t, uint32_t>> slots;  // ascending seq; kNoSlot: cleared
    size_t cleared = 0;
    std::vector<std::pair<uint64_t, uint32_t>>::const_iterator after(uint64_t seq) const;
  };

  void index(uint32_t slot);
  void unindex(Dot d);
  template <class K, class E>
  MergeResult merge_impl(K&& key, E&& e);
  Table fresh_table() const { return Table(0, Hash{slots_.get()}, Eq{slots_.get()}); }

  // Behind a pointer so that moving the map keeps the address the table's
  // hash and equality hold.
  std::unique_ptr<Slots> slots_;
  std::vector<uint32_t> free_;  // erased slots, reused first
  Table table_;
  Ordered ordered_;  // the slots whose keys are ordered_key()
  std::map<Origin, OriginIndex> by_origin_;
  Digest digest_;
  size_t tombstones_ = 0;
};

}  // namespace meshkv::crdt
