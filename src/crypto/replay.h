// Anti-replay for authenticated datagrams that carry a 64-bit counter.
//
// A network may drop, duplicate and reorder datagrams, and an attacker may
// record and resend them. The window accepts each counter at most once and
// tolerates reordering by up to kWindow counters: it remembers the highest
// counter seen and which of the kWindow counters ending there (the highest
// included) have been seen (the scheme of IPsec and WireGuard). Anything
// older than that is refused, since it can no longer be told from a replay.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace meshkv::crypto {

class ReplayWindow {
 public:
  static constexpr uint64_t kWindow = 1024;

  // Whether `counter` would be accepted: never seen, not too old, and not 0
  // (0 is reserved so that a zeroed or missing counter is never valid).
  bool check(uint64_t counter) const;
  // Records `counter` as seen. Call only after the datagram carrying it was
  // authenticated; otherwise a forger could advance the window and make
  // genuine traffic look old.
  void commit(uint64_t counter);
  bool accept(uint64_t counter) {
    if (!check(counter)) return false;
    commit(counter);
    return true;
  }
  // The highest counter committed so far, 0 before the first.
  uint64_t highest() const { return highest_; }

 private:
  static constexpr size_t kWords = kWindow / 64;
  static_assert(kWindow % 64 == 0);

  // Counter c lives at bit c % kWindow: a ring, so moving the window forward
  // clears the slots it enters instead of shifting the whole bitmap.
  bool seen(uint64_t c) const { return (bits_[(c / 64) % kWords] >> (c % 64)) & 1; }
  void mark(uint64_t c) { bits_[(c / 64) % kWords] |= uint64_t{1} << (c % 64); }

  uint64_t highest_ = 0;
  std::array<uint64_t, kWords> bits_{};
};

}  // namespace meshkv::crypto
