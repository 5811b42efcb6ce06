#include "crdt/lww_map.h"

namespace meshkv::crdt {

LwwMap::MergeResult LwwMap::merge(std::string_view key, const Entry& e) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(key), e).first;
    index(&it->first, e.dot);
    if (e.tombstone) ++tombstones_;
    return MergeResult::kInserted;
  }
  Entry& cur = it->second;
  if (!wins(e, cur)) return MergeResult::kStale;
  unindex(cur.dot);
  if (cur.tombstone) --tombstones_;
  cur = e;
  if (cur.tombstone) ++tombstones_;
  index(&it->first, cur.dot);
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
  if (it->second.tombstone) --tombstones_;
  entries_.erase(it);
  return true;
}

std::vector<Origin> LwwMap::origins() const {
  std::vector<Origin> out;
  out.reserve(by_origin_.size());
  for (const auto& [o, idx] : by_origin_) out.push_back(o);
  return out;
}

void LwwMap::index(const std::string* key, Dot d) {
  auto& idx = by_origin_[d.origin];
  // Writes of one origin mostly arrive in seq order: hint at the end.
  idx.emplace_hint(idx.end(), d.seq, key);
}

void LwwMap::unindex(Dot d) {
  auto o = by_origin_.find(d.origin);
  if (o == by_origin_.end()) return;
  o->second.erase(d.seq);
  if (o->second.empty()) by_origin_.erase(o);
}

}  // namespace meshkv::crdt
