// The client side of the control plane: one request, one response, over a
// fresh TCP connection to a node's control port (framing in wire/frame.h).
#pragma once

#include <chrono>
#include <functional>

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
// not a control response. The node's own verdict (code, error) is in the
// returned response.
Result<wire::CtlResponse> call(const Endpoint& node, const wire::CtlRequest& req,
                               std::chrono::milliseconds timeout = kDefaultControlTimeout);

// Like call(), for requests the node answers with a stream (watch): calls
// `on_response` for every response until it returns false, or a response
// says no more follow. Only the first response is bounded by `timeout`.
// Errors as for call(); a stream the node closes is kUnavailable.
Status stream(const Endpoint& node, const wire::CtlRequest& req, std::chrono::milliseconds timeout,
              const std::function<bool(const wire::CtlResponse&)>& on_response);

}  // namespace meshkv::net
