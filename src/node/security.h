// What a node needs to take part in a sealed mesh: the cluster keys, its own
// identity, and whom it accepts. The engine seals and opens every datagram
// itself (node/sealing.cc), so the simulator exercises the same code.
//
// A sealed datagram:
//
//   offset  size  field (authenticated, not encrypted)
//   0       2     magic 0x6D 0x53 ("mS")
//   2       1     version (1)
//   3       1     kind: 1 sealed with the cluster key (only Hello and Join),
//                 2 sealed with the key of the sender and receiver pair
//   4       8     id of the cluster key used (the pair key derives from it)
//   12      8     sender uid
//   20      8     receiver uid (0: not known yet; only for kind 1)
//   28      24    nonce, then XChaCha20-Poly1305 ciphertext and 16-byte tag of:
//                   counter u64 (per sender and receiver, never repeats),
//                   sender's wall clock ms u64,
//                   the message as in wire/messages.h
//
// A datagram that fails authentication is dropped before anything decodes
// it. Binding the receiver's uid, which is new at every process start, makes
// a datagram captured before a restart useless afterwards; the counter
// window rejects one replayed within a process's life.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "crypto/keys.h"

namespace meshkv::node {

struct Security {
  // keys[0] seals; every key opens. Empty: the mesh is not sealed.
  std::vector<crypto::ClusterKey> keys;
  // This node's long-term identity. None: one is made for this process.
  std::optional<crypto::Identity> identity;
  // Public keys of the identities accepted as members. Empty: any node
  // holding a cluster key.
  std::vector<crypto::PublicKey> allowed_peers;
};

inline constexpr size_t kSealedHeaderBytes = 28;
// Header, nonce, tag, counter and clock: what sealing adds to a message.
inline constexpr size_t kSealedOverhead = kSealedHeaderBytes + 24 + 16 + 16;
// A datagram sealed to a receiver whose uid is not known yet (a Join or a
// Hello to a seed) is accepted only this close to the receiver's clock.
inline constexpr uint64_t kUnboundFreshnessMs = 30'000;

}  // namespace meshkv::node
