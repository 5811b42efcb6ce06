// The sealed control channel. When a node holds cluster keys, a control
// connection opens with a handshake and every frame after it is sealed:
//
//   client -> node   "MKC1" | key id (u64 LE) | client nonce (24 bytes)
//   node -> client   "MKS1" | node nonce (24 bytes)
//
// Both sides derive one key per direction, BLAKE2b-256 keyed with the cluster
// key over ("meshkv control c2s v1" or "... s2c v1") || client nonce || node
// nonce. A frame body is then nonce || XChaCha20-Poly1305(message), with the
// frame's number in its direction (0, 1, ...) as associated data: a frame
// replayed, reordered or cut from another connection does not open. A
// client without the key gets a plain "permission denied" and nothing else.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "crypto/keys.h"
#include "wire/bytes.h"

namespace meshkv::net {

using Nonce24 = std::array<uint8_t, 24>;

wire::Bytes client_hello(uint64_t key_id, const Nonce24& client_nonce);
// Whether `body` is a client hello; fills the key id and nonce if so.
bool parse_client_hello(const wire::Bytes& body, uint64_t& key_id, Nonce24& client_nonce);
wire::Bytes server_hello(const Nonce24& node_nonce);
bool parse_server_hello(const wire::Bytes& body, Nonce24& node_nonce);
Nonce24 random_nonce();

class CtlSession {
 public:
  CtlSession(const crypto::ClusterKey& key, const Nonce24& client_nonce, const Nonce24& node_nonce,
             bool is_node);
  wire::Bytes seal(const wire::Bytes& plain);
  // False if the frame does not open (forged, replayed, out of order).
  bool open(const wire::Bytes& body, wire::Bytes& plain);

 private:
  crypto::Key32 tx_{}, rx_{};
  uint64_t tx_n_ = 0, rx_n_ = 0;
};

// The message a node without the key's client gets.
inline constexpr const char* kControlDenied =
    "permission denied: this node's mesh is sealed; give the cluster key with --key-file FILE "
    "(or MESHKV_KEY_FILE)";

}  // namespace meshkv::net
