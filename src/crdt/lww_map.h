// The last-writer-wins map: key -> winning Entry (value or tombstone).
//
// Besides the hash map, an index per origin orders the current winners by seq,
// so "winners of origin o above seq s" costs O(log n + answer), which keeps
// delta extraction proportional to what a peer misses, not to the map.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crdt/digest.h"
#include "crdt/entry.h"

namespace meshkv::crdt {

class LwwMap {
 public:
  enum class MergeResult { kInserted, kReplaced, kStale };

  // Keeps the winner of `e` and the current entry for `key`. The only mutation
  // besides erase(); commutative, associative and idempotent.
  MergeResult merge(std::string_view key, const Entry& e);

  const Entry* find(std::string_view key) const;
  // Removes `key` (tombstone garbage collection). Returns whether it existed.
  bool erase(std::string_view key);

  // Releases hash buckets and index slots left over from erased entries.
  void shrink();

  size_t size() const { return entries_.size(); }  // values and tombstones
  size_t tombstones() const { return tombstones_; }
  size_t live() const { return entries_.size() - tombstones_; }

  // fn(const std::string& key, const Entry&) for every entry, in no order.
  template <class F>
  void for_each(F&& fn) const {
    for (const auto& [k, e] : entries_) fn(k, e);
  }

  // fn(const std::string& key, const Entry&) -> bool for each winner of
  // `origin` with seq > `after`, in seq order, until fn returns false.
  template <class F>
  void scan_origin(Origin origin, uint64_t after, F&& fn) const {
    auto o = by_origin_.find(origin);
    if (o == by_origin_.end()) return;
    const auto& slots = o->second.slots;
    for (auto it = o->second.after(after); it != slots.end(); ++it) {
      if (it->second && !fn(it->second->first, it->second->second)) return;
    }
  }

  // Origins that currently hold at least one winning entry, ascending.
  std::vector<Origin> origins() const;

  // The digest of every entry, kept current by merge() and erase().
  const Digest& digest() const { return digest_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Entries = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;
  using Node = const Entries::value_type*;

  // One origin's winners in seq order. Writes of one origin mostly arrive in
  // seq order, so indexing is an append; a superseded winner's slot is
  // cleared in place (found by binary search) and the vector is compacted
  // once cleared slots outnumber live ones. No allocation per entry.
  struct OriginIndex {
    std::vector<std::pair<uint64_t, Node>> slots;  // ascending seq; null: cleared
    size_t cleared = 0;
    std::vector<std::pair<uint64_t, Node>>::const_iterator after(uint64_t seq) const;
  };

  void index(Node node);
  void unindex(Dot d);

  // Node-based: entries keep their address, so the index may point at them.
  Entries entries_;
  std::map<Origin, OriginIndex> by_origin_;
  Digest digest_;
  size_t tombstones_ = 0;
};

}  // namespace meshkv::crdt
