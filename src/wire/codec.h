// Encoding and decoding of wire messages (layout in wire/messages.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "wire/bytes.h"
#include "wire/messages.h"

namespace meshkv::wire {

// Appends the encoding of `env` to `out`.
void encode_to(const Envelope& env, Bytes& out);
Bytes encode(const Envelope& env);

// Decodes one whole message. Returns kCorruption for truncated, oversized,
// trailing-garbage or otherwise malformed input; never reads outside
// [data, data + n).
Result<Envelope> decode(const uint8_t* data, size_t n);
inline Result<Envelope> decode(const Bytes& b) { return decode(b.data(), b.size()); }

// Reads only the fixed header: enough to route or count a datagram.
struct Header {
  uint8_t version = 0;
  MsgType type{};
  uint64_t sender = 0;
};
Result<Header> peek_header(const uint8_t* data, size_t n);

// Bytes the encoding of a chunk message takes besides its entries.
inline constexpr size_t kChunkOverhead = kHeaderBytes + 8 + 10 + 10 + 10;
// Bytes a Push takes besides its entries.
inline constexpr size_t kPushOverhead = kChunkOverhead + 10;

}  // namespace meshkv::wire
