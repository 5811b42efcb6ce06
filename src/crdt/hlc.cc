#include "crdt/hlc.h"

#include <algorithm>

namespace meshkv::crdt {

namespace {
// Next timestamp strictly after `base` whose physical part is at least `pt`.
// When the logical counter would overflow, borrow one millisecond: time runs
// fractionally ahead, which is harmless, while wrapping would break order.
Hlc advance(Hlc base, uint64_t pt) {
  pt = std::min(pt, Hlc::kMaxPhysical);
  if (pt > base.physical()) return Hlc::make(pt, 0);
  if (base.logical() < Hlc::kLogicalMask) return Hlc{base.raw + 1};
  return Hlc::make(base.physical() + 1, 0);
}
}  // namespace

Hlc HlcClock::now(uint64_t phys_ms) {
  last_ = advance(last_, phys_ms);
  return last_;
}

bool HlcClock::observe(Hlc remote, uint64_t phys_ms) {
  if (ahead_ms_ != 0 && remote.physical() > phys_ms + ahead_ms_) ++ahead_observed_;
  if (remote.physical() > phys_ms + max_skew_ms_) {
    ++skew_rejections_;
    return false;
  }
  if (remote > last_) last_ = remote;
  return true;
}

}  // namespace meshkv::crdt
