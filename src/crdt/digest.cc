#include "crdt/digest.h"

#include <cstring>

namespace meshkv::crdt {

uint64_t mix64(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

uint64_t hash64(std::string_view bytes, uint64_t seed) {
  uint64_t h = mix64(seed ^ (0x9e3779b97f4a7c15ULL * (bytes.size() + 1)));
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
  }
  // The last 0-7 bytes as a little-endian word (what a memcpy into a zeroed
  // word gives), from two overlapping loads instead of a call.
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + i);
  const size_t r = bytes.size() - i;
  uint64_t tail = 0;
  if (r >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + r - 4, 4);
    tail = lo | (static_cast<uint64_t>(hi) << ((r - 4) * 8));
  } else if (r > 0) {
    tail = p[0] | (static_cast<uint64_t>(p[r / 2]) << (r / 2 * 8)) | (static_cast<uint64_t>(p[r - 1]) << ((r - 1) * 8));
  }
  return mix64(h ^ tail ^ (static_cast<uint64_t>(bytes.size() - i) << 56));
}

uint64_t entry_hash(std::string_view key, const EntryView& e) { return entry_hash_keyed(hash64(key, 1), e); }

uint64_t entry_hash_keyed(uint64_t key_hash, const EntryView& e) {
  uint64_t h = key_hash;
  h = mix64(h ^ e.hlc.raw);
  h = mix64(h ^ e.dot.origin);
  h = mix64(h ^ e.dot.seq);
  h = mix64(h ^ (e.tombstone ? 0x7f : 0x3c));
  if (e.ttl_ms != 0) h = mix64(h ^ e.ttl_ms ^ 0x77);  // writes without one hash as before
  return mix64(h ^ hash64(e.value, 2));
}

uint64_t Digest::group(size_t g) const {
  uint64_t h = 0x5bd1e995ULL + g;
  for (size_t b = g * kDigestFanout; b < (g + 1) * kDigestFanout; ++b) h = mix64(h ^ buckets_[b]);
  return h;
}

uint64_t Digest::root() const {
  uint64_t h = 0x2545f4914f6cdd1dULL;
  for (size_t g = 0; g < kDigestFanout; ++g) h = mix64(h ^ group(g));
  return h;
}

}  // namespace meshkv::crdt
