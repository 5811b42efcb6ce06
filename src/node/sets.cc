// Add-wins sets on the engine: adds, removes and reads, each made of the
// register writes crdt/orset.h describes. As for counters, nothing here
// touches replication or anti-entropy: a set's entries travel as any other.
#include <algorithm>

#include "node/engine.h"
#include "node/engine_impl.h"

namespace meshkv::node {

namespace {

// The newest write of whatever the key holds besides a set: its live
// value and counter (nullptr: neither).
crdt::EntryPtr newest_other(const KeyTypes& t) {
  crdt::EntryPtr e = t.value;
  if (t.counter && (e == nullptr || crdt::wins(*t.counter->newest, *e))) e = t.counter->newest;
  return e;
}

// Whether the set's entries of `key` exist at all: one step of a range scan.
bool has_set_entries(const crdt::LwwMap& m, std::string_view key) {
  if (!crdt::any_sets(m)) return false;
  const std::string prefix = crdt::set_prefix(key);
  bool found = false;
  m.scan_ordered(prefix, [&](std::string_view k, const crdt::EntryView&) {
    found = k.starts_with(prefix) && crdt::parse_set_key(k).has_value() && crdt::parse_set_key(k)->set == key;
    return false;
  });
  return found;
}

Status type_refusal(std::string_view key, const KeyTypes& t) {
  if (t.value != nullptr) {
    return Status::Invalid("key '" + std::string(key) +
                           "' holds a value, not a set (one key, one type: del it first, or set replaces it)");
  }
  return Status::Invalid("key '" + std::string(key) +
                         "' is a counter, not a set (one key, one type: del it first, or set replaces it)");
}

Status check_members(const std::vector<std::string>& members) {
  if (members.empty()) return Status::Invalid("no members given");
  for (const auto& m : members) {
    if (Status st = crdt::check_member(m); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace

KeyTypes read_key(const crdt::Replica& replica, std::string_view key, uint64_t wall_ms) {
  KeyTypes t;
  if (crdt::internal_key(key)) return t;
  t.value = replica.live(key, wall_ms);
  if (crdt::CounterView c = crdt::read_counter(replica.map(), key); c.live) t.counter = c;
  if (has_set_entries(replica.map(), key)) {
    if (crdt::SetView s = crdt::read_set(replica.map(), key); s.live()) t.set = std::move(s);
  }
  // A value, a counter and a set of one key all live: they raced (a write
  // of one type did not see the other). The newest write decides.
  crdt::EntryPtr other = newest_other(t);
  if (t.set && other != nullptr) {
    if (crdt::wins(*t.set->newest, *other)) {
      t.value = nullptr;
      t.counter.reset();
    } else {
      t.set.reset();
    }
  }
  if (t.value != nullptr && t.counter) {
    if (crdt::wins(*t.counter->newest, *t.value)) {
      t.value = nullptr;
    } else {
      t.counter.reset();
    }
  }
  return t;
}

std::map<std::string, crdt::SetView, std::less<>> live_sets(const crdt::Replica& replica, std::string_view prefix,
                                                           uint64_t wall_ms) {
  if (!crdt::any_sets(replica.map())) return {};
  auto ss = crdt::read_sets(replica.map(), prefix);
  std::erase_if(ss, [&](const auto& kv) {
    if (!kv.second.live()) return true;
    crdt::EntryPtr r = replica.live(kv.first, wall_ms);
    const crdt::CounterView c = crdt::read_counter(replica.map(), kv.first);
    return (r != nullptr && !crdt::wins(*kv.second.newest, *r)) ||
           (c.live && !crdt::wins(*kv.second.newest, *c.newest));
  });
  return ss;
}

Result<std::optional<crdt::KeyedEntry>> Engine::Impl::clear_set(std::string_view key, Now n) {
  std::optional<crdt::KeyedEntry> last;
  if (!has_set_entries(replica.map(), key)) return last;
  const crdt::SetView s = crdt::read_set(replica.map(), key, replica.self());
  for (const auto& [m, v] : s.members) {
    if (!v.present) continue;
    auto w = write(crdt::set_remove_key(key, m, replica.self()), crdt::remove_step(v), n);
    if (!w.ok()) return w.status();
    last = std::move(*w);
  }
  return last;
}

Result<size_t> Engine::sadd(std::string_view key, const std::vector<std::string>& members, Now now) {
  Impl& s = *impl_;
  if (Status st = crdt::check_set_key(key); !st.ok()) return st;
  if (Status st = check_members(members); !st.ok()) return st;
  // Only a live value or counter can refuse the add; the set itself is read
  // member by member, never whole (a set of 100,000 members stays cheap).
  KeyTypes t;
  t.value = s.replica.live(key, now.wall_ms);
  if (crdt::CounterView c = crdt::read_counter(s.replica.map(), key); c.live) t.counter = c;
  if (t.value != nullptr || t.counter) {
    t = read_key(s.replica, key, now.wall_ms);
    if (!t.set) return type_refusal(key, t);
  }
  s.now = now;
  if (Status st = s.write_refusal(); !st.ok()) return st;
  size_t added = 0;
  for (const auto& m : members) {
    const crdt::MemberView v = crdt::read_member(s.replica.map(), key, m, s.replica.self());
    auto w = s.write(crdt::set_add_key(key, m, s.replica.self()), crdt::add_step(v, s.replica.self()), now);
    if (!w.ok()) {
      s.finish();
      return w.status();
    }
    if (!v.present) ++added;
  }
  s.finish();
  return added;
}

Result<size_t> Engine::srem(std::string_view key, const std::vector<std::string>& members, Now now) {
  Impl& s = *impl_;
  if (Status st = crdt::check_set_key(key); !st.ok()) return st;
  if (Status st = check_members(members); !st.ok()) return st;
  if (const KeyTypes t = read_key(s.replica, key, now.wall_ms); t.value != nullptr || t.counter) {
    return type_refusal(key, t);
  }
  s.now = now;
  if (Status st = s.write_refusal(); !st.ok()) return st;
  size_t removed = 0;
  for (const auto& m : members) {
    const crdt::MemberView v = crdt::read_member(s.replica.map(), key, m, s.replica.self());
    if (!v.present) continue;  // nothing seen to remove
    auto w = s.write(crdt::set_remove_key(key, m, s.replica.self()), crdt::remove_step(v), now);
    if (!w.ok()) {
      s.finish();
      return w.status();
    }
    ++removed;
  }
  s.finish();
  return removed;
}

std::optional<crdt::SetView> Engine::orset(std::string_view key, uint64_t wall_ms) const {
  return read_key(impl_->replica, key, wall_ms).set;
}

bool Engine::sismember(std::string_view key, std::string_view member, uint64_t wall_ms) const {
  const crdt::Replica& r = impl_->replica;
  if (crdt::internal_key(key) || !crdt::read_member(r.map(), key, member).present) return false;
  // The member is there; the key must also read as a set rather than a
  // newer value or counter (reading the whole set only in that race).
  if (r.live(key, wall_ms) == nullptr && !crdt::read_counter(r.map(), key).live) return true;
  return read_key(r, key, wall_ms).set.has_value();
}

std::map<std::string, crdt::SetView, std::less<>> Engine::orsets(std::string_view prefix, uint64_t wall_ms) const {
  return live_sets(impl_->replica, prefix, wall_ms);
}

}  // namespace meshkv::node
