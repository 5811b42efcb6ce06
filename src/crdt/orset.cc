#include "crdt/orset.h"

#include <sodium.h>

#include <algorithm>

#include "crdt/replica.h"

namespace meshkv::crdt {

namespace {

constexpr char kAddTag = 'a';
constexpr char kRemoveTag = 'r';
constexpr size_t kRemoveHeader = 4;

void put64(std::string& out, uint64_t x) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}
uint64_t get64(std::string_view v, size_t at) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8; ++i) x |= uint64_t{static_cast<uint8_t>(v[at + i])} << (8 * i);
  return x;
}

std::string member_hash(std::string_view m) {
  std::string h(kMemberHashBytes, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(h.data()), h.size(),
                     reinterpret_cast<const unsigned char*>(m.data()), m.size(), nullptr, 0);
  return h;
}

std::string entry_key(std::string_view key, std::string_view m, char tag, Origin o) {
  std::string k = set_prefix(key);
  k.reserve(kSetKeyOverhead + key.size());
  k += member_hash(m);
  k.push_back(tag);
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((o >> (8 * i)) & 0xff));
  return k;
}

// Folds one entry into the members it names.
void fold(std::map<std::string, MemberView, std::less<>>& members, const SetKey& sk, const EntryView& e, Origin self) {
  if (e.tombstone) return;  // never written; from a bad peer it counts as absent
  if (sk.remove) {
    auto r = decode_remove(e.value);
    if (!r) return;
    MemberView& v = members[std::string(r->member)];
    for (const auto& [o, n] : r->seen) v.removed[o] = std::max(v.removed[o], n);
    if (sk.origin == self) v.own_remove = std::move(r->seen);
    return;
  }
  auto a = decode_add(e.value);
  if (!a || a->count == 0) return;
  MemberView& v = members[std::string(a->member)];
  v.adds[sk.origin] = a->count;
}

// Decides presence once a member's entries are folded; `entries` finds the
// add entries again for the newest surviving one.
void judge(MemberView& v, const std::vector<std::pair<Origin, EntryPtr>>& adds) {
  v.present = false;
  v.newest = nullptr;
  for (const auto& [o, e] : adds) {
    auto a = v.adds.find(o);
    if (a == v.adds.end()) continue;
    auto r = v.removed.find(o);
    if (r != v.removed.end() && a->second <= r->second) continue;
    v.present = true;
    if (v.newest == nullptr || wins(*e, *v.newest)) v.newest = e;
  }
}

// Reads every set entry from `from` on while `in` accepts its set key.
template <class In>
std::map<std::string, SetView, std::less<>> scan(const LwwMap& m, std::string_view from, In&& in, Origin self) {
  std::map<std::string, SetView, std::less<>> out;
  // Per set, per member: its add entries, to find the newest surviving one.
  std::map<std::string, std::map<std::string, std::vector<std::pair<Origin, EntryPtr>>, std::less<>>,
           std::less<>>
      adds;
  m.scan_ordered(from, [&](std::string_view k, const EntryView& e) {
    auto sk = parse_set_key(k);
    if (!sk) return set_key(k);  // a malformed key inside the range: skipped
    const int verdict = in(sk->set);
    if (verdict < 0) return false;
    if (verdict == 0) return true;
    SetView& s = out[std::string(sk->set)];
    fold(s.members, *sk, e, self);
    if (!sk->remove && !e.tombstone) {
      if (auto a = decode_add(e.value)) adds[std::string(sk->set)][std::string(a->member)].emplace_back(sk->origin, EntryPtr(e));
    }
    return true;
  });
  for (auto& [key, s] : out) {
    auto& per = adds[key];
    for (auto& [member, v] : s.members) {
      v.member = member;
      judge(v, per[member]);
      if (!v.present) continue;
      ++s.present;
      if (s.newest == nullptr || wins(*v.newest, *s.newest)) s.newest = v.newest;
    }
  }
  return out;
}

}  // namespace

Status check_set_key(std::string_view key) {
  if (Status s = check_user_key(key); !s.ok()) return s;
  if (key.size() > kMaxSetKeyBytes) {
    return Status::TooLarge("a set's key is " + std::to_string(key.size()) + " bytes; the limit is " +
                            std::to_string(kMaxSetKeyBytes));
  }
  return Status::Ok();
}

Status check_member(std::string_view m) {
  if (m.empty()) return Status::Invalid("empty member");
  // A remove carries the member and a count per origin: leave it room.
  constexpr size_t kMax = kMaxValueBytes - 64 * 1024;
  if (m.size() > kMax) {
    return Status::TooLarge("a member is " + std::to_string(m.size()) + " bytes; the limit is " +
                            std::to_string(kMax));
  }
  return Status::Ok();
}

std::string set_prefix(std::string_view key) {
  std::string k(kOrderedPrefix);
  k.push_back(static_cast<char>((key.size() >> 8) & 0xff));
  k.push_back(static_cast<char>(key.size() & 0xff));
  k.append(key);
  return k;
}

std::string set_add_key(std::string_view key, std::string_view m, Origin o) {
  return entry_key(key, m, kAddTag, o);
}
std::string set_remove_key(std::string_view key, std::string_view m, Origin r) {
  return entry_key(key, m, kRemoveTag, r);
}

std::optional<SetKey> parse_set_key(std::string_view k) {
  if (!set_key(k) || k.size() < kSetKeyOverhead) return std::nullopt;
  const size_t len = (size_t{static_cast<uint8_t>(k[2])} << 8) | static_cast<uint8_t>(k[3]);
  if (k.size() != kSetKeyOverhead + len) return std::nullopt;
  SetKey sk;
  sk.set = k.substr(4, len);
  sk.hash = k.substr(4 + len, kMemberHashBytes);
  const char tag = k[4 + len + kMemberHashBytes];
  if (tag != kAddTag && tag != kRemoveTag) return std::nullopt;
  sk.remove = tag == kRemoveTag;
  for (size_t i = 4 + len + kMemberHashBytes + 1; i < k.size(); ++i) {
    sk.origin = (sk.origin << 8) | static_cast<uint8_t>(k[i]);
  }
  return sk;
}

std::string encode_add(uint64_t count, std::string_view m) {
  std::string v;
  v.reserve(8 + m.size());
  put64(v, count);
  v.append(m);
  return v;
}

std::optional<Add> decode_add(std::string_view v) {
  if (v.size() <= 8) return std::nullopt;
  return Add{get64(v, 0), v.substr(8)};
}

std::string encode_remove(std::string_view m, const Seen& seen) {
  std::string v;
  v.reserve(kRemoveHeader + m.size() + 16 * seen.size());
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<char>((m.size() >> (8 * i)) & 0xff));
  v.append(m);
  for (const auto& [o, n] : seen) {
    put64(v, o);
    put64(v, n);
  }
  return v;
}

std::optional<Remove> decode_remove(std::string_view v) {
  if (v.size() < kRemoveHeader) return std::nullopt;
  size_t len = 0;
  for (size_t i = 0; i < 4; ++i) len |= size_t{static_cast<uint8_t>(v[i])} << (8 * i);
  if (len == 0 || len > v.size() - kRemoveHeader || (v.size() - kRemoveHeader - len) % 16 != 0) return std::nullopt;
  Remove r{v.substr(kRemoveHeader, len), {}};
  for (size_t at = kRemoveHeader + len; at < v.size(); at += 16) r.seen[get64(v, at)] = get64(v, at + 8);
  return r;
}

std::vector<std::string> SetView::present_members() const {
  std::vector<std::string> out;
  out.reserve(present);
  for (const auto& [m, v] : members) {
    if (v.present) out.push_back(m);
  }
  return out;
}

SetView read_set(const LwwMap& m, std::string_view key, Origin self) {
  const std::string prefix = set_prefix(key);
  auto sets = scan(
      m, prefix,
      [&](std::string_view set) { return set == key ? 1 : -1; }, self);
  auto it = sets.find(key);
  return it == sets.end() ? SetView{} : std::move(it->second);
}

MemberView read_member(const LwwMap& m, std::string_view key, std::string_view member, Origin self) {
  // One member's entries are adjacent: those of its hash, in the set's range.
  const std::string prefix = set_prefix(key) + member_hash(member);
  std::map<std::string, MemberView, std::less<>> members;
  std::vector<std::pair<Origin, EntryPtr>> adds;
  m.scan_ordered(prefix, [&](std::string_view k, const EntryView& e) {
    if (!k.starts_with(prefix)) return false;
    auto sk = parse_set_key(k);
    if (!sk || sk->set != key) return true;
    fold(members, *sk, e, self);
    if (!sk->remove && !e.tombstone) {
      if (auto a = decode_add(e.value); a && a->member == member) adds.emplace_back(sk->origin, EntryPtr(e));
    }
    return true;
  });
  auto it = members.find(member);
  MemberView v = it == members.end() ? MemberView{} : std::move(it->second);
  v.member = std::string(member);
  judge(v, adds);
  return v;
}

std::map<std::string, SetView, std::less<>> read_sets(const LwwMap& m, std::string_view prefix) {
  // Set keys are ordered by length first, so every set entry is looked at;
  // only the map's ordered part, never the whole map.
  return scan(
      m, kOrderedPrefix,
      [&](std::string_view set) { return set.starts_with(prefix) ? 1 : 0; }, 0);
}

std::string add_step(const MemberView& v, Origin self) {
  auto a = v.adds.find(self);
  return encode_add(a == v.adds.end() ? 1 : a->second + 1, v.member);
}

std::string remove_step(const MemberView& v) {
  Seen seen = v.own_remove;
  for (const auto& [o, n] : v.adds) seen[o] = std::max(seen[o], n);
  return encode_remove(v.member, seen);
}

}  // namespace meshkv::crdt
