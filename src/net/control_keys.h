// Internal to src/net: the cluster keys a control connection may open with
// (net/ctl_seal.h), and the `keys` op that changes them at runtime, for
// rotation without downtime. The mesh's own keys live in the engine; this
// list follows every change made to them through op(). No Asio.
#pragma once

#include <cstdint>
#include <vector>

#include "crypto/keys.h"
#include "node/engine.h"
#include "wire/messages.h"

namespace meshkv::net {

class ControlKeys {
 public:
  // Empty `keys`: control connections are plain, and stay so.
  explicit ControlKeys(std::vector<crypto::ClusterKey> keys) : keys_(std::move(keys)) {}

  // Whether control connections must open with a handshake.
  bool sealed() const { return !keys_.empty(); }
  // The key with id `id`, or null. Valid until the next op().
  const crypto::ClusterKey* find(uint64_t id) const;

  // `meshkv keys` (list, install, use, remove), applied to the engine's mesh
  // keys and to this list together. Answers with the engine's security()
  // or a kCtlBadRequest / kCtlNotFound error, in which case nothing changed.
  // REQUIRES: req's arguments passed wire::check_request.
  wire::CtlResponse op(node::Engine& engine, const wire::CtlRequest& req);

 private:
  std::vector<crypto::ClusterKey> keys_;
};

}  // namespace meshkv::net
