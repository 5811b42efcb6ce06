#include "crdt/replica.h"

#include <algorithm>
#include <set>

namespace meshkv::crdt {

Status check_key(std::string_view key) {
  if (key.empty()) return Status::Invalid("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::TooLarge("key is " + std::to_string(key.size()) + " bytes; the limit is " +
                            std::to_string(kMaxKeyBytes));
  }
  return Status::Ok();
}

Status check_value(std::string_view value) {
  if (value.size() > kMaxValueBytes) {
    return Status::TooLarge("value is " + std::to_string(value.size()) +
                            " bytes; the limit is " + std::to_string(kMaxValueBytes) +
                            " (1 MiB)");
  }
  return Status::Ok();
}

Status validate_entry(std::string_view key, const Entry& e) {
  if (Status s = check_key(key); !s.ok()) return s;
  if (Status s = check_value(e.value); !s.ok()) return s;
  if (e.dot.origin == 0 || e.dot.seq == 0) return Status::Corruption("entry without a dot");
  if (e.tombstone && !e.value.empty()) return Status::Corruption("tombstone with a value");
  return Status::Ok();
}

Replica::Replica(Origin self, uint64_t max_skew_ms) : self_(self), clock_(max_skew_ms) {}

Result<KeyedEntry> Replica::write(std::string_view key, std::optional<std::string_view> value,
                                  uint64_t phys_ms) {
  if (Status s = check_key(key); !s.ok()) return s;
  if (value) {
    if (Status s = check_value(*value); !s.ok()) return s;
  }
  KeyedEntry ke{std::string(key), Entry{}};
  ke.entry.hlc = clock_.now(phys_ms);
  // A write supersedes the entry it replaces on this replica, even one whose
  // clock ran further ahead than the clock adopts (HlcClock::observe refuses
  // it): a writer that has seen a value must win over it, or an acknowledged
  // set or delete would be invisible where it was made. The bumped timestamp
  // stays out of the clock, so one fast peer cannot drag every later write of
  // this node into its future; only writes of this key pay for it.
  if (const Entry* cur = map_.find(ke.key); cur != nullptr && !(ke.entry.hlc > cur->hlc)) {
    ke.entry.hlc = Hlc{cur->hlc.raw + 1};
  }
  ke.entry.dot = Dot{self_, next_seq_++};
  ke.entry.tombstone = !value.has_value();
  if (value) ke.entry.value.assign(value->data(), value->size());
  map_.merge(ke.key, ke.entry);
  ctx_.add(ke.entry.dot);
  return ke;
}

bool Replica::apply_entry(std::string_view key, const Entry& e, uint64_t phys_ms) {
  clock_.observe(e.hlc, phys_ms);
  if (ctx_.covers(e.dot)) return false;
  ctx_.add(e.dot);
  return map_.merge(key, e) != LwwMap::MergeResult::kStale;
}

Status Replica::apply_chunk(const Chunk& c, uint64_t phys_ms,
                            std::vector<const KeyedEntry*>* changed) {
  if (c.origin == 0) return Status::Corruption("chunk without origin");
  if (c.to < c.from) return Status::Corruption("chunk range ends before it starts");
  const bool loose = c.from == c.to;
  for (const KeyedEntry& ke : c.entries) {
    if (Status s = validate_entry(ke.key, ke.entry); !s.ok()) return s;
    const Dot d = ke.entry.dot;
    if (d.origin != c.origin) return Status::Corruption("chunk entry from another origin");
    if (d.seq <= c.from || (!loose && d.seq > c.to)) {
      return Status::Corruption("chunk entry outside the chunk's range");
    }
  }
  for (const KeyedEntry& ke : c.entries) {
    if (apply_entry(ke.key, ke.entry, phys_ms) && changed) changed->push_back(&ke);
  }
  ctx_.add_range(c.origin, c.from, c.to);
  return Status::Ok();
}

std::vector<Chunk> Replica::delta(const VersionVector& peer, size_t max_chunk_bytes, Origin lo,
                                  Origin hi, size_t max_chunks) const {
  // Origins with winners, and origins our vector knows (their seqs may all be
  // superseded, yet the peer's vector must still be able to catch up).
  std::set<Origin> origins;
  for (Origin o : map_.origins()) origins.insert(o);
  for (const auto& [o, s] : ctx_.vv().items()) origins.insert(o);

  std::vector<Chunk> out;
  for (auto oit = origins.lower_bound(lo); oit != origins.end() && *oit <= hi; ++oit) {
    const Origin o = *oit;
    const uint64_t mine = ctx_.vv().get(o);
    const uint64_t theirs = peer.get(o);
    // Ranged chunks cover (theirs, mine]; loose entries lie above both.
    const uint64_t loose_from = std::max(mine, theirs);
    Chunk cur{o, theirs, theirs, {}};
    size_t bytes = 0;
    bool ranged = mine > theirs;
    auto flush = [&](uint64_t to) {
      cur.to = to;
      out.push_back(std::move(cur));
      cur = Chunk{o, to, to, {}};
      bytes = 0;
    };
    bool full = false;
    map_.scan_origin(o, theirs, [&](const std::string& key, const Entry& e) {
      if (out.size() >= max_chunks) {
        full = true;  // the entries gathered since the last chunk wait for the next round
        return false;
      }
      if (ranged && e.dot.seq > mine) {
        flush(mine);  // close the ranged part at exactly our vector
        ranged = false;
        cur = Chunk{o, loose_from, loose_from, {}};
      }
      if (!ranged && e.dot.seq <= loose_from) return true;  // peer covers it
      const size_t sz = entry_size_bound(key.size(), e.value.size());
      if (!cur.entries.empty() && bytes + sz > max_chunk_bytes) {
        if (ranged) {
          flush(cur.entries.back().entry.dot.seq);
        } else {
          out.push_back(std::move(cur));
          cur = Chunk{o, loose_from, loose_from, {}};
          bytes = 0;
        }
      }
      cur.entries.push_back(KeyedEntry{key, e});
      bytes += sz;
      return true;
    });
    if (full || out.size() >= max_chunks) break;
    if (ranged) {
      flush(mine);
    } else if (!cur.entries.empty()) {
      out.push_back(std::move(cur));
    }
  }
  if (out.size() > max_chunks) out.resize(max_chunks);
  return out;
}

bool Replica::collect(std::string_view key, Dot d) {
  const Entry* e = map_.find(key);
  if (!e || !e->tombstone || e->dot != d) return false;
  return map_.erase(key);
}

void Replica::reset_to(std::vector<KeyedEntry> keep) {
  map_ = LwwMap();
  ctx_ = CausalContext();
  for (const KeyedEntry& ke : keep) {
    map_.merge(ke.key, ke.entry);
    ctx_.add(ke.entry.dot);
  }
}

void Replica::load_entry(std::string_view key, const Entry& e) {
  map_.merge(key, e);
  clock_.restore(e.hlc);
}

void Replica::load_vv(const VersionVector& vv) {
  for (const auto& [o, s] : vv.items()) ctx_.add_range(o, 0, s);
}

}  // namespace meshkv::crdt
