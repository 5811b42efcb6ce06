#include "crdt/lww_map.h"

#include <algorithm>

namespace meshkv::crdt {

LwwMap::MergeResult LwwMap::merge(std::string_view key, const Entry& e) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(key), e).first;
    index(&*it);
    digest_.add(key, e);
    if (e.tombstone) ++tombstones_;
    return MergeResult::kInserted;
  }
  Entry& cur = it->second;
  if (!wins(e, cur)) return MergeResult::kStale;
  unindex(cur.dot);
  digest_.remove(key, cur);
  digest_.add(key, e);
  if (cur.tombstone) --tombstones_;
  cur = e;
  if (cur.tombstone) ++tombstones_;
  index(&*it);
  return MergeResult::kReplaced;
}

const Entry* LwwMap::find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

bool LwwMap::erase(std::string_view key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  unindex(it->second.dot);
  digest_.remove(key, it->second);
  if (it->second.tombstone) --tombstones_;
  entries_.erase(it);
  return true;
}

void LwwMap::shrink() {
  entries_.rehash(0);  // as few buckets as the load factor allows
  for (auto& [o, idx] : by_origin_) {
    if (idx.cleared > 0) {
      std::erase_if(idx.slots, [](const auto& slot) { return slot.second == nullptr; });
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

std::vector<std::pair<uint64_t, LwwMap::Node>>::const_iterator LwwMap::OriginIndex::after(
    uint64_t seq) const {
  return std::upper_bound(slots.begin(), slots.end(), seq,
                          [](uint64_t s, const auto& slot) { return s < slot.first; });
}

void LwwMap::index(Node node) {
  const Dot d = node->second.dot;
  auto& idx = by_origin_[d.origin];
  if (idx.slots.empty() || idx.slots.back().first < d.seq) {
    idx.slots.emplace_back(d.seq, node);
    return;
  }
  auto pos = std::lower_bound(idx.slots.begin(), idx.slots.end(), d.seq, seq_less);
  if (pos != idx.slots.end() && pos->first == d.seq) {
    if (!pos->second) --idx.cleared;
    pos->second = node;
    return;
  }
  idx.slots.insert(pos, {d.seq, node});
}

void LwwMap::unindex(Dot d) {
  auto o = by_origin_.find(d.origin);
  if (o == by_origin_.end()) return;
  auto& idx = o->second;
  auto pos = std::lower_bound(idx.slots.begin(), idx.slots.end(), d.seq, seq_less);
  if (pos == idx.slots.end() || pos->first != d.seq || !pos->second) return;
  pos->second = nullptr;
  ++idx.cleared;
  const size_t live = idx.slots.size() - idx.cleared;
  if (live == 0) {
    by_origin_.erase(o);
  } else if (idx.cleared > 64 && idx.cleared > live) {
    std::erase_if(idx.slots, [](const auto& slot) { return slot.second == nullptr; });
    idx.cleared = 0;
  }
}

}  // namespace meshkv::crdt
