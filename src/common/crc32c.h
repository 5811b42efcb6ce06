// CRC-32C (Castagnoli), the checksum of log records and of unsealed
// datagrams. Standard parameters: reflected, initial and final value
// 0xFFFFFFFF, so crc32c("123456789", 9) == 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meshkv {

// Uses the CPU's CRC instruction when there is one (SSE 4.2).
uint32_t crc32c(const void* data, size_t n);
// The same by table lookup: what crc32c falls back to, and its reference.
uint32_t crc32c_portable(const void* data, size_t n);

}  // namespace meshkv
