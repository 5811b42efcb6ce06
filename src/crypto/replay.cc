#include "crypto/replay.h"

namespace meshkv::crypto {

bool ReplayWindow::check(uint64_t counter) const {
  if (counter == 0) return false;
  if (counter > highest_) return true;
  // The window holds highest_ - kWindow + 1 .. highest_; below it a
  // duplicate could not be detected, so the counter is refused.
  if (highest_ - counter >= kWindow) return false;
  return !seen(counter);
}

void ReplayWindow::commit(uint64_t counter) {
  if (counter == 0) return;
  if (counter > highest_) {
    const uint64_t advance = counter - highest_;
    if (advance >= kWindow) {
      bits_.fill(0);  // every remembered counter falls out of the window
    } else {
      // Clear the slots of highest_+1 .. counter, which still hold counters
      // kWindow older: whole words where possible, for most of a long jump.
      // Counted down by `left` rather than compared against `counter`, which
      // may be the largest uint64_t.
      uint64_t c = highest_ + 1;
      uint64_t left = advance;
      while (left > 0) {
        if (c % 64 == 0 && left >= 64) {
          bits_[(c / 64) % kWords] = 0;
          c += 64;
          left -= 64;
        } else {
          bits_[(c / 64) % kWords] &= ~(uint64_t{1} << (c % 64));
          ++c;
          --left;
        }
      }
    }
    highest_ = counter;
  } else if (highest_ - counter >= kWindow) {
    return;  // too old to remember; check() refuses it anyway
  }
  mark(counter);
}

}  // namespace meshkv::crypto
