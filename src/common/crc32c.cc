#include "common/crc32c.h"

#include <array>
#include <cstring>

namespace meshkv {

namespace {
std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;  // Castagnoli
    t[i] = c;
  }
  return t;
}

uint32_t crc32c_table(const unsigned char* p, size_t n, uint32_t c) {
  static const std::array<uint32_t, 256> table = make_table();
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
// SSE 4.2 computes this very polynomial, 8 bytes an instruction: every
// unsealed datagram and every log record is checksummed, so it matters.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const unsigned char* p, size_t n,
                                                         uint32_t c) {
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c64 = __builtin_ia32_crc32di(c64, word);
  }
  c = static_cast<uint32_t>(c64);
  for (; n > 0; --n, ++p) c = __builtin_ia32_crc32qi(c, *p);
  return c;
}
const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
#endif
}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__)
  if (kHaveSse42) return crc32c_sse42(p, n, 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
#endif
  return crc32c_table(p, n, 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

uint32_t crc32c_portable(const void* data, size_t n) {
  return crc32c_table(static_cast<const unsigned char*>(data), n, 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

}  // namespace meshkv
