// Control frames (wire/frame.h): encoding, and cutting frames out of a
// buffer filled by a stream.
#include <doctest/doctest.h>

#include "wire/frame.h"

using namespace meshkv;
using namespace meshkv::wire;

TEST_CASE("frame: the header is the body's length, little-endian") {
  const Bytes body(300, 0xAB);
  const Bytes f = frame(body);
  REQUIRE(f.size() == 304);
  CHECK(f[0] == 0x2C);
  CHECK(f[1] == 0x01);
  CHECK(f[2] == 0);
  CHECK(f[3] == 0);
  CHECK(Bytes(f.begin() + 4, f.end()) == body);
  CHECK(frame(Bytes{}) == Bytes{0, 0, 0, 0});
}

TEST_CASE("frame: a frame is cut only once it is whole, and frames that follow stay") {
  Bytes stream = frame(Bytes{1, 2, 3});
  const Bytes second = frame(Bytes{9});
  stream.insert(stream.end(), second.begin(), second.end());
  for (size_t n = 0; n < 7; ++n) {
    CAPTURE(n);
    CHECK(cut_frame(std::span<const uint8_t>(stream.data(), n)).kind == FrameCut::kIncomplete);
  }
  const FrameCut first = cut_frame(stream);
  REQUIRE(first.kind == FrameCut::kWhole);
  CHECK(Bytes(first.body.begin(), first.body.end()) == Bytes{1, 2, 3});
  CHECK(first.consumed == 7);
  const FrameCut next = cut_frame(std::span<const uint8_t>(stream).subspan(first.consumed));
  REQUIRE(next.kind == FrameCut::kWhole);
  CHECK(Bytes(next.body.begin(), next.body.end()) == Bytes{9});
}

TEST_CASE("frame: a header over the limit is refused before its body arrives") {
  const Bytes lying = {0xFF, 0xFF, 0xFF, 0xFF};
  CHECK(cut_frame(lying).kind == FrameCut::kTooLarge);
  const auto len = frame_length(std::span<const uint8_t, 4>(lying.data(), 4));
  REQUIRE(!len.ok());
  CHECK(len.status().code() == Code::kTooLarge);
  CHECK(len.status().message() == "frame of 4294967295 bytes announced");
  // The limit itself is allowed; a caller's smaller limit is honoured.
  const Bytes at_limit = frame(Bytes(16, 0));
  CHECK(cut_frame(at_limit, 16).kind == FrameCut::kWhole);
  CHECK(cut_frame(at_limit, 15).kind == FrameCut::kTooLarge);
}
