// Internal to src/net: `--metrics HOST:PORT`, Prometheus metrics over a
// minimal HTTP/1.1 server. One request per connection (GET or HEAD
// /metrics), answered and closed; a request is bounded in size (8 KiB) and
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

  // REQUIRES: `io` outlives this object.
  explicit MetricsHttp(asio::io_context& io) : acceptor_(io) {}

  // Listens on `spec` (HOST:PORT, HOST an IP address, IPv6 in brackets
  // allowed); an empty spec serves nothing. kInvalid for a malformed spec,
  // kIo when it cannot listen there.
  Status open(const std::string& spec);
  // Starts serving `body()` at /metrics; nothing if not open.
  void start(Body body);
  // Stops accepting; requests already read are still answered.
  void close();

 private:
  void accept();

  asio::ip::tcp::acceptor acceptor_;
  Body body_;
};

}  // namespace meshkv::net
