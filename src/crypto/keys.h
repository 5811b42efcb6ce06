// Keys of the mesh: the cluster key every member shares, the Ed25519 identity
// of each node, their human-readable forms and their files.
//
// Everything here is built on libsodium and nothing else; the protocol engine
// decides what the keys authenticate. Secrets live in key files of mode 0600
// and are handed to processes by path, never on a command line (where every
// user sees them in ps).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/env.h"

namespace meshkv::crypto {

// Initialises libsodium once per process; safe to call from any thread, any
// number of times. Call it at start-up to turn a broken random number
// generator into an error message. Every other function in meshkv::crypto
// calls it too, and aborts if it fails: without a working RNG no key or
// nonce may be produced at all.
Status init();

using Key32 = std::array<uint8_t, 32>;

// The secret shared by all members of one mesh. `id` names the key without
// revealing it, so that two nodes (or an operator) can tell whether they hold
// the same key; see cluster_key_id().
struct ClusterKey {
  Key32 key;
  uint64_t id;
};

struct PublicKey {
  std::array<uint8_t, 32> bytes;
  friend bool operator==(const PublicKey&, const PublicKey&) = default;
};

// A node's long-term Ed25519 key pair (libsodium's crypto_sign layout: the
// secret key is the 32-byte seed followed by the public key).
struct Identity {
  PublicKey pk;
  std::array<uint8_t, 64> sk;
};

// The id of a cluster key: the first 8 bytes, little-endian, of
// BLAKE2b-256("meshkv cluster key id" || key). Never 0 (0 becomes 1), so 0
// can mean "no key" wherever an id is carried.
uint64_t cluster_key_id(const Key32& key);
// An id as 16 lowercase hex digits of the number (most significant first).
std::string key_id_hex(uint64_t id);

// "mk:" and 16 lowercase hex digits: the first 8 bytes of BLAKE2b-256(pk).
// Short enough to read out over the phone; not a substitute for comparing
// whole keys where an attacker could grind for a collision.
std::string fingerprint(const PublicKey& pk);

// "mkpub:" and the 32 bytes in unpadded URL-safe base64 (43 characters): one
// word that survives shells, URLs and configuration files unquoted.
std::string encode_public(const PublicKey& pk);
// The inverse of encode_public. Refuses anything else, including encodings
// that are not canonical and points that are not usable Ed25519 public keys
// (small order, off the curve), so that a bad key fails where it is typed.
Result<PublicKey> parse_public(std::string_view text);

ClusterKey new_cluster_key();
Identity new_identity();
// The identity whose Ed25519 seed is `seed`: the same seed always gives the
// same key pair, for deterministic simulations and known-answer tests.
Identity identity_from_seed(const Key32& seed);

// Key files are two text lines: a header naming the format and version, then
// the secret in unpadded URL-safe base64.
//   cluster key: "meshkv-cluster-key-v1\n<32 bytes>\n"
//   identity:    "meshkv-identity-v1\n<64-byte secret key>\n"
//
// write_*: the file is created with mode 0600 and synced, as is its
// directory entry. An existing file is refused (a lost key cannot be
// recovered) unless `force`, which writes a temporary file in the same
// directory and renames it over the old one, so that a crash leaves the old
// key or the new one, never half of either.
// File access goes through `env`, the real file system by default.
Status write_cluster_key(const std::string& path, const ClusterKey& key, bool force,
                         store::Env& env = store::Env::posix());
Status write_identity(const std::string& path, const Identity& id, bool force,
                      store::Env& env = store::Env::posix());

// load_*: refuse, naming the file, a file that group or others may access (with
// its mode and the chmod that fixes it), a file that is not regular or is
// larger than 4 KiB, a wrong header, bad base64 and a wrong length. An identity
// whose public half does not match its seed is refused as damaged.
Result<ClusterKey> load_cluster_key(const std::string& path, store::Env& env = store::Env::posix());
Result<Identity> load_identity(const std::string& path, store::Env& env = store::Env::posix());

}  // namespace meshkv::crypto
