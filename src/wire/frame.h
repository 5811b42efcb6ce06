// Control frames: how wire messages travel on a TCP control connection.
//
//   offset  size  field
//   0       4     body length, unsigned little-endian; at most kMaxFrameBytes
//   4       n     body: a wire message, or a sealed one (net/ctl_seal.h)
//
// The limit is the reader's: a header announcing more is refused before any
// of the body is read or allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"
#include "wire/bytes.h"
#include "wire/messages.h"

namespace meshkv::wire {

inline constexpr size_t kFrameHeaderBytes = 4;
static_assert(kMaxFrameBytes <= UINT32_MAX, "a frame's length must fit its header");

// `body` with its header in front. REQUIRES: body.size() <= kMaxFrameBytes.
inline Bytes frame(std::span<const uint8_t> body) {
  Bytes out;
  out.reserve(kFrameHeaderBytes + body.size());
  const auto n = static_cast<uint32_t>(body.size());
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// The body length a header announces; kTooLarge ("frame of N bytes
// announced") when it is over `max_body`.
inline Result<uint32_t> frame_length(std::span<const uint8_t, kFrameHeaderBytes> header,
                                     size_t max_body = kMaxFrameBytes) {
  uint32_t n = 0;
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) n |= static_cast<uint32_t>(header[i]) << (8 * i);
  if (n > max_body) return Status::TooLarge("frame of " + std::to_string(n) + " bytes announced");
  return n;
}

// The first frame at the start of a buffer being filled from a connection.
struct FrameCut {
  enum Kind : uint8_t { kIncomplete, kWhole, kTooLarge } kind = kIncomplete;
  std::span<const uint8_t> body;  // kWhole: the body, inside the buffer
  size_t consumed = 0;            // kWhole: header and body
};

// kWhole when `in` starts with a whole frame; kIncomplete while bytes are
// missing; kTooLarge as soon as the header announces more than `max_body`
// (nothing sensible can follow: the connection should close).
inline FrameCut cut_frame(std::span<const uint8_t> in, size_t max_body = kMaxFrameBytes) {
  FrameCut cut;
  if (in.size() < kFrameHeaderBytes) return cut;
  const auto len = frame_length(in.first<kFrameHeaderBytes>(), max_body);
  if (!len.ok()) {
    cut.kind = FrameCut::kTooLarge;
    return cut;
  }
  if (in.size() - kFrameHeaderBytes < *len) return cut;
  cut.kind = FrameCut::kWhole;
  cut.body = in.subspan(kFrameHeaderBytes, *len);
  cut.consumed = kFrameHeaderBytes + *len;
  return cut;
}

}  // namespace meshkv::wire
