// The state digest: a hash of every entry folded into buckets by key hash,
// kept up to date on every merge, and a 64-way tree over the buckets:
//
//   root  <-  64 group hashes  <-  4096 bucket hashes  <-  entries
//
// Two nodes compare roots, then only the groups and buckets that differ, so
// `meshkv diff` transfers about what differs, not the state. Bucket hashes
// are XOR folds: updating one is O(1) (remove the old entry's hash, add the
// new one's). The hash is fast, not cryptographic: it finds divergence, it
// does not authenticate anything.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crdt/entry.h"

namespace meshkv::crdt {

inline constexpr size_t kDigestFanout = 64;
inline constexpr size_t kDigestBuckets = kDigestFanout * kDigestFanout;

// The multiply-xorshift mix of one 64-bit word that hash64 is built on.
uint64_t mix64(uint64_t x);
// A 64-bit hash of bytes: 8-byte words through mix64.
uint64_t hash64(std::string_view bytes, uint64_t seed = 0);

inline size_t bucket_of(std::string_view key) { return hash64(key) >> 52; }  // top 12 bits
inline size_t group_of(size_t bucket) { return bucket / kDigestFanout; }

// The hash of one entry under its key: any change of value, tombstone, HLC
// or dot changes it.
uint64_t entry_hash(std::string_view key, const EntryView& e);
// The same from the key's hash64(key, 1), for hashing one key's two entries.
uint64_t entry_hash_keyed(uint64_t key_hash, const EntryView& e);

class Digest {
 public:
  void add(std::string_view key, const EntryView& e) { add_hashed(hash64(key), key, e); }
  void remove(std::string_view key, const EntryView& e) { add(key, e); }  // XOR is its own inverse
  // The same, given hash64(key): LwwMap has it from its key index, and a
  // merge then hashes the key once for the index and the bucket.
  void add_hashed(uint64_t key_hash, std::string_view key, const EntryView& e) {
    buckets_[key_hash >> 52] ^= entry_hash(key, e);
  }
  // remove(key, old) and add(key, now), hashing the key once for both.
  void replace(std::string_view key, const EntryView& old, const EntryView& now) {
    replace_hashed(hash64(key), key, old, now);
  }
  void replace_hashed(uint64_t key_hash, std::string_view key, const EntryView& old, const EntryView& now) {
    const uint64_t kh = hash64(key, 1);
    buckets_[key_hash >> 52] ^= entry_hash_keyed(kh, old) ^ entry_hash_keyed(kh, now);
  }

  uint64_t bucket(size_t b) const { return buckets_[b]; }
  uint64_t group(size_t g) const;
  uint64_t root() const;

 private:
  std::array<uint64_t, kDigestBuckets> buckets_{};
};

}  // namespace meshkv::crdt
