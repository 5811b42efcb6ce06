// Byte writer and bounds-checked reader for the codec.
//
// Reader never reads past its end: every read first checks what remains, and
// after the first failure every further read fails too, so decoders can read
// a whole body and test ok() once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace meshkv::wire {

using Bytes = std::vector<uint8_t>;

class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    out_.push_back(static_cast<uint8_t>(v));
    out_.push_back(static_cast<uint8_t>(v >> 8));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<uint8_t>(v));
  }
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void bytes(std::string_view s) {
    varint(s.size());
    raw(s.data(), s.size());
  }
  size_t size() const { return out_.size(); }

 private:
  Bytes& out_;
};

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? static_cast<size_t>(end_ - p_) : 0; }
  const char* error() const { return err_; }
  void fail(const char* why) {
    if (ok_) err_ = why;
    ok_ = false;
  }

  uint8_t u8() {
    if (!need(1, "truncated byte")) return 0;
    return *p_++;
  }
  uint16_t u16() {
    if (!need(2, "truncated u16")) return 0;
    uint16_t v = static_cast<uint16_t>(p_[0] | (p_[1] << 8));
    p_ += 2;
    return v;
  }
  uint64_t u64() {
    if (!need(8, "truncated u64")) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{p_[i]} << (8 * i);
    p_ += 8;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!need(1, "truncated varint")) return 0;
      uint8_t b = *p_++;
      if (shift == 63 && b > 1) break;  // would overflow 64 bits
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint too long");
    return 0;
  }
  // A length-prefixed byte string of at most `max` bytes.
  std::string bytes(size_t max) {
    uint64_t n = varint();
    if (!ok_) return {};
    if (n > max) {
      fail("byte string over its limit");
      return {};
    }
    if (!need(n, "truncated byte string")) return {};
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return s;
  }
  // The same as a view of the input (valid while the input is).
  std::string_view bytes_view(size_t max) {
    uint64_t n = varint();
    if (!ok_) return {};
    if (n > max) {
      fail("byte string over its limit");
      return {};
    }
    if (!need(n, "truncated byte string")) return {};
    std::string_view s(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return s;
  }
  void raw(void* out, size_t n) {
    // memcpy's pointers must not be null even for 0 bytes, and an empty
    // vector's data() may be (a fuzzer found one: an empty extension field).
    if (n == 0 || !need(n, "truncated field")) return;
    std::memcpy(out, p_, n);
    p_ += n;
  }
  void skip(uint64_t n) {
    if (need(n, "truncated extension")) p_ += n;
  }
  // A count of items each at least `min_item` bytes long: rejects counts the
  // remaining input cannot hold, so a decoder never reserves on a lie.
  uint64_t count(size_t min_item) {
    uint64_t n = varint();
    if (ok_ && n > remaining() / (min_item ? min_item : 1)) fail("count exceeds the input");
    return ok_ ? n : 0;
  }

 private:
  bool need(uint64_t n, const char* why) {
    if (!ok_) return false;
    if (static_cast<uint64_t>(end_ - p_) < n) {
      fail(why);
      return false;
    }
    return true;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
  const char* err_ = "";
};

}  // namespace meshkv::wire
