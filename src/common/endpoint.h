// A network address as plain data, so the engine and the codec need no
// socket library. IPv4 addresses use the first 4 bytes of `ip`.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshkv {

struct Endpoint {
  uint8_t family = 4;  // 4 or 6
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;

  static Endpoint v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);
  // "1.2.3.4:5", "[::1]:5". Names are not resolved here.
  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
  bool is_loopback() const;
  bool is_unspecified() const;

  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

}  // namespace meshkv
