#include "crdt/version_vector.h"

#include <algorithm>

#include "crdt/digest.h"

namespace meshkv::crdt {

namespace {
template <class V>
auto find_origin(V& items, Origin o) {
  return std::lower_bound(items.begin(), items.end(), o,
                          [](const auto& it, Origin x) { return it.first < x; });
}
}  // namespace

VersionVector::Item* VersionVector::find(Origin o) {
  auto it = find_origin(items_, o);
  return (it != items_.end() && it->first == o) ? &*it : nullptr;
}

uint64_t VersionVector::get(Origin o) const {
  auto it = find_origin(items_, o);
  return (it != items_.end() && it->first == o) ? it->second : 0;
}

void VersionVector::raise(Origin o, uint64_t seq) {
  if (seq == 0) return;
  auto it = find_origin(items_, o);
  if (it != items_.end() && it->first == o) {
    it->second = std::max(it->second, seq);
  } else {
    items_.insert(it, {o, seq});
  }
}

void VersionVector::erase(Origin o) {
  auto it = find_origin(items_, o);
  if (it != items_.end() && it->first == o) items_.erase(it);
}

void VersionVector::join(const VersionVector& other) {
  for (const auto& [o, s] : other.items_) raise(o, s);
}

void VersionVector::meet(const VersionVector& other) {
  std::vector<Item> out;
  out.reserve(std::min(items_.size(), other.items_.size()));
  for (const auto& [o, s] : items_) {
    const uint64_t theirs = other.get(o);
    if (theirs > 0) out.emplace_back(o, std::min(s, theirs));
  }
  items_ = std::move(out);
}

void VersionVector::replace_range(Origin lo, Origin hi, const VersionVector& part) {
  std::vector<Item> out;
  out.reserve(items_.size() + part.items_.size());
  auto it = items_.begin();
  for (; it != items_.end() && it->first < lo; ++it) out.push_back(*it);
  for (const auto& item : part.items_) {
    if (item.first >= lo && item.first <= hi) out.push_back(item);
  }
  while (it != items_.end() && it->first <= hi) ++it;
  for (; it != items_.end(); ++it) out.push_back(*it);
  items_ = std::move(out);
}

bool CausalContext::covers(Dot d) const {
  if (vv_.covers(d)) return true;
  if (!retired_.empty() && d.seq != 0 && d.seq <= retired_at(d.origin)) return true;
  auto it = find_origin(cloud_, d.origin);
  if (it == cloud_.end() || it->first != d.origin) return false;
  return std::binary_search(it->second.begin(), it->second.end(), d.seq);
}

void CausalContext::add(Dot d) {
  if (d.seq == 0) return;
  if (!retired_.empty()) {
    const uint64_t f = retired_at(d.origin);
    if (f != 0) {
      if (d.seq <= f) return;
      unretire(d.origin);  // a write of it beyond its final seq: see the header
    }
  }
  // Fast path, the common case: the next dot of a known origin.
  if (VersionVector::Item* it = vv_.find(d.origin)) {
    if (d.seq <= it->second) return;
    if (d.seq == it->second + 1) {
      it->second = d.seq;
      if (!cloud_.empty()) absorb(d.origin);
      return;
    }
  } else if (d.seq == 1) {
    vv_.raise(d.origin, 1);
    if (!cloud_.empty()) absorb(d.origin);
    return;
  }
  auto it = find_origin(cloud_, d.origin);
  if (it == cloud_.end() || it->first != d.origin) {
    it = cloud_.insert(it, {d.origin, {}});
  }
  auto& seqs = it->second;
  auto pos = std::lower_bound(seqs.begin(), seqs.end(), d.seq);
  if (pos != seqs.end() && *pos == d.seq) return;
  seqs.insert(pos, d.seq);
  // Over the bound, forget the highest dots: they are the furthest from being
  // absorbed, and anti-entropy will bring them again.
  if (seqs.size() > kMaxCloudPerOrigin) seqs.resize(kMaxCloudPerOrigin);
}

bool CausalContext::add_range(Origin o, uint64_t from, uint64_t to) {
  if (!retired_.empty()) {
    const uint64_t f = retired_at(o);
    if (f != 0) {
      if (to <= f || from > f) return false;
      unretire(o);
    }
  }
  uint64_t have = vv_.get(o);
  if (have < from || to <= have) return false;
  vv_.raise(o, to);
  absorb(o);
  return true;
}

uint64_t CausalContext::fingerprint() const {
  // Order-dependent chaining over the sorted items; the cloud's dots are
  // tagged so that a cloud dot never hashes like a vector item.
  uint64_t h = 0x6d6b63747800ULL;
  auto feed = [&h](uint64_t x) { h = mix64(h ^ mix64(x + 0x9e3779b97f4a7c15ULL)); };
  for (const auto& [o, s] : vv_.items()) {
    feed(o);
    feed(s);
  }
  feed(~uint64_t{0});
  for (const auto& [o, seqs] : cloud_) {
    if (seqs.empty()) continue;
    feed(o);
    feed(seqs.size());
    for (uint64_t s : seqs) feed(s);
  }
  if (!retired_.empty()) {
    feed(retired_.size());
    feed(retired_hash_);
  }
  return h;
}

uint64_t retired_term(Origin o, uint64_t f) { return mix64(mix64(o ^ 0x7265746972656400ULL) ^ f); }

uint64_t CausalContext::retired_at(Origin o) const {
  auto it = find_origin(retired_, o);
  return (it != retired_.end() && it->first == o) ? it->second : 0;
}

bool CausalContext::retire(Origin o, uint64_t f) {
  if (f == 0 || vv_.get(o) != f) return false;
  if (auto c = find_origin(cloud_, o); c != cloud_.end() && c->first == o) return false;
  vv_.erase(o);
  retired_.insert(find_origin(retired_, o), {o, f});
  retired_hash_ ^= retired_term(o, f);
  return true;
}

bool CausalContext::unretire(Origin o) {
  auto it = find_origin(retired_, o);
  if (it == retired_.end() || it->first != o) return false;
  const uint64_t f = it->second;
  retired_hash_ ^= retired_term(o, f);
  retired_.erase(it);
  vv_.raise(o, f);
  return true;
}

void CausalContext::absorb(Origin o) {
  auto it = find_origin(cloud_, o);
  if (it == cloud_.end() || it->first != o) return;
  auto& seqs = it->second;
  uint64_t have = vv_.get(o);
  size_t i = 0;
  while (i < seqs.size() && seqs[i] <= have + 1) {
    have = std::max(have, seqs[i]);
    ++i;
  }
  vv_.raise(o, have);
  seqs.erase(seqs.begin(), seqs.begin() + static_cast<std::ptrdiff_t>(i));
  if (seqs.empty()) cloud_.erase(it);
}

size_t CausalContext::cloud_size() const {
  size_t n = 0;
  for (const auto& [o, s] : cloud_) n += s.size();
  return n;
}

bool covers_all(const VersionVector& a, const VersionVector& b) {
  for (const auto& [o, seq] : b.items()) {
    if (a.get(o) < seq) return false;
  }
  return true;
}

}  // namespace meshkv::crdt
