#include "crdt/lww_map.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace meshkv::crdt {

void Arena::swap(Arena& o) noexcept {
  std::swap(blocks_, o.blocks_);
  std::swap(used_, o.used_);
  std::swap(block_size_, o.block_size_);
  std::swap(heads_, o.heads_);
  std::swap(large_, o.large_);
  std::swap(free_large_, o.free_large_);
  std::swap(live_, o.live_);
  std::swap(free_, o.free_);
  std::swap(blocks_bytes_, o.blocks_bytes_);
}

Arena::Ref Arena::alloc(size_t n) {
  n = rounded(n);
  if (n > kMaxSmall) {
    Ref i;
    if (!free_large_.empty()) {
      i = free_large_.back();
      free_large_.pop_back();
    } else {
      if (large_.size() >= kLarge) throw std::length_error("Arena: too many large records");
      i = static_cast<Ref>(large_.size());
      large_.emplace_back();
    }
    large_[i] = std::make_unique_for_overwrite<char[]>(n);
    live_ += n;
    return kLarge | i;
  }
  const size_t c = n / 8;
  if (c < heads_.size() && heads_[c] != 0) {
    const Ref r = heads_[c];
    std::memcpy(&heads_[c], at(r), sizeof(Ref));
    free_ -= n;
    live_ += n;
    return r;
  }
  if (block_size_ - used_ < n) {
    if (blocks_.size() >= kMaxBlocks) throw std::length_error("Arena: full");
    // The rest of the old block (under n <= kMaxSmall bytes) serves a
    // record of its size later.
    if (const size_t left = block_size_ - used_; left >= 8) {
      live_ += left;
      release(ref_of(blocks_.size() - 1, used_), left);
    }
    // Blocks double from 4 KiB to 8 MiB: a small map stays small, a large
    // one asks the allocator for big blocks (mmap'd, returned whole, and
    // large enough for huge pages: see start_again_with_huge_pages() in
    // cli/cmd_node.cc).
    block_size_ = std::clamp<size_t>(blocks_bytes_, 4096, size_t{8} << 20);
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(block_size_));
    blocks_bytes_ += block_size_;
    used_ = 0;
  }
  const Ref r = ref_of(blocks_.size() - 1, used_);
  used_ += n;
  live_ += n;
  return r;
}

void Arena::release(Ref r, size_t n) {
  n = rounded(n);
  live_ -= n;
  if (n > kMaxSmall) {
    const Ref i = r & ~kLarge;
    large_[i].reset();
    free_large_.push_back(i);
    return;
  }
  const size_t c = n / 8;
  if (c >= heads_.size()) heads_.resize(c + 1, 0);
  std::memcpy(at(r), &heads_[c], sizeof(Ref));
  heads_[c] = r;
  free_ += n;
}

LwwMap::LwwMap()
    : slots_(std::make_unique<Slots>()), table_(fresh_table()), ordered_(Less{slots_.get()}) {}

LwwMap::LwwMap(const LwwMap& o)
    : slots_(std::make_unique<Slots>(*o.slots_)),
      free_(o.free_),
      table_(fresh_table()),
      ordered_(Less{slots_.get()}),
      by_origin_(o.by_origin_),
      origin_of_(o.origin_of_),
      free_origins_(o.free_origins_),
      digest_(o.digest_),
      tombstones_(o.tombstones_),
      other_internal_(o.other_internal_) {
  // The slots were copied with refs to the other map's records: each gets
  // a record of its own here.
  for (size_t i = 0; i < slots_->size(); ++i) {
    Slot& s = (*slots_)[i];
    if (s.ref == 0) continue;
    const size_t n = o.slots_->record_bytes(s);
    const Arena::Ref r = slots_->arena.alloc(n);
    std::memcpy(slots_->arena.at(r), o.slots_->arena.at(s.ref), n);
    s.ref = r;
  }
  table_.reserve(o.table_.size());
  for (uint32_t i : o.table_) table_.insert(i);
  for (uint32_t i : o.ordered_) ordered_.insert(ordered_.end(), i);
}

// The moved-from map is left empty and usable.
LwwMap::LwwMap(LwwMap&& o) : LwwMap() { *this = std::move(o); }

LwwMap& LwwMap::operator=(const LwwMap& o) {
  if (this != &o) *this = LwwMap(o);
  return *this;
}

LwwMap& LwwMap::operator=(LwwMap&& o) {
  if (this == &o) return *this;
  // Swapping the slot stores with the tables keeps each table beside the
  // slots its hash and equality point at; the arenas go with their slots.
  std::swap(slots_, o.slots_);
  std::swap(table_, o.table_);
  std::swap(ordered_, o.ordered_);  // comparators included
  free_ = std::exchange(o.free_, {});
  by_origin_ = std::exchange(o.by_origin_, {});
  origin_of_ = std::exchange(o.origin_of_, {});
  free_origins_ = std::exchange(o.free_origins_, {});
  digest_ = std::exchange(o.digest_, {});
  tombstones_ = std::exchange(o.tombstones_, 0);
  other_internal_ = std::exchange(o.other_internal_, 0);
  // This map's old entries, now o's, go.
  o.table_.clear();
  o.ordered_.clear();
  o.slots_->arena = Arena();
  o.slots_->clear();
  return *this;
}

LwwMap::~LwwMap() = default;

EntryView LwwMap::view_of(uint32_t i) const {
  const Slot& s = (*slots_)[i];
  EntryView v;
  v.hlc = Hlc{s.hlc};
  v.dot = Dot{origin_of_[s.origin], s.seq};
  v.tombstone = (s.flags & kTombstone) != 0;
  v.vouched = (s.flags & kVouched) != 0;
  v.unordered = (s.flags & kUnordered) != 0;
  const char* p = slots_->arena.at(s.ref);
  const uint32_t lens = Slots::lens_in(p);
  p += kLensBytes;
  if (s.flags & kTtl) {
    std::memcpy(&v.ttl_ms, p, 8);
    p += 8;
  }
  v.value = std::string_view(p + key_len_of(lens), value_len_of(lens));
  return v;
}

void LwwMap::store(Slot& s, std::string_view key, const EntryView& e, uint32_t origin_id) {
  const uint32_t flags = (e.tombstone ? kTombstone : 0) | (e.vouched ? kVouched : 0) |
                         (e.unordered ? kUnordered : 0) | (e.ttl_ms != 0 ? kTtl : 0);
  const size_t ttl = e.ttl_ms != 0 ? 8 : 0;
  const size_t n = kLensBytes + ttl + key.size() + e.value.size();
  Arena& arena = slots_->arena;
  Arena::Ref r = s.ref;
  // A record of the same rounded size and layout is rewritten in place (the
  // usual replacement: a newer value of like size; the key is the same);
  // otherwise a new record is written before the old one goes, since `key`
  // may lie in it.
  const bool in_place = r != 0 && (s.flags & kTtl) == (flags & kTtl) &&
                        (slots_->record_bytes(s) + 7) / 8 == (n + 7) / 8;
  char* p;
  if (in_place) {
    p = arena.at(r);
  } else {
    r = arena.alloc(n);
    p = arena.at(r);
    std::memcpy(p + kLensBytes + ttl, key.data(), key.size());
    if (s.ref != 0) release(s);
  }
  const uint32_t lens = lens_of(key.size(), e.value.size());
  std::memcpy(p, &lens, sizeof lens);
  if (ttl != 0) std::memcpy(p + kLensBytes, &e.ttl_ms, 8);
  if (!e.value.empty()) std::memcpy(p + kLensBytes + ttl + key.size(), e.value.data(), e.value.size());
  s.hlc = e.hlc.raw;
  s.seq = e.dot.seq;
  s.ref = r;
  s.origin = origin_id;
  s.flags = flags;
}

void LwwMap::release(Slot& s) {
  slots_->arena.release(s.ref, slots_->record_bytes(s));
  s.ref = 0;
}

void LwwMap::compact_arena() {
  Arena fresh;
  for (size_t i = 0; i < slots_->size(); ++i) {
    Slot& s = (*slots_)[i];
    if (s.ref == 0) continue;
    const size_t n = slots_->record_bytes(s);
    const Arena::Ref r = fresh.alloc(n);
    std::memcpy(fresh.at(r), slots_->arena.at(s.ref), n);
    s.ref = r;
  }
  slots_->arena = std::move(fresh);
}

LwwMap::MergeResult LwwMap::merge(std::string_view key, const EntryView& e) {
  // The slot's bit fields hold these lengths (validate_entry() keeps every
  // entry a node accepts inside them).
  if (key.size() > kMaxKeyBytes || e.value.size() > kMaxValueBytes) {
    throw std::length_error("LwwMap: key or value above its limit");
  }
  const uint64_t h = hash64(key);
  auto it = table_.find(Hashed{key, h});
  if (it == table_.end()) {
    if (table_.size() >= table_.max_load()) grow_table();
    uint32_t i;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else {
      i = static_cast<uint32_t>(slots_->size());
      slots_->push_back(Slot{});
    }
    Slot& s = (*slots_)[i];
    store(s, key, e, index(i, e.dot));
    {
      // Cleared however insert() leaves (a throw included): slot numbers
      // are reused for other keys.
      struct Known {
        Slots& slots;
        ~Known() { slots.hashed_slot = kNoSlot; }
      } known{*slots_};
      slots_->hashed_slot = i;
      slots_->hashed_hash = h;
      table_.insert(i);
    }
    if (ordered_key(key)) ordered_.insert(i);
    if (other_internal_key(key)) ++other_internal_;
    digest_.add_hashed(h, key, e);
    if (e.tombstone) ++tombstones_;
    return MergeResult::kInserted;
  }
  const uint32_t i = *it;
  Slot& s = (*slots_)[i];
  const EntryView cur = view_of(i);
  if (!wins(e, cur)) return MergeResult::kStale;
  const std::string_view k = slots_->key(s);  // `key` may be a view of the map
  digest_.replace_hashed(h, k, cur, e);
  unindex(cur.dot);
  if (cur.tombstone) --tombstones_;
  store(s, k, e, index(i, e.dot));
  if (e.tombstone) ++tombstones_;
  // Replaced records of drifting sizes pile up on free lists no new record
  // takes: past a megabyte and half the arena, they are packed away (which
  // moves the records: views from before this merge are stale, as the
  // replaced entry's own always is).
  if (const Arena& a = slots_->arena; a.free_bytes() > (size_t{1} << 20) && a.free_bytes() > a.live_bytes()) {
    compact_arena();
  }
  return MergeResult::kReplaced;
}

void LwwMap::grow_table() {
  // The table's own growth rehashes its slot numbers in table order, which
  // reads each slot and its record at random: two cache misses a key, a
  // third of the time of merging a million new keys. Slots and records lie
  // in the order they were added, so rebuilding from the slots reads both
  // in order. Every slot with a record is in the table (erase() clears a
  // slot it removes), and the key being added has no slot yet.
  Table grown = fresh_table();
  grown.reserve(std::max<size_t>(2 * table_.size(), 16));
  for (size_t i = 0; i < slots_->size(); ++i) {
    if ((*slots_)[i].ref != 0) grown.insert(static_cast<uint32_t>(i));
  }
  table_ = std::move(grown);
}

EntryPtr LwwMap::find(std::string_view key) const {
  auto it = table_.find(key);
  return it == table_.end() ? EntryPtr() : EntryPtr(view_of(*it));
}

bool LwwMap::erase(std::string_view key) {
  auto it = table_.find(key);
  if (it == table_.end()) return false;
  const uint32_t i = *it;
  Slot& s = (*slots_)[i];
  const EntryView cur = view_of(i);
  unindex(cur.dot);
  digest_.remove(slots_->key(s), cur);
  if (cur.tombstone) --tombstones_;
  table_.erase(it);
  if (ordered_key(slots_->key(s))) ordered_.erase(i);  // before its key goes
  if (other_internal_key(slots_->key(s))) --other_internal_;
  // The slot keeps its place (others' numbers must not move); its record
  // goes back to the arena now.
  release(s);
  s = Slot{};
  free_.push_back(i);
  return true;
}

void LwwMap::shrink() {
  table_.rehash(0);  // as few buckets as the load factor allows
  // Free slots at the end of the store can go; others stay numbered.
  std::sort(free_.begin(), free_.end());
  while (!free_.empty() && free_.back() + 1 == slots_->size()) {
    free_.pop_back();
    slots_->pop_back();
  }
  slots_->shrink_to_fit();
  free_.shrink_to_fit();
  for (auto& [o, idx] : by_origin_) idx.shrink();
  if (slots_->arena.free_bytes() > 0) compact_arena();
}

std::vector<Origin> LwwMap::origins() const {
  std::vector<Origin> out;
  out.reserve(by_origin_.size());
  for (const auto& [o, idx] : by_origin_) out.push_back(o);
  return out;
}

namespace {
auto low_less = [](const auto& pair, uint32_t low) { return pair.first < low; };
}  // namespace

void LwwMap::OriginIndex::drop_cleared() {
  for (auto seg = segs.begin(); seg != segs.end();) {
    std::erase_if(seg->second, [](const auto& pair) { return pair.second == kNoSlot; });
    seg = seg->second.empty() ? segs.erase(seg) : std::next(seg);
  }
  pairs -= cleared;
  cleared = 0;
  // Close together again (the old winners that kept it sparse went): back
  // to the dense form, half the bytes.
  if (pairs > 0) {
    const uint64_t first = (uint64_t{segs.begin()->first} << 32) | segs.begin()->second.front().first;
    const uint64_t last = (uint64_t{segs.rbegin()->first} << 32) | segs.rbegin()->second.back().first;
    if (last - first < 2 * live) go_dense(first, last);
  }
}

void LwwMap::OriginIndex::go_sparse() {
  for (size_t k = front; k < dense.size(); ++k) {
    if (dense[k] != kNoSlot) add_sparse(base + k, dense[k]);
  }
  dense = {};
  front = 0;
  is_dense = false;
}

void LwwMap::OriginIndex::go_dense(uint64_t first, uint64_t last) {
  // Called with no pair cleared (drop_cleared()), first and last the seqs
  // of the first and last pair.
  base = first;
  front = 0;
  dense.assign(last - first + 1, kNoSlot);
  for (const auto& [hi, seg] : segs) {
    for (const auto& [lo, slot] : seg) dense[((uint64_t{hi} << 32) | lo) - base] = slot;
  }
  segs.clear();
  pairs = 0;
  is_dense = true;
}

bool LwwMap::OriginIndex::add_sparse(uint64_t seq, uint32_t slot) {
  const uint32_t hi = high_of(seq), lo = low_of(seq);
  // The newest group is the usual one.
  SeqSlots& seg = !segs.empty() && segs.rbegin()->first == hi ? segs.rbegin()->second : segs[hi];
  if (seg.empty() || seg.back().first < lo) {
    seg.emplace_back(lo, slot);
    ++pairs;
    return true;
  }
  auto pos = std::lower_bound(seg.begin(), seg.end(), lo, low_less);
  if (pos != seg.end() && pos->first == lo) {
    const bool was_cleared = pos->second == kNoSlot;
    if (was_cleared) --cleared;
    pos->second = slot;
    return was_cleared;
  }
  seg.insert(pos, {lo, slot});
  ++pairs;
  return true;
}

void LwwMap::OriginIndex::add(uint64_t seq, uint32_t slot) {
  // A seq is one write, so it is normally not indexed yet (its slot was
  // cleared before the key's next winner came). A seq already indexed (two
  // keys claiming one dot: a faulty peer) takes the new slot, and `live`
  // stays exact either way: the origin's number is freed when it reaches 0.
  if (!is_dense) {
    if (add_sparse(seq, slot)) ++live;
    return;
  }
  if (dense.empty()) {
    base = seq;
    front = 0;
  }
  if (seq >= base && seq - base < dense.size()) {
    const size_t k = seq - base;
    if (dense[k] == kNoSlot) ++live;
    dense[k] = slot;
    front = std::min(front, k);
    return;
  }
  ++live;  // a seq outside the span
  if (seq >= base) {
    const uint64_t k = seq - base;
    if (dense_fits(k + 1 - front)) {
      dense.resize(k + 1, kNoSlot);  // an append, as a rule
      dense[k] = slot;
      return;
    }
  } else if (dense_fits(dense.size() - front + (base - seq))) {
    // Below the span (a write that arrived late): rare, and a copy.
    dense.insert(dense.begin(), base - seq, kNoSlot);
    base = seq;
    dense[0] = slot;
    front = 0;
    return;
  }
  go_sparse();
  add_sparse(seq, slot);
}

bool LwwMap::OriginIndex::remove(uint64_t seq) {
  if (is_dense) {
    if (seq < base || seq - base >= dense.size() || dense[seq - base] == kNoSlot) return false;
    const size_t k = seq - base;
    dense[k] = kNoSlot;
    if (--live == 0) {  // the caller frees the origin's number
      dense.clear();
      front = 0;
      return true;
    }
    // The last entry is always live: an added seq past the span is
    // appended, and cleared ones at the end go at once.
    while (!dense.empty() && dense.back() == kNoSlot) dense.pop_back();
    if (k == front) {
      while (front < dense.size() && dense[front] == kNoSlot) ++front;
    }
    if (front >= 64 && 2 * front >= dense.size()) {
      dense.erase(dense.begin(), dense.begin() + static_cast<std::ptrdiff_t>(front));
      base += front;
      front = 0;
    }
    if (!dense_fits(dense.size() - front)) go_sparse();
    return true;
  }
  auto seg = segs.find(high_of(seq));
  if (seg == segs.end()) return false;
  const uint32_t lo = low_of(seq);
  auto pos = std::lower_bound(seg->second.begin(), seg->second.end(), lo, low_less);
  if (pos == seg->second.end() || pos->first != lo || pos->second == kNoSlot) return false;
  pos->second = kNoSlot;
  ++cleared;
  --live;
  if (live > 0 && cleared > 64 && cleared > live) drop_cleared();
  return true;
}

void LwwMap::OriginIndex::shrink() {
  if (is_dense) {
    if (front > 0) {
      dense.erase(dense.begin(), dense.begin() + static_cast<std::ptrdiff_t>(front));
      base += front;
      front = 0;
    }
    dense.shrink_to_fit();
    return;
  }
  if (cleared > 0) drop_cleared();
  for (auto& [hi, seg] : segs) seg.shrink_to_fit();
}

uint32_t LwwMap::index(uint32_t slot, Dot d) {
  auto [o, added] = by_origin_.try_emplace(d.origin);
  auto& idx = o->second;
  if (added) {
    if (!free_origins_.empty()) {
      idx.id = free_origins_.back();
      free_origins_.pop_back();
      origin_of_[idx.id] = d.origin;
    } else {
      if (origin_of_.size() >= kMaxOrigins) {
        by_origin_.erase(o);
        throw std::length_error("LwwMap: too many origins");
      }
      idx.id = static_cast<uint32_t>(origin_of_.size());
      origin_of_.push_back(d.origin);
    }
  }
  idx.add(d.seq, slot);
  return idx.id;
}

void LwwMap::unindex(Dot d) {
  auto o = by_origin_.find(d.origin);
  if (o == by_origin_.end()) return;
  auto& idx = o->second;
  if (!idx.remove(d.seq)) return;
  if (idx.live == 0) {
    free_origins_.push_back(idx.id);
    by_origin_.erase(o);
  }
}

}  // namespace meshkv::crdt
