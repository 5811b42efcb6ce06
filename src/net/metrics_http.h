// Internal to src/net: `--metrics HOST:PORT`, Prometheus metrics over a
// minimal HTTP/1.1 server, and the health checks of load balancers and
// orchestrators: GET /health (200 while the process serves at all) and
// GET /ready (200 when ready, 503 with the reason otherwise). One request
// per connection (GET or HEAD), answered and closed; a request is bounded in size (8 KiB) and
// time (5 s), so a scraper cannot hold the node. What is served comes from
// a callback, asked at each request; this class owns only its listener.
#pragma once

#include <asio.hpp>
#include <functional>
#include <string>

#include "common/status.h"

namespace meshkv::net {

class MetricsHttp {
 public:
  using Body = std::function<std::string()>;
  // "" when the node is ready, else why not (one line).
  using Ready = std::function<std::string()>;

  // REQUIRES: `io` outlives this object.
  explicit MetricsHttp(asio::io_context& io) : acceptor_(io) {}

  // Listens on `spec` (HOST:PORT, HOST an IP address, IPv6 in brackets
  // allowed); an empty spec serves nothing. kInvalid for a malformed spec,
  // kIo when it cannot listen there.
  Status open(const std::string& spec);
  // Starts serving `body()` at /metrics and `ready()` at /ready; nothing if
  // not open.
  void start(Body body, Ready ready);
  // Stops accepting; requests already read are still answered.
  void close();

 private:
  void accept();
  // The whole response to a GET or HEAD of `target`.
  std::string answer(const std::string& method, const std::string& target) const;

  asio::ip::tcp::acceptor acceptor_;
  Body body_;
  Ready ready_;
};

}  // namespace meshkv::net
