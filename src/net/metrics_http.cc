#include "net/metrics_http.h"

#include <cstring>
#include <memory>
#include <sstream>

namespace meshkv::net {

using asio::ip::tcp;

namespace {
constexpr size_t kMaxRequestBytes = 8192;
constexpr std::chrono::seconds kRequestTimeout{5};

struct HttpConn {
  explicit HttpConn(tcp::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
  tcp::socket sock;
  asio::steady_timer timer;
  asio::streambuf in{kMaxRequestBytes};
  std::string out;
};

std::string http_response(int code, const char* reason, const char* type, const std::string& body) {
  std::ostringstream r;
  r << "HTTP/1.1 " << code << " " << reason << "\r\nContent-Type: " << type
    << "\r\nContent-Length: " << body.size() << "\r\nConnection: close\r\n\r\n"
    << body;
  return r.str();
}
}  // namespace

Status MetricsHttp::open(const std::string& spec) {
  if (spec.empty()) return Status::Ok();
  const size_t colon = spec.rfind(':');
  std::string host = colon == std::string::npos ? "" : spec.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  unsigned long port = 0;
  try {
    port = colon == std::string::npos ? 0 : std::stoul(spec.substr(colon + 1));
  } catch (...) {
    port = 0;
  }
  if (ec || port == 0 || port > 65535) {
    return Status::Invalid("--metrics: expected HOST:PORT with an IP address, got '" + spec + "'");
  }
  const tcp::endpoint at(addr, static_cast<uint16_t>(port));
  acceptor_.open(at.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(at, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Io("cannot serve metrics on " + spec + ": " + ec.message());
  return Status::Ok();
}

void MetricsHttp::start(Body body, Ready ready) {
  body_ = std::move(body);
  ready_ = std::move(ready);
  accept();
}

void MetricsHttp::close() {
  std::error_code ignored;
  acceptor_.close(ignored);
}

std::string MetricsHttp::answer(const std::string& method, const std::string& target) const {
  auto path_is = [&](const char* p) {
    const size_t n = std::strlen(p);
    return target.compare(0, n, p) == 0 && (target.size() == n || target[n] == '?');
  };
  std::string out;
  size_t body_size = 0;
  if (path_is("/metrics")) {
    const std::string body = body_();
    body_size = body.size();
    out = http_response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
  } else if (path_is("/health")) {
    // Answering at all is the proof of life: the event loop runs.
    out = http_response(200, "OK", "text/plain", "ok\n");
    body_size = 3;
  } else if (path_is("/ready")) {
    const std::string why = ready_ ? ready_() : "";
    const std::string body = why.empty() ? "ready\n" : "not ready: " + why + "\n";
    body_size = body.size();
    out = why.empty() ? http_response(200, "OK", "text/plain", body)
                      : http_response(503, "Service Unavailable", "text/plain", body);
  } else {
    return http_response(404, "Not Found", "text/plain", "see /metrics, /health and /ready\n");
  }
  if (method == "HEAD") out.resize(out.size() - body_size);
  return out;
}

void MetricsHttp::accept() {
  if (!acceptor_.is_open()) return;
  acceptor_.async_accept([this](std::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      auto c = std::make_shared<HttpConn>(std::move(s));
      c->timer.expires_after(kRequestTimeout);
      c->timer.async_wait([c](std::error_code e) {
        if (e) return;
        std::error_code ignored;
        c->sock.close(ignored);
      });
      asio::async_read_until(c->sock, c->in, "\r\n\r\n", [this, c](std::error_code e, size_t) {
        if (e) {
          if (e == asio::error::not_found) {  // larger than kMaxRequestBytes
            c->out = http_response(431, "Request Header Fields Too Large", "text/plain", "too large\n");
          } else {
            c->timer.cancel();
            return;
          }
        } else {
          std::istream is(&c->in);
          std::string method, target;
          is >> method >> target;
          if (method != "GET" && method != "HEAD") {
            c->out = http_response(405, "Method Not Allowed", "text/plain", "only GET\n");
          } else {
            c->out = answer(method, target);
          }
        }
        asio::async_write(c->sock, asio::buffer(c->out), [c](std::error_code, size_t) {
          std::error_code ignored;
          c->sock.shutdown(tcp::socket::shutdown_both, ignored);
          c->sock.close(ignored);
          c->timer.cancel();
        });
      });
    }
    accept();
  });
}

}  // namespace meshkv::net
