// The last-writer-wins map: key -> winning entry (value or tombstone).
//
// Entries live in numbered slots of 24 bytes (hlc, seq, an origin's number in
// a table of origins, flags and a 4-byte reference to the entry's record).
// The lengths, key and value bytes of an entry (and its time to live, when it
// has one) are one record in an arena of large blocks (Arena below): no heap
// block per string, no 32-byte std::string per key. That took 1,000,000 keys
// of 36 bytes from about 200 bytes a key to about 90 (issue 19; figures in
// scripts/bench_mem.sh and meshkv_bench --only merge). Readers get an EntryView of a slot: the value is
// a view of the arena, valid until the map next changes.
//
// The key index is a flat open-addressing table of 4-byte slot numbers
// (boost::unordered_flat_set), looked up by string_view through the slots.
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
#include <cstring>
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

// Bytes of stored entries, packed in blocks that grow to 8 MiB. Records are
// rounded up to 8 bytes; a released record goes on a free list of its size
// and is handed out again before the block grows, so replacing values of
// like sizes reuses memory. Records above kMaxSmall get an allocation of
// their own. LwwMap compacts when free bytes outgrow live ones (sizes that
// drifted), moving records into a fresh arena.
//
// A record is named by a 4-byte Ref, half a pointer: a block's number and
// the record's offset in it in 8-byte units (20 bits: blocks of up to 8 MiB,
// 2,047 of them, 16 GiB), or, with the top bit, a number in the table of
// large records. 0 names none.
class Arena {
 public:
  static constexpr size_t kMaxSmall = 4096;
  using Ref = uint32_t;

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&& o) noexcept { swap(o); }
  Arena& operator=(Arena&& o) noexcept {
    Arena taken(std::move(o));
    swap(taken);  // the old contents go with `taken`
    return *this;
  }
  ~Arena() = default;

  // Throws std::length_error when the arena is full (16 GiB of records).
  Ref alloc(size_t n);
  void release(Ref r, size_t n);
  char* at(Ref r) const {
    if (r & kLarge) return large_[r & ~kLarge].get();
    return blocks_[(r >> kOffsetBits) - 1].get() + (size_t{r & kOffsetMask} << 3);
  }

  size_t live_bytes() const { return live_; }      // records handed out, rounded
  size_t free_bytes() const { return free_; }      // on the free lists
  size_t block_bytes() const { return blocks_bytes_; }  // small records' blocks
  size_t large_records() const { return large_.size() - free_large_.size(); }  // not in blocks

 private:
  static constexpr Ref kLarge = Ref{1} << 31;
  static constexpr unsigned kOffsetBits = 20;
  static constexpr Ref kOffsetMask = (Ref{1} << kOffsetBits) - 1;
  static constexpr size_t kMaxBlocks = (kLarge >> kOffsetBits) - 1;
  static size_t rounded(size_t n) { return n < 8 ? 8 : (n + 7) & ~size_t{7}; }
  static Ref ref_of(size_t block, size_t offset) {
    return static_cast<Ref>(((block + 1) << kOffsetBits) | (offset >> 3));
  }
  void swap(Arena& o) noexcept;

  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = 0;        // bytes handed out of the newest block
  size_t block_size_ = 0;  // the newest block's
  std::vector<Ref> heads_;  // free list per size / 8; each record starts with the next's Ref
  std::vector<std::unique_ptr<char[]>> large_;
  std::vector<Ref> free_large_;  // numbers in large_ not in use
  size_t live_ = 0;
  size_t free_ = 0;
  size_t blocks_bytes_ = 0;
};

class LwwMap {
 public:
  enum class MergeResult { kInserted, kReplaced, kStale };

  // Keeps the winner of `e` and the current entry for `key`. The only mutation
  // besides erase(); commutative, associative and idempotent.
  // Takes a view, so a caller that only changes a mark (Replica::apply) does
  // not copy the value first; an Entry converts to one.
  MergeResult merge(std::string_view key, const EntryView& e);
  // The same (kept for loading paths that hand over their strings; the bytes
  // are copied into the arena either way).
  MergeResult merge(std::string&& key, Entry&& e) { return merge(std::string_view(key), EntryView(e)); }

  LwwMap();
  LwwMap(const LwwMap& o);
  LwwMap(LwwMap&& o);
  LwwMap& operator=(const LwwMap& o);
  LwwMap& operator=(LwwMap&& o);
  ~LwwMap();

  EntryPtr find(std::string_view key) const;
  // Removes `key` (tombstone garbage collection). Returns whether it existed.
  bool erase(std::string_view key);

  // Releases hash buckets, index slots and arena bytes left over from erased
  // and replaced entries.
  void shrink();

  size_t size() const { return table_.size(); }  // values and tombstones
  size_t tombstones() const { return tombstones_; }
  size_t live() const { return table_.size() - tombstones_; }
  // Makes room for `n` entries in all, so loading a snapshot or a full sync
  // does not rehash the table over and over.
  void reserve(size_t n) { table_.reserve(n); }

  // The arena's bytes: records in use, and blocks held (tests, metrics).
  size_t arena_live_bytes() const { return slots_->arena.live_bytes(); }
  size_t arena_block_bytes() const { return slots_->arena.block_bytes(); }

  // fn(std::string_view key, const EntryView&) for every entry, in no order.
  template <class F>
  void for_each(F&& fn) const {
    for (uint32_t i : table_) fn(key_of(i), view_of(i));
  }

  // fn(std::string_view key, const EntryView&) -> bool for each winner of
  // `origin` with seq > `after`, in seq order, until fn returns false.
  template <class F>
  void scan_origin(Origin origin, uint64_t after, F&& fn) const {
    auto o = by_origin_.find(origin);
    if (o == by_origin_.end()) return;
    const OriginIndex& idx = o->second;
    if (idx.is_dense) {
      size_t k = idx.front;
      if (after >= idx.base) {
        if (after - idx.base >= idx.dense.size()) return;
        k = std::max<size_t>(k, after - idx.base + 1);
      }
      for (; k < idx.dense.size(); ++k) {
        const uint32_t i = idx.dense[k];
        if (i != kNoSlot && !fn(key_of(i), view_of(i))) return;
      }
      return;
    }
    const auto& segs = idx.segs;
    const uint32_t hi = high_of(after);
    for (auto seg = segs.lower_bound(hi); seg != segs.end(); ++seg) {
      auto it = seg->second.begin();
      if (seg->first == hi) {
        it = std::upper_bound(it, seg->second.end(), low_of(after),
                              [](uint32_t s, const auto& p) { return s < p.first; });
      }
      for (; it != seg->second.end(); ++it) {
        if (it->second != kNoSlot && !fn(key_of(it->second), view_of(it->second))) return;
      }
    }
  }

  // fn(std::string_view key, const EntryView&) -> bool for each entry whose
  // key begins with kOrderedPrefix and is >= `from`, in key order, until fn
  // returns false.
  template <class F>
  void scan_ordered(std::string_view from, F&& fn) const {
    for (auto it = ordered_.lower_bound(from); it != ordered_.end(); ++it) {
      if (!fn(key_of(*it), view_of(*it))) return;
    }
  }
  size_t ordered_size() const { return ordered_.size(); }
  // How many keys begin with a 0 byte but not with kOrderedPrefix: the
  // parts and resets of counters (crdt/counter.h). While there are none, no
  // key is a counter, and a write need not look for one.
  size_t other_internal() const { return other_internal_; }

  // Origins that currently hold at least one winning entry, ascending.
  std::vector<Origin> origins() const;

  // How the origin's winners are indexed (see OriginIndex; for tests).
  enum class IndexForm { kNone, kDense, kSparse };
  IndexForm index_form(Origin o) const {
    auto it = by_origin_.find(o);
    if (it == by_origin_.end()) return IndexForm::kNone;
    return it->second.is_dense ? IndexForm::kDense : IndexForm::kSparse;
  }

  // The digest of every entry, kept current by merge() and erase().
  const Digest& digest() const { return digest_; }

 private:
  // One stored entry. Its record in the arena: the lengths (4 bytes: the
  // key's in the low 11 bits, kMaxKeyBytes = 1024; the value's in the upper
  // 21, kMaxValueBytes = 1 MiB), the time to live (8 bytes, only with kTtl),
  // the key, the value. The lengths moved from the slot into the record
  // with the 4-byte Ref: 32 bytes a slot became 24, and records of like
  // keys and values round to the same 8 bytes as before.
  struct Slot {
    // No member initialisers: chunks of slots are allocated untouched
    // (Slot{} is all zeros).
    uint64_t hlc;
    uint64_t seq;
    Arena::Ref ref;        // 0 while the slot is free
    uint32_t origin : 24;  // a number in origin_of_
    uint32_t flags : 8;
  };
  static_assert(sizeof(Slot) == 24);
  static constexpr uint32_t kTombstone = 1, kVouched = 2, kUnordered = 4, kTtl = 8;
  static constexpr uint32_t kMaxOrigins = uint32_t{1} << 24;
  static constexpr size_t kLensBytes = 4;
  static constexpr uint32_t kKeyLenBits = 11;
  static uint32_t lens_of(size_t key_len, size_t value_len) {
    return static_cast<uint32_t>(key_len | (value_len << kKeyLenBits));
  }
  static size_t key_len_of(uint32_t lens) { return lens & ((1u << kKeyLenBits) - 1); }
  static size_t value_len_of(uint32_t lens) { return lens >> kKeyLenBits; }
  static size_t ttl_bytes(const Slot& s) { return (s.flags & kTtl) ? 8 : 0; }

  // Slots in chunks, and the arena their records are in: a slot keeps its
  // address as others are added, and
  // growth copies nothing. The first 16 chunks hold 4096 slots (128 KiB),
  // so a small map stays small; later ones 65536 (2 MiB), which the
  // allocator can back with huge pages (a restart of 1M keys spends its time
  // in page faults otherwise; see start_again_with_huge_pages()). A vector
  // was tried: its growth frees blocks that raise glibc's mmap threshold, and
  // a synced node of 1M keys took 10 MB more.
  class Slots {
   public:
    static constexpr size_t kSmall = 4096, kSmallChunks = 16, kLarge = 65536;
    static constexpr size_t kInSmall = kSmall * kSmallChunks;
    Slots() = default;
    // The slots only: their refs still name records in o's arena.
    Slots(const Slots& o) : size_(o.size_) {
      for (size_t c = 0, done = 0; c < o.chunks_.size(); done += chunk_size(c), ++c) {
        chunks_.push_back(std::make_unique_for_overwrite<Slot[]>(chunk_size(c)));
        const size_t n = std::min(chunk_size(c), size_ - std::min(size_, done));  // the slots in use
        std::copy(o.chunks_[c].get(), o.chunks_[c].get() + n, chunks_.back().get());
      }
    }
    Slots& operator=(const Slots&) = delete;
    Slot& operator[](size_t i) {
      if (i < kInSmall) return chunks_[i / kSmall][i % kSmall];
      i -= kInSmall;
      return chunks_[kSmallChunks + i / kLarge][i % kLarge];
    }
    const Slot& operator[](size_t i) const { return const_cast<Slots&>(*this)[i]; }
    size_t size() const { return size_; }
    void push_back(Slot s) {
      if (size_ == capacity()) {
        chunks_.push_back(std::make_unique_for_overwrite<Slot[]>(chunk_size(chunks_.size())));
      }
      (*this)[size_++] = s;
    }
    void pop_back() {
      --size_;
      if (!chunks_.empty() && capacity() - chunk_size(chunks_.size() - 1) >= size_ + kSmall) chunks_.pop_back();
    }
    void clear() {
      chunks_.clear();
      size_ = 0;
    }
    void shrink_to_fit() { chunks_.shrink_to_fit(); }

    static uint32_t lens_in(const char* record) {
      uint32_t lens;
      std::memcpy(&lens, record, sizeof lens);
      return lens;
    }
    size_t record_bytes(const Slot& s) const {
      const uint32_t lens = lens_in(arena.at(s.ref));
      return kLensBytes + ttl_bytes(s) + key_len_of(lens) + value_len_of(lens);
    }
    std::string_view key(const Slot& s) const {
      const char* p = arena.at(s.ref);
      return {p + kLensBytes + ttl_bytes(s), key_len_of(lens_in(p))};
    }
    std::string_view key(uint32_t i) const { return key((*this)[i]); }

    Arena arena;

    // The slot merge() is adding to the key index, and its key's hash (see
    // Hash); kNoSlot otherwise.
    uint32_t hashed_slot = UINT32_MAX;
    uint64_t hashed_hash = 0;

   private:
    static size_t chunk_size(size_t c) { return c < kSmallChunks ? kSmall : kLarge; }
    size_t capacity() const {
      const size_t n = chunks_.size();
      return n <= kSmallChunks ? n * kSmall : kInSmall + (n - kSmallChunks) * kLarge;
    }
    std::vector<std::unique_ptr<Slot[]>> chunks_;  // not initialised: slots are written as they are added
    size_t size_ = 0;
  };
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  std::string_view key_of(uint32_t i) const { return slots_->key(i); }
  EntryView view_of(uint32_t i) const;

  // The table holds slot numbers; hashing and comparing go through the slots,
  // and accept a key (a string_view, or a Hashed whose hash was taken once
  // for the index and the digest). hash64 mixes its output, so the table
  // does not mix it again (is_avalanching).
  struct Hashed {
    std::string_view key;
    uint64_t hash;
  };
  struct Hash {
    using is_transparent = void;
    using is_avalanching = void;
    const Slots* slots;
    size_t operator()(std::string_view s) const { return hash64(s); }
    size_t operator()(const Hashed& h) const { return h.hash; }
    size_t operator()(uint32_t i) const {
      // The slot being inserted: its key's hash is known (merge()), and the
      // table asks for it once more on insert.
      if (i == slots->hashed_slot) return slots->hashed_hash;
      return (*this)(slots->key(i));
    }
  };
  struct Eq {
    using is_transparent = void;
    const Slots* slots;
    std::string_view key(uint32_t i) const { return slots->key(i); }
    std::string_view key(std::string_view s) const { return s; }
    std::string_view key(const Hashed& h) const { return h.key; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return key(a) == key(b); }
  };
  using Table = boost::unordered_flat_set<uint32_t, Hash, Eq>;
  // Orders slot numbers by their keys; accepts a string_view for lookups.
  struct Less {
    using is_transparent = void;
    const Slots* slots;
    std::string_view key(uint32_t i) const { return slots->key(i); }
    std::string_view key(std::string_view s) const { return s; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return key(a) < key(b); }
  };
  using Ordered = std::set<uint32_t, Less>;
  static bool ordered_key(std::string_view k) { return k.starts_with(kOrderedPrefix); }
  static bool other_internal_key(std::string_view k) { return !k.empty() && k[0] == '\0' && !ordered_key(k); }

  // One origin's winners in seq order, in one of two forms. No allocation
  // per entry in either.
  //
  // Dense (the usual one): the slot of seq base + k at dense[k], kNoSlot
  // where that seq is no winner here; 4 bytes a seq of the span. Writes of
  // one origin mostly arrive in seq order (its own, a push stream, a full
  // sync), so indexing is an append, and the older ones are superseded from
  // the front, which is dropped once it is half the vector. The form holds
  // while at least a quarter of the span is live (and always below 64).
  //
  // Sparse: (lower 32 bits of a seq, slot) pairs, 8 bytes each, grouped by
  // the seqs' upper 32 bits; a superseded winner's slot is cleared in place
  // (found by binary search) and the pairs are compacted once cleared ones
  // outnumber live ones. An origin goes sparse when its winners are too
  // spread out for the dense form (a few keys written long ago and many
  // superseded since), and dense again when a compaction finds them close.
  //
  // 1,000,000 keys of one origin: 8.4 MB of pairs, 4.2 MB dense.
  using SeqSlots = std::vector<std::pair<uint32_t, uint32_t>>;  // ascending; kNoSlot: cleared
  static uint32_t high_of(uint64_t seq) { return static_cast<uint32_t>(seq >> 32); }
  static uint32_t low_of(uint64_t seq) { return static_cast<uint32_t>(seq); }
  struct OriginIndex {
    bool is_dense = true;
    // Dense form: seqs base .. base + dense.size() - 1; dense[0, front) are
    // all kNoSlot.
    uint64_t base = 0;
    size_t front = 0;
    std::vector<uint32_t> dense;
    // Sparse form.
    std::map<uint32_t, SeqSlots> segs;  // by the seqs' upper 32 bits
    size_t pairs = 0;                   // in all segs, cleared ones included
    size_t cleared = 0;
    size_t live = 0;  // winners indexed, in either form
    uint32_t id = 0;  // its number in origin_of_ and in the slots

    // Whether the dense form still fits once it spans `span` seqs.
    bool dense_fits(uint64_t span) const { return span <= 64 || span <= 4 * live; }
    void add(uint64_t seq, uint32_t slot);
    // Clears seq's slot; false if it was not indexed.
    bool remove(uint64_t seq);
    // Whether the pair is new (or was cleared).
    bool add_sparse(uint64_t seq, uint32_t slot);
    void drop_cleared();
    void go_sparse();
    void go_dense(uint64_t first, uint64_t last);
    void shrink();
  };

  // Writes `e`'s fields into slot `s` and its bytes into a record (the key
  // taken from `key`, which may lie in the slot's old record).
  void store(Slot& s, std::string_view key, const EntryView& e, uint32_t origin_id);
  void release(Slot& s);
  // Moves every record into a fresh arena, dropping the free lists.
  void compact_arena();
  uint32_t index(uint32_t slot, Dot d);  // returns the origin's number
  void unindex(Dot d);
  // Grows the key index before it would rehash itself (see the .cc).
  void grow_table();
  Table fresh_table() const { return Table(0, Hash{slots_.get()}, Eq{slots_.get()}); }

  // Behind a pointer so that moving the map keeps the address the table's
  // hash and equality hold.
  std::unique_ptr<Slots> slots_;
  std::vector<uint32_t> free_;  // erased slots, reused first
  Table table_;
  Ordered ordered_;  // the slots whose keys are ordered_key()
  std::map<Origin, OriginIndex> by_origin_;
  std::vector<Origin> origin_of_;        // origin numbers -> origins
  std::vector<uint32_t> free_origins_;   // numbers of origins without winners
  Digest digest_;
  size_t tombstones_ = 0;
  size_t other_internal_ = 0;
};

}  // namespace meshkv::crdt
