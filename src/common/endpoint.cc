#include "common/endpoint.h"

#include <arpa/inet.h>

#include <charconv>

namespace meshkv {

Endpoint Endpoint::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  Endpoint e;
  e.family = 4;
  e.ip[0] = a;
  e.ip[1] = b;
  e.ip[2] = c;
  e.ip[3] = d;
  e.port = port;
  return e;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return std::nullopt;
  }
  Endpoint e;
  e.port = static_cast<uint16_t>(port);
  if (inet_pton(AF_INET, host.c_str(), e.ip.data()) == 1) {
    e.family = 4;
    return e;
  }
  if (inet_pton(AF_INET6, host.c_str(), e.ip.data()) == 1) {
    e.family = 6;
    return e;
  }
  return std::nullopt;
}

std::string Endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 6) {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port);
  }
  inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(port);
}

bool Endpoint::is_loopback() const {
  if (family == 4) return ip[0] == 127;
  for (int i = 0; i < 15; ++i) {
    if (ip[static_cast<size_t>(i)] != 0) return false;
  }
  return ip[15] == 1;
}

bool Endpoint::is_unspecified() const {
  size_t n = family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    if (ip[i] != 0) return false;
  }
  return true;
}

}  // namespace meshkv
