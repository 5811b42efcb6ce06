// Duplicate suppression for message sequence numbers: remembers the highest
// seq seen and which of the kWidth seqs below it were seen. Seqs older than
// the window count as seen (a duplicate that old is re-applied at worst,
// which is harmless: every apply is idempotent).
#pragma once

#include <bitset>
#include <cstdint>

namespace meshkv::node {

class SeqWindow {
 public:
  static constexpr uint64_t kWidth = 1024;

  // Returns true if `seq` is new, and marks it seen.
  bool check_and_mark(uint64_t seq) {
    if (seq > top_) {
      const uint64_t shift = seq - top_;
      bits_ = shift >= kWidth ? std::bitset<kWidth>{} : bits_ << shift;
      top_ = seq;
      bits_.set(0);
      return true;
    }
    const uint64_t back = top_ - seq;
    if (back >= kWidth || bits_.test(back)) return false;
    bits_.set(back);
    return true;
  }

 private:
  uint64_t top_ = 0;
  std::bitset<kWidth> bits_;  // bit i: seq top_ - i was seen
};

}  // namespace meshkv::node
