// Counters on the engine: increments, resets and reads, each made of the
// register writes crdt/counter.h describes. Nothing here touches
// replication or anti-entropy: the parts and resets are entries like any
// other, and travel as such.
#include <algorithm>

#include "node/engine.h"
#include "node/engine_impl.h"

namespace meshkv::node {

Result<crdt::KeyedEntry> Engine::Impl::write_reset(std::string_view key, Now n) {
  return write(crdt::counter_reset_key(key), crdt::encode_baseline(crdt::counter_totals(replica.map(), key)), n);
}

Status Engine::Impl::reset_counter(std::string_view key, Now n) {
  if (!crdt::read_counter(replica.map(), key).live) return Status::Ok();
  auto r = write_reset(key, n);
  return r.ok() ? Status::Ok() : r.status();
}

Result<crdt::CounterView> Engine::incr(std::string_view key, int64_t delta, Now now) {
  Impl& s = *impl_;
  if (Status st = crdt::check_counter_key(key); !st.ok()) return st;
  const KeyTypes t = read_key(s.replica, key, now.wall_ms);
  if (t.value != nullptr) {
    return Status::Invalid("key '" + std::string(key) +
                           "' holds a value, not a counter (one key, one type: del it first, or set replaces it)");
  }
  if (t.set) {
    return Status::Invalid("key '" + std::string(key) +
                           "' is a set, not a counter (one key, one type: del it first, or set replaces it)");
  }
  // This node's running totals, the only part it writes: a new write of them
  // supersedes its older ones everywhere, so nothing is ever counted twice.
  auto value = crdt::counter_step(s.replica.map(), key, s.replica.self(), delta);
  if (!value.ok()) return value.status();
  auto w = s.write(crdt::counter_part_key(key, s.replica.self()), *value, now);
  s.finish();
  if (!w.ok()) return w.status();
  return crdt::read_counter(s.replica.map(), key);
}

std::vector<std::pair<std::string, crdt::Entry>> live_values(const crdt::Replica& replica, std::string_view prefix,
                                                             uint64_t wall_ms) {
  std::vector<std::pair<std::string, crdt::Entry>> out;
  const crdt::Hlc at = replica.reading(wall_ms);
  bool any_counter = false;
  replica.map().for_each([&](std::string_view k, const crdt::EntryView& e) {
    if (crdt::internal_key(k)) {
      any_counter = true;
      return;
    }
    if (!crdt::dead(e, at) && k.compare(0, prefix.size(), prefix) == 0) out.emplace_back(k, e);
  });
  // A value shadowed by a newer counter or set of its key reads as that.
  if (any_counter) {
    const auto cs = crdt::read_counters(replica.map(), prefix);
    const auto ss = crdt::any_sets(replica.map()) ? crdt::read_sets(replica.map(), prefix)
                                                  : std::map<std::string, crdt::SetView, std::less<>>{};
    std::erase_if(out, [&](const auto& kv) {
      auto c = cs.find(kv.first);
      auto st = ss.find(kv.first);
      return (c != cs.end() && c->second.live && crdt::wins(*c->second.newest, kv.second)) ||
             (st != ss.end() && st->second.live() && crdt::wins(*st->second.newest, kv.second));
    });
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::map<std::string, crdt::CounterView, std::less<>> live_counters(const crdt::Replica& replica,
                                                                   std::string_view prefix, uint64_t wall_ms) {
  auto cs = crdt::read_counters(replica.map(), prefix);
  std::erase_if(cs, [&](const auto& kv) {
    if (!kv.second.live) return true;
    crdt::EntryPtr r = replica.live(kv.first, wall_ms);
    if (r != nullptr && !crdt::wins(*kv.second.newest, *r)) return true;
    // A newer set of the key (reading the set only when it has one).
    if (!crdt::any_sets(replica.map())) return false;
    return !read_key(replica, kv.first, wall_ms).counter.has_value();
  });
  return cs;
}

std::optional<crdt::CounterView> Engine::counter(std::string_view key, uint64_t wall_ms) const {
  if (crdt::internal_key(key)) return std::nullopt;
  if (!crdt::read_counter(impl_->replica.map(), key).live) return std::nullopt;
  // A value (or set) and a counter of one key both live: they raced (a set
  // did not see an increment). The newer write decides what the key reads as.
  return read_key(impl_->replica, key, wall_ms).counter;
}

std::map<std::string, crdt::CounterView, std::less<>> Engine::counters(std::string_view prefix,
                                                                      uint64_t wall_ms) const {
  return live_counters(impl_->replica, prefix, wall_ms);
}

}  // namespace meshkv::node
