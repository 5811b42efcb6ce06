// Authenticated encryption of datagrams, keys between pairs of nodes, and
// identity certificates.
//
// seal/open use XChaCha20-Poly1305 (IETF): its 24-byte nonce is large enough
// for 16 random bytes drawn at each process (and thread) start followed by a
// counter, so no node needs a persistent nonce counter to stay safe across
// restarts and crashes, and no message pays for a random draw (replay
// protection is a separate, explicit layer: replay.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/keys.h"

namespace meshkv::crypto {

inline constexpr size_t kNonceBytes = 24, kTagBytes = 16;
// What seal() adds to a message.
inline constexpr size_t kSealOverhead = kNonceBytes + kTagBytes;

// Appends nonce || ciphertext || tag (n + kSealOverhead bytes) to `out`, with
// a nonce never used before (random per thread, then counted; see seal.cc). `ad` is authenticated but not encrypted
// (headers the receiver must read before it can open). `ad` and `plain` must
// not point into `out`, which may reallocate. Either pointer may be null when
// its length is 0.
void seal(const Key32& key, const uint8_t* ad, size_t ad_len, const uint8_t* plain, size_t n,
          std::vector<uint8_t>& out);

// Opens what seal() produced. On success `out` holds exactly the plaintext
// (its previous contents are replaced); on any failure (too short, forged or
// damaged, wrong key, wrong ad) it returns false and `out` is empty: nothing
// unauthenticated is ever handed to the caller. `sealed` must not point into
// `out`.
bool open(const Key32& key, const uint8_t* ad, size_t ad_len, const uint8_t* sealed, size_t n,
          std::vector<uint8_t>& out);

// A key shared by exactly two identities within one cluster key: X25519 of
// my secret with their public key (both converted from Ed25519), then
// BLAKE2b-256 keyed with the cluster key over
//   "meshkv pair v1" || X25519 output || the two public keys, byte-wise sorted.
// Sorting makes both sides compute the same key; keying with the cluster key
// means a stolen identity alone derives nothing for another cluster. Refuses
// a public key that is invalid or of small order (which would make the
// shared secret predictable).
Result<Key32> pair_key(const ClusterKey& cluster, const Identity& me, const PublicKey& them);

// Identity certificate: binds a process identity (its uid) and a node name to
// a public key, with an Ed25519 detached signature over
//   "meshkv cert v1" || uid (u64 LE) || name length (u32 LE) || name.
// The length prefix keeps (uid, name) pairs from colliding. Names longer than
// 4 GiB cannot be certified: sign_cert returns all zeros for them and
// verify_cert refuses them.
std::array<uint8_t, 64> sign_cert(const Identity& id, uint64_t uid, std::string_view name);
bool verify_cert(const PublicKey& pk, uint64_t uid, std::string_view name, const std::array<uint8_t, 64>& sig);

}  // namespace meshkv::crypto
