// Internal to src/node: the narrow services the engine lends its components
// (membership, replication, anti-entropy, sealing), so that none of them
// needs the engine itself.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "node/engine.h"
#include "wire/bytes.h"
#include "wire/messages.h"

namespace meshkv::node {

// Puts messages on the wire. Implemented by the engine's transport, which
// encodes, counts, fragments to the MTU, seals or checksums, and queues the
// datagrams for the driver. Sending never fails: a datagram that cannot be
// sealed yet is dropped (counted) and the protocol retries.
class Sender {
 public:
  // One message to `to`, in fragments when it exceeds the MTU.
  virtual void send(const Endpoint& to, wire::Message msg) = 0;
  // Encodes `msg` once for `copies` receivers (counted as `copies` messages
  // sent) and returns the datagram payloads that carry it: the message, or
  // its fragments. Each goes out with send_encoded().
  virtual std::vector<wire::Bytes> encode(wire::Message msg, size_t copies) = 0;
  virtual void send_encoded(const Endpoint& to, const wire::Bytes& payload) = 0;

 protected:
  ~Sender() = default;
};

// Appends a line to the node's log.
using LogFn = std::function<void(LogLevel, std::string)>;

}  // namespace meshkv::node
