#include "crdt/lww_map.h"

#include <algorithm>

namespace meshkv::crdt {

LwwMap::LwwMap()
    : slots_(std::make_unique<Slots>()), table_(fresh_table()), ordered_(Less{slots_.get()}) {}

LwwMap::LwwMap(const LwwMap& o)
    : slots_(std::make_unique<Slots>(*o.slots_)),
      free_(o.free_),
      table_(fresh_table()),
      ordered_(Less{slots_.get()}),
      by_origin_(o.by_origin_),
      digest_(o.digest_),
      tombstones_(o.tombstones_) {
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
  // slots its hash and equality point at.
  std::swap(slots_, o.slots_);
  std::swap(table_, o.table_);
  std::swap(ordered_, o.ordered_);  // comparators included
  free_ = std::exchange(o.free_, {});
  by_origin_ = std::exchange(o.by_origin_, {});
  digest_ = std::exchange(o.digest_, {});
  tombstones_ = std::exchange(o.tombstones_, 0);
  o.slots_->clear();
  o.table_.clear();
  o.ordered_.clear();
  return *this;
}

LwwMap::~LwwMap() = default;

LwwMap::MergeResult LwwMap::merge(std::string_view key, const Entry& e) { return merge_impl(key, e); }

LwwMap::MergeResult LwwMap::merge(std::string&& key, Entry&& e) { return merge_impl(std::move(key), std::move(e)); }

template <class K, class E>
LwwMap::MergeResult LwwMap::merge_impl(K&& key, E&& e) {
  auto it = table_.find(std::string_view(key));
  if (it == table_.end()) {
    uint32_t i;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
      (*slots_)[i].key = std::forward<K>(key);
      (*slots_)[i].entry = std::forward<E>(e);
    } else {
      i = static_cast<uint32_t>(slots_->size());
      slots_->push_back(Slot{std::string(std::forward<K>(key)), std::forward<E>(e)});
    }
    const Slot& s = (*slots_)[i];  // key and e may have been moved from
    table_.insert(i);
    if (ordered_key(s.key)) ordered_.insert(i);
    index(i);
    digest_.add(s.key, s.entry);
    if (s.entry.tombstone) ++tombstones_;
    return MergeResult::kInserted;
  }
  const uint32_t i = *it;
  Entry& cur = (*slots_)[i].entry;
  if (!wins(e, cur)) return MergeResult::kStale;
  unindex(cur.dot);
  digest_.remove(key, cur);
  digest_.add(key, e);
  if (cur.tombstone) --tombstones_;
  cur = std::forward<E>(e);
  if (cur.tombstone) ++tombstones_;
  index(i);
  return MergeResult::kReplaced;
}

const Entry* LwwMap::find(std::string_view key) const {
  auto it = table_.find(key);
  return it == table_.end() ? nullptr : &(*slots_)[*it].entry;
}

bool LwwMap::erase(std::string_view key) {
  auto it = table_.find(key);
  if (it == table_.end()) return false;
  const uint32_t i = *it;
  Slot& s = (*slots_)[i];
  unindex(s.entry.dot);
  digest_.remove(key, s.entry);
  if (s.entry.tombstone) --tombstones_;
  table_.erase(it);
  if (ordered_key(s.key)) ordered_.erase(i);  // before its key goes
  // The slot keeps its place (others' numbers must not move); its strings'
  // memory goes back now.
  std::string().swap(s.key);
  s.entry = Entry{};
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
  for (auto& [o, idx] : by_origin_) {
    if (idx.cleared > 0) {
      std::erase_if(idx.slots, [](const auto& slot) { return slot.second == kNoSlot; });
      idx.cleared = 0;
    }
    idx.slots.shrink_to_fit();
  }
}

std::vector<Origin> LwwMap::origins() const {
  std::vector<Origin> out;
  out.reserve(by_origin_.size());
  for (const auto& [o, idx] : by_origin_) out.push_back(o);
  return out;
}

namespace {
auto seq_less = [](const auto& slot, uint64_t seq) { return slot.first < seq; };
}  // namespace

std::vector<std::pair<uint64_t, uint32_t>>::const_iterator LwwMap::OriginIndex::after(
    uint64_t seq) const {
  return std::upper_bound(slots.begin(), slots.end(), seq,
                          [](uint64_t s, const auto& slot) { return s < slot.first; });
}

void LwwMap::index(uint32_t slot) {
  const Dot d = (*slots_)[slot].entry.dot;
  auto& idx = by_origin_[d.origin];
  if (idx.slots.empty() || idx.slots.back().first < d.seq) {
    idx.slots.emplace_back(d.seq, slot);
    return;
  }
  auto pos = std::lower_bound(idx.slots.begin(), idx.slots.end(), d.seq, seq_less);
  if (pos != idx.slots.end() && pos->first == d.seq) {
    if (pos->second == kNoSlot) --idx.cleared;
    pos->second = slot;
    return;
  }
  idx.slots.insert(pos, {d.seq, slot});
}

void LwwMap::unindex(Dot d) {
  auto o = by_origin_.find(d.origin);
  if (o == by_origin_.end()) return;
  auto& idx = o->second;
  auto pos = std::lower_bound(idx.slots.begin(), idx.slots.end(), d.seq, seq_less);
  if (pos == idx.slots.end() || pos->first != d.seq || pos->second == kNoSlot) return;
  pos->second = kNoSlot;
  ++idx.cleared;
  const size_t live = idx.slots.size() - idx.cleared;
  if (live == 0) {
    by_origin_.erase(o);
  } else if (idx.cleared > 64 && idx.cleared > live) {
    std::erase_if(idx.slots, [](const auto& slot) { return slot.second == kNoSlot; });
    idx.cleared = 0;
  }
}

}  // namespace meshkv::crdt
