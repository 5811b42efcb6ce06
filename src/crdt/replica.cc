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

Status check_ttl(uint64_t ttl_ms) {
  if (ttl_ms > kMaxTtlMs) {
    return Status::Invalid("time to live " + std::to_string(ttl_ms) + " ms is over the limit of " +
                           std::to_string(kMaxTtlMs) + " ms (ten years)");
  }
  return Status::Ok();
}

Status validate_entry(std::string_view key, const Entry& e) {
  if (Status s = check_key(key); !s.ok()) return s;
  if (Status s = check_value(e.value); !s.ok()) return s;
  if (e.dot.origin == 0 || e.dot.seq == 0) return Status::Corruption("entry without a dot");
  if (e.tombstone && !e.value.empty()) return Status::Corruption("tombstone with a value");
  if (Status s = check_ttl(e.ttl_ms); !s.ok()) return s;
  if (e.tombstone && e.ttl_ms != 0) return Status::Corruption("tombstone with a time to live");
  return Status::Ok();
}

Replica::Replica(Origin self, uint64_t max_skew_ms) : self_(self), clock_(max_skew_ms) {}

Result<KeyedEntry> Replica::write(std::string_view key, std::optional<std::string_view> value,
                                  uint64_t phys_ms, uint64_t ttl_ms) {
  if (Status s = check_key(key); !s.ok()) return s;
  if (value) {
    if (Status s = check_value(*value); !s.ok()) return s;
  }
  if (Status s = check_ttl(ttl_ms); !s.ok()) return s;
  if (!value && ttl_ms != 0) return Status::Invalid("a delete has no time to live");
  KeyedEntry ke{std::string(key), Entry{}};
  ke.entry.hlc = clock_.now(phys_ms);
  // A write supersedes the entry it replaces on this replica, even one whose
  // clock ran further ahead than the clock adopts (HlcClock::observe refuses
  // it): a writer that has seen a value must win over it, or an acknowledged
  // set or delete would be invisible where it was made.
  EntryPtr cur = map_.find(ke.key);
  if (cur != nullptr && !(ke.entry.hlc > cur->hlc)) {
    ke.entry.hlc = Hlc{cur->hlc.raw + 1};
  }
  // The same for a key that is absent: above every collected delete (a clock
  // stepped back, or restarted behind the others, must not write a value
  // that a delete the others dropped would have beaten).
  if (cur == nullptr && !(ke.entry.hlc > horizon_)) ke.entry.hlc = Hlc{horizon_.raw + 1};
  // The bump moves the clock too, as receiving the replaced entry would
  // have: every write of this origin is above every earlier one (per-origin
  // order, which readers of a node's writes rely on; chaos check (c)). The
  // other way, a bumped write of one key followed by a write of another key
  // would go back in time. The price: an entry far in the future drags this
  // node's later writes along. The clock-offset guard (node/engine.cc) bounds
  // it: a node whose wall clock is off refuses writes once its peers have
  // measured it, so far-ahead entries come only from the first seconds of a
  // bad clock, and each jump past max_skew is counted (forced_ahead()) and
  // logged by the engine.
  if (ke.entry.hlc > clock_.last()) {
    if (ke.entry.hlc.physical() > phys_ms + clock_.max_skew_ms()) ++forced_ahead_;
    clock_.restore(ke.entry.hlc);
  }
  if (!shadow_.empty()) {
    if (auto s = shadow_.find(ke.key); s != shadow_.end()) shadow_.erase(s);
  }
  ke.entry.dot = Dot{self_, next_seq_++};
  ke.entry.tombstone = !value.has_value();
  if (value) ke.entry.value.assign(value->data(), value->size());
  ke.entry.ttl_ms = ttl_ms;
  map_.merge(ke.key, ke.entry);
  ctx_.add(ke.entry.dot);
  order_quarantined(ke.key);
  return ke;
}

Replica::Applied Replica::apply(std::string_view key, const Entry& e, uint64_t phys_ms, bool judge) {
  clock_.observe(e.hlc, phys_ms);
  // A vouched mark says the write was ordered against its key's live value
  // when some node judged it; it says nothing of deletes collected since. A
  // sender that must reconcile may hold such a write long after a newer
  // delete of its key was collected without it, so its marks are not taken:
  // its entries are judged whatever they carry.
  const bool judged = judge || (e.unordered && !e.vouched);
  if (!shadow_.empty()) {
    if (auto s = shadow_.find(key); s != shadow_.end()) {
      if (e.hlc < s->second) {
        // Beaten by the delete this node dropped when it started over: never
        // shown, and out of quarantine if it waited there.
        if (std::optional<Entry> q = take_quarantined_copy(key, e.dot)) {
          released_.push_back({KeyedEntry{std::string(key), std::move(*q)}, false, false});
        }
        ctx_.add(e.dot);
        return Applied::kLost;
      }
      shadow_.erase(s);  // the delete came back, or something newer did
    }
  }
  EntryView v = e;  // the marks change; the value is not copied
  v.unordered = false;
  // A copy of an entry quarantined here, from a node that holds it as a
  // winner without having to judge it, or that judged and could order it:
  // its verdict stands (see above).
  if (!judged && !quarantine_.empty()) {
    if (std::optional<Entry> mine = take_quarantined_copy(key, e.dot)) {
      ctx_.add(e.dot);
      if (judge || e.unordered || e.vouched) v.vouched = true;
      const bool won = map_.merge(key, v) != LwwMap::MergeResult::kStale;
      released_.push_back({KeyedEntry{std::string(key), v.to_entry()}, won, true});
      if (won) order_quarantined(key);
      return won ? Applied::kWon : Applied::kLost;
    }
  }
  if (ctx_.covers(e.dot)) return Applied::kSkipped;
  if (judged && !(e.hlc > horizon_)) {
    EntryPtr cur = map_.find(key);
    if (cur == nullptr) {
      // Its dot is not recorded: a node that holds it as a winner sends it
      // again, and that copy releases it.
      quarantine_entry(key, v.to_entry(), /*report=*/true);
      return Applied::kQuarantined;
    }
    if (!wins(v, *cur)) {
      ctx_.add(e.dot);
      return Applied::kLost;
    }
  }
  ctx_.add(e.dot);
  // Judged and merged: ordered against a live entry above the horizon, or
  // above the horizon itself. The verdict travels with it.
  if (judge || e.unordered) v.vouched = true;
  if (map_.merge(key, v) == LwwMap::MergeResult::kStale) return Applied::kLost;
  order_quarantined(key);
  return Applied::kWon;
}

std::optional<Entry> Replica::take_quarantined_copy(std::string_view key, Dot dot) {
  auto q = quarantine_.find(key);
  if (q == quarantine_.end()) return std::nullopt;
  auto it = std::find_if(q->second.begin(), q->second.end(), [&](const Entry& x) { return x.dot == dot; });
  if (it == q->second.end()) return std::nullopt;
  Entry out = std::move(*it);
  q->second.erase(it);
  --quarantined_;
  quarantined_bytes_ -= key.size() + out.value.size();
  if (q->second.empty()) quarantine_.erase(q);
  return out;
}

bool Replica::raise_horizon(Hlc h) {
  if (!(h > horizon_)) return false;
  horizon_ = h;
  clock_.restore(h);  // local writes stay above it
  return true;
}

bool Replica::quarantine_entry(std::string_view key, const Entry& e, bool report) {
  auto q = quarantine_.find(key);
  if (q == quarantine_.end()) q = quarantine_.emplace(std::string(key), std::vector<Entry>{}).first;
  for (const Entry& x : q->second) {
    if (x.dot == e.dot) return false;
  }
  const size_t bytes = key.size() + e.value.size();
  if (quarantined_ >= kMaxQuarantined || quarantined_bytes_ + bytes > kMaxQuarantinedBytes) {
    ++quarantine_overflow_;
    if (q->second.empty()) quarantine_.erase(q);
    return false;
  }
  Entry v = e;
  v.unordered = false;
  v.vouched = false;
  auto pos = std::find_if(q->second.begin(), q->second.end(), [&](const Entry& x) { return wins(x, v); });
  if (report) quarantined_new_.push_back(KeyedEntry{std::string(key), v});
  q->second.insert(pos, std::move(v));
  ++quarantined_;
  quarantined_bytes_ += bytes;
  return true;
}

std::vector<Entry> Replica::unquarantine(std::string_view key, Dot dot) {
  std::vector<Entry> out;
  auto q = quarantine_.find(key);
  if (q == quarantine_.end()) return out;
  std::erase_if(q->second, [&](Entry& x) {
    if (dot.seq != 0 && x.dot != dot) return false;
    out.push_back(std::move(x));
    return true;
  });
  quarantined_ -= out.size();
  for (const Entry& x : out) quarantined_bytes_ -= key.size() + x.value.size();
  if (q->second.empty()) quarantine_.erase(q);
  return out;
}

void Replica::order_quarantined(std::string_view key) {
  if (quarantine_.empty()) return;
  auto q = quarantine_.find(key);
  if (q == quarantine_.end()) return;
  std::vector<Entry> waiting = std::move(q->second);
  quarantine_.erase(q);
  quarantined_ -= waiting.size();
  for (const Entry& x : waiting) quarantined_bytes_ -= key.size() + x.value.size();
  for (Entry& x : waiting) {
    // Ordered now, won or lost: its dot is handled. Recording it also brings
    // back the row of an origin retired below it (crdt/version_vector.h), so
    // that peers that retired it take the write instead of refusing it.
    ctx_.add(x.dot);
    EntryPtr cur = map_.find(key);
    if (cur != nullptr && cur->dot == x.dot) {
      released_.push_back({KeyedEntry{std::string(key), std::move(x)}, true, true});
      continue;
    }
    x.vouched = true;
    const bool won = cur == nullptr || wins(x, *cur);
    if (won) map_.merge(key, x);
    released_.push_back({KeyedEntry{std::string(key), std::move(x)}, won, false});
  }
}

Status Replica::apply_chunk(const Chunk& c, uint64_t phys_ms, std::vector<const KeyedEntry*>* changed,
                            bool judge, Hlc judge_to) {
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
    const bool judged = judge || (judge_to.raw != 0 && !(judge_to < ke.entry.hlc));
    if (apply(ke.key, ke.entry, phys_ms, judged) == Applied::kWon && changed) changed->push_back(&ke);
  }
  // A judged sender's claim is not taken: a write it leaves out may be one
  // it should not have (its dot stays open, for a node that has it to send).
  if (!judge) ctx_.add_range(c.origin, c.from, c.to);
  return Status::Ok();
}

std::vector<Chunk> Replica::delta(const VersionVector& peer, size_t max_chunk_bytes, Origin lo,
                                  Origin hi, size_t max_chunks, bool retired) const {
  // Origins with winners, and origins our vector knows (their seqs may all be
  // superseded, yet the peer's vector must still be able to catch up).
  // Retired ones stand for their final seq, and come last, if asked for: a
  // peer that already retired them too (which the caller cannot always tell)
  // must not crowd the live origins out of a bounded answer.
  std::vector<Origin> origins, old;
  {
    std::set<Origin> all;
    for (Origin o : map_.origins()) all.insert(o);
    for (const auto& [o, s] : ctx_.vv().items()) all.insert(o);
    for (const auto& [o, f] : ctx_.retired()) all.insert(o);
    for (auto it = all.lower_bound(lo); it != all.end() && *it <= hi; ++it) {
      (ctx_.retired_at(*it) != 0 ? old : origins).push_back(*it);
    }
  }
  if (retired) origins.insert(origins.end(), old.begin(), old.end());

  // A dot this replica covers while its entry is in quarantine (a writer's
  // own write put aside when it reconciled, node/gc.cc) is not claimed bare:
  // its fate is open, and a claim would tell a peer it had it, or what beat
  // it. A peer holding an older value of the key would keep that value, and
  // the write's holders would then collect its delete on that peer's word.
  // So the entry travels inside the claim, marked unordered: the peer judges
  // it (crdt/replica.h) against what it holds, as the majority does.
  std::map<Origin, std::vector<KeyedEntry>> held;
  for (const auto& [key, entries] : quarantine_) {
    for (const Entry& e : entries) {
      if (ctx_.covers(e.dot)) held[e.dot.origin].push_back(KeyedEntry{key, e});
    }
  }
  for (auto& [o, list] : held) {
    std::sort(list.begin(), list.end(),
              [](const KeyedEntry& a, const KeyedEntry& b) { return a.entry.dot.seq < b.entry.dot.seq; });
    for (KeyedEntry& ke : list) {
      ke.entry.unordered = true;
      ke.entry.vouched = false;
    }
  }
  static const std::vector<KeyedEntry> kNone;

  std::vector<Chunk> out;
  for (const Origin o : origins) {
    const uint64_t f = ctx_.retired_at(o);
    const uint64_t mine = f != 0 ? f : ctx_.vv().get(o);
    const uint64_t theirs = peer.get(o);
    if (f != 0 && theirs >= f) continue;
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
    auto h = held.find(o);
    const std::vector<KeyedEntry>& aside = h == held.end() ? kNone : h->second;
    size_t next_aside = 0;
    while (next_aside < aside.size() && aside[next_aside].entry.dot.seq <= theirs) ++next_aside;
    // The held entries up to `upto` each in a chunk of its own dot, the
    // claim before it closed just below.
    auto emit_aside = [&](uint64_t upto) {
      for (; next_aside < aside.size() && aside[next_aside].entry.dot.seq <= upto; ++next_aside) {
        const KeyedEntry& ke = aside[next_aside];
        if (ke.entry.dot.seq - 1 > cur.from || !cur.entries.empty()) flush(ke.entry.dot.seq - 1);
        cur.entries.push_back(ke);
        flush(ke.entry.dot.seq);
      }
    };
    bool full = false;
    map_.scan_origin(o, theirs, [&](std::string_view key, const EntryView& e) {
      if (out.size() >= max_chunks) {
        full = true;  // the entries gathered since the last chunk wait for the next round
        return false;
      }
      if (ranged && e.dot.seq > mine) {
        emit_aside(mine);
        if (mine > cur.from || !cur.entries.empty()) flush(mine);  // close the ranged part at exactly our vector
        ranged = false;
        cur = Chunk{o, loose_from, loose_from, {}};
      }
      if (!ranged && e.dot.seq <= loose_from) return true;  // peer covers it
      if (ranged) emit_aside(e.dot.seq - 1);
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
      cur.entries.push_back(KeyedEntry{std::string(key), e.to_entry()});
      bytes += sz;
      return true;
    });
    if (full || out.size() >= max_chunks) break;
    if (ranged) {
      emit_aside(mine);
      if (mine > cur.from || !cur.entries.empty()) flush(mine);
    } else if (!cur.entries.empty()) {
      out.push_back(std::move(cur));
    }
  }
  if (out.size() > max_chunks) out.resize(max_chunks);
  return out;
}

bool Replica::collect(std::string_view key, Dot d) {
  EntryPtr e = map_.find(key);
  // An expired write is collected as a tombstone is (the caller checked that
  // it expired): its own HLC is what later writes of the key were above.
  if (!e || !(e->tombstone || e->ttl_ms != 0) || e->dot != d) return false;
  raise_horizon(e->hlc);
  return map_.erase(key);
}

bool Replica::retract(std::string_view key, Dot d, const std::optional<Entry>& prev) {
  EntryPtr e = map_.find(key);
  if (!e || e->dot != d) return false;  // superseded meanwhile: nothing of it shows
  map_.erase(key);
  if (prev) map_.merge(key, *prev);
  return true;
}

void Replica::shadow_delete(std::string_view key, Hlc hlc) {
  if (shadow_.size() >= kMaxShadowDeletes) return;
  auto [it, fresh] = shadow_.try_emplace(std::string(key), hlc);
  if (!fresh && it->second < hlc) it->second = hlc;
}

void Replica::reset_to(std::vector<KeyedEntry> keep) {
  map_ = LwwMap();
  ctx_ = CausalContext();
  shadow_.clear();
  for (const KeyedEntry& ke : keep) {
    map_.merge(ke.key, ke.entry);
    ctx_.add(ke.entry.dot);
  }
}

void Replica::load_entry(std::string_view key, const EntryView& e) {
  EntryView v = e;
  v.unordered = false;
  map_.merge(key, v);
  clock_.restore(e.hlc);
}

void Replica::load_entry(std::string&& key, Entry&& e) {
  e.unordered = false;
  clock_.restore(e.hlc);
  map_.merge(std::move(key), std::move(e));
}

void Replica::load_vv(const VersionVector& vv) {
  for (const auto& [o, s] : vv.items()) ctx_.add_range(o, 0, s);
}

}  // namespace meshkv::crdt
