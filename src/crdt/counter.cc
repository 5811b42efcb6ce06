#include "crdt/counter.h"

#include <limits>
#include <vector>

#include "crdt/replica.h"

namespace meshkv::crdt {

namespace {

constexpr char kPartTag = 'c';
constexpr char kResetTag = 'r';

void put64(std::string& out, uint64_t x) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}
uint64_t get64(std::string_view v, size_t at) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8; ++i) x |= uint64_t{static_cast<uint8_t>(v[at + i])} << (8 * i);
  return x;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// One counter's entries as found in the map.
struct Found {
  std::vector<std::pair<Origin, EntryPtr>> parts;
  EntryPtr reset = nullptr;
};

CounterView evaluate(const Found& f) {
  CounterView v;
  v.reset = f.reset;
  v.origins = f.parts.size();
  Baseline base;
  if (f.reset != nullptr && !f.reset->tombstone) base = decode_baseline(f.reset->value).value_or(Baseline{});
  uint64_t sum = 0;  // modulo 2^64, read as signed at the end
  for (const auto& [o, e] : f.parts) {
    if (e->tombstone) continue;
    const Totals t = decode_totals(e->value).value_or(Totals{});
    auto b = base.find(o);
    const Totals d = beyond(t, b == base.end() ? Totals{} : b->second);
    if (d.p == 0 && d.n == 0) continue;
    sum += d.p - d.n;
    v.live = true;
    if (v.newest == nullptr || wins(*e, *v.newest)) v.newest = e;
  }
  v.value = static_cast<int64_t>(sum);
  return v;
}

}  // namespace

Status check_user_key(std::string_view key) {
  if (Status s = check_key(key); !s.ok()) return s;
  if (internal_key(key)) return Status::Invalid("keys beginning with a 0 byte are reserved (counters and sets)");
  return Status::Ok();
}

Status check_counter_key(std::string_view key) {
  if (Status s = check_user_key(key); !s.ok()) return s;
  if (key.size() > kMaxCounterKeyBytes) {
    return Status::TooLarge("a counter's key is " + std::to_string(key.size()) + " bytes; the limit is " +
                            std::to_string(kMaxCounterKeyBytes));
  }
  return Status::Ok();
}

std::string counter_part_key(std::string_view key, Origin o) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string k;
  k.reserve(kCounterKeyOverhead + key.size());
  k.push_back(kInternalMark);
  k.push_back(kPartTag);
  for (int i = 15; i >= 0; --i) k.push_back(kHex[(o >> (4 * i)) & 0xf]);
  k.append(key);
  return k;
}

std::string counter_reset_key(std::string_view key) {
  std::string k;
  k.reserve(2 + key.size());
  k.push_back(kInternalMark);
  k.push_back(kResetTag);
  k.append(key);
  return k;
}

std::optional<InternalKey> parse_internal_key(std::string_view k) {
  if (k.size() < 3 || k[0] != kInternalMark) return std::nullopt;
  if (k[1] == kResetTag) return InternalKey{InternalKey::Kind::kReset, k.substr(2), 0};
  if (k[1] != kPartTag || k.size() < kCounterKeyOverhead + 1) return std::nullopt;
  Origin o = 0;
  for (size_t i = 2; i < kCounterKeyOverhead; ++i) {
    const int d = hex_digit(k[i]);
    if (d < 0) return std::nullopt;
    o = (o << 4) | static_cast<Origin>(d);
  }
  return InternalKey{InternalKey::Kind::kPart, k.substr(kCounterKeyOverhead), o};
}

std::string encode_totals(Totals t) {
  std::string v;
  v.reserve(16);
  put64(v, t.p);
  put64(v, t.n);
  return v;
}

std::optional<Totals> decode_totals(std::string_view v) {
  if (v.size() != 16) return std::nullopt;
  return Totals{get64(v, 0), get64(v, 8)};
}

std::string encode_baseline(const Baseline& b) {
  std::string v;
  v.reserve(24 * b.size());
  for (const auto& [o, t] : b) {
    put64(v, o);
    put64(v, t.p);
    put64(v, t.n);
  }
  return v;
}

std::optional<Baseline> decode_baseline(std::string_view v) {
  if (v.size() % 24 != 0) return std::nullopt;
  Baseline b;
  for (size_t at = 0; at < v.size(); at += 24) b[get64(v, at)] = Totals{get64(v, at + 8), get64(v, at + 16)};
  return b;
}

CounterView read_counter(const LwwMap& m, std::string_view key) {
  Found f;
  // Every set and del asks: without a counter in the map, the answer is
  // known without building and looking up a part key per origin.
  if (m.other_internal() == 0) return evaluate(f);
  for (Origin o : m.origins()) {
    const std::string pk = counter_part_key(key, o);
    if (EntryPtr e = m.find(pk)) f.parts.emplace_back(o, e);
  }
  f.reset = m.find(counter_reset_key(key));
  return evaluate(f);
}

std::map<std::string, CounterView, std::less<>> read_counters(const LwwMap& m, std::string_view prefix) {
  std::map<std::string, Found, std::less<>> found;
  m.for_each([&](std::string_view k, const EntryView& e) {
    if (!internal_key(k)) return;
    auto ik = parse_internal_key(k);
    if (!ik || !ik->counter.starts_with(prefix)) return;
    Found& f = found[std::string(ik->counter)];
    if (ik->kind == InternalKey::Kind::kReset) {
      f.reset = EntryPtr(e);
    } else {
      f.parts.emplace_back(ik->origin, EntryPtr(e));
    }
  });
  std::map<std::string, CounterView, std::less<>> out;
  for (const auto& [k, f] : found) out.emplace(k, evaluate(f));
  return out;
}

Baseline counter_totals(const LwwMap& m, std::string_view key) {
  Baseline b;
  if (m.other_internal() == 0) return b;
  for (Origin o : m.origins()) {
    EntryPtr e = m.find(counter_part_key(key, o));
    if (e == nullptr || e->tombstone) continue;
    if (auto t = decode_totals(e->value)) b[o] = *t;
  }
  return b;
}

Result<std::string> counter_step(const LwwMap& m, std::string_view key, Origin self, int64_t delta) {
  if (delta == 0) return Status::Invalid("an increment of 0 changes nothing");
  Totals t;
  if (EntryPtr e = m.find(counter_part_key(key, self)); e != nullptr && !e->tombstone) {
    t = decode_totals(e->value).value_or(Totals{});
  }
  // The magnitude, computed unsigned so that INT64_MIN has one.
  const uint64_t by = delta > 0 ? static_cast<uint64_t>(delta) : uint64_t{0} - static_cast<uint64_t>(delta);
  uint64_t& total = delta > 0 ? t.p : t.n;
  if (total > std::numeric_limits<uint64_t>::max() - by) {
    return Status::Invalid(std::string("this node's ") + (delta > 0 ? "increments" : "decrements") + " of '" +
                           std::string(key) + "' would pass 2^64");
  }
  total += by;
  return encode_totals(t);
}

}  // namespace meshkv::crdt
