// The client side of the control plane: one request, one response, over a
// fresh TCP connection to a node's control port (framing in wire/frame.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/endpoint.h"
#include "common/status.h"
#include "crypto/keys.h"
#include "wire/messages.h"

namespace meshkv::net {

inline constexpr std::chrono::milliseconds kDefaultControlTimeout{3000};

// The cluster key this process presents to sealed nodes (meshkv --key-file).
// With a key, every connection opens with the handshake of net/ctl_seal.h and
// is sealed; a node without keys is then refused ("not sealed"), so that a
// client never sends a keyed request in clear by mistake.
void set_client_key(const crypto::ClusterKey& key);
// Whether set_client_key() was called: requests will be sealed.
bool has_client_key();

// Sends `req` to the node at `node` and returns its response. Blocking, and
// bounded: connecting, writing and reading all finish within `timeout` in
// total. Never hangs and never throws.
//
// Errors: kUnavailable when the node cannot be reached, refuses, resets,
// closes early or does not answer in time ("node 127.0.0.1:7946 unreachable:
// connection refused"); kCorruption when it answers with something that is
// not a control response; kTooLarge, before anything is sent, for a request
// over wire::kMaxFrameBytes ("request too large: N bytes, the limit is M"). The node's own verdict (code, error) is in the
// returned response.
Result<wire::CtlResponse> call(const Endpoint& node, const wire::CtlRequest& req,
                               std::chrono::milliseconds timeout = kDefaultControlTimeout);

// Like call(), for requests the node answers with a stream (watch): calls
// `on_response` for every response until it returns false, or a response
// says no more follow. Only the first response is bounded by `timeout`.
// Errors as for call(); a stream the node closes is kUnavailable.
Status stream(const Endpoint& node, const wire::CtlRequest& req, std::chrono::milliseconds timeout,
              const std::function<bool(const wire::CtlResponse&)>& on_response);

// A control connection held open for many requests, for clients that send
// requests without waiting for each answer (the node answers in the order it
// received them) or watch many connections at once with poll or epoll: load
// generators and benchmarks. Sealed as call() is when this process holds a
// key. Small requests leave at once (TCP_NODELAY). Not thread-safe.
class Connection {
 public:
  // Connects to `node` and, with a client key, completes the sealed
  // handshake, both within `timeout`. Errors as for call(), and
  // kPermissionDenied when the node refuses the key or is not sealed.
  static Result<Connection> open(const Endpoint& node,
                                 std::chrono::milliseconds timeout = kDefaultControlTimeout);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Writes `req`, waiting at most `timeout` for room in the socket's buffer.
  // kUnavailable when the node closed the connection or the time ran out;
  // the connection is unusable after an error. kTooLarge, with nothing sent
  // and the connection still usable, for a request over the frame limit.
  Status send(const wire::CtlRequest& req, std::chrono::milliseconds timeout = kDefaultControlTimeout);
  // Writes several requests at once, in order (one system call for the lot
  // where they fit the socket's buffer). Errors as for send(); kTooLarge
  // sends none.
  Status send(std::span<const wire::CtlRequest> reqs, std::chrono::milliseconds timeout = kDefaultControlTimeout);

  // Reads what has arrived, without blocking, and appends every complete
  // response to `out` (none if nothing arrived). kUnavailable once the node
  // has closed the connection; kCorruption for a frame that does not decode
  // or authenticate. Responses completed before an error are appended; the
  // connection is unusable after one.
  Status receive(std::vector<wire::CtlResponse>& out);

  // The socket, for poll or epoll: readable means receive() has bytes to
  // read. Owned by the connection.
  int fd() const;

 private:
  struct State;
  explicit Connection(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace meshkv::net
