// Hybrid Logical Clock.
//
// A timestamp packs 48 bits of physical milliseconds since the Unix epoch
// (good until the year 10889) above 16 bits of logical counter, so that
// comparing the packed integers compares (physical, logical) lexicographically.
//
// The clock guarantees: every timestamp it issues is greater than every
// timestamp it issued or observed before, as long as observed timestamps are
// within `max_skew_ms` of the local physical clock. A remote timestamp further
// ahead than that is not adopted (it would drag this node's clock into the
// future); `skew_rejections()` counts such cases. Entries carrying it are still
// merged, so replicas converge regardless.
#pragma once

#include <compare>
#include <cstdint>

namespace meshkv::crdt {

struct Hlc {
  uint64_t raw = 0;

  static constexpr int kLogicalBits = 16;
  static constexpr uint64_t kLogicalMask = (uint64_t{1} << kLogicalBits) - 1;
  static constexpr uint64_t kMaxPhysical = (uint64_t{1} << (64 - kLogicalBits)) - 1;

  static constexpr Hlc make(uint64_t physical_ms, uint64_t logical) {
    return Hlc{(physical_ms << kLogicalBits) | (logical & kLogicalMask)};
  }
  constexpr uint64_t physical() const { return raw >> kLogicalBits; }
  constexpr uint64_t logical() const { return raw & kLogicalMask; }
  friend constexpr auto operator<=>(Hlc, Hlc) = default;
};

class HlcClock {
 public:
  explicit HlcClock(uint64_t max_skew_ms = 60'000) : max_skew_ms_(max_skew_ms) {}

  // A timestamp for a local event at physical time `phys_ms`.
  Hlc now(uint64_t phys_ms);
  // Folds a received timestamp into the clock. Returns false (and counts) when
  // `remote` is more than max_skew ahead of `phys_ms` and was not adopted.
  bool observe(Hlc remote, uint64_t phys_ms);

  Hlc last() const { return last_; }
  // Restores a persisted clock so a restart never goes back in time.
  void restore(Hlc last) { if (last > last_) last_ = last; }
  uint64_t skew_rejections() const { return skew_rejections_; }
  uint64_t max_skew_ms() const { return max_skew_ms_; }
  // Counts observed timestamps more than `ms` ahead of the physical clock
  // (0: none counted), adopted or not: the clock-offset guard's bound.
  void count_ahead_of(uint64_t ms) { ahead_ms_ = ms; }
  uint64_t ahead_observed() const { return ahead_observed_; }

 private:
  Hlc last_{};
  uint64_t max_skew_ms_;
  uint64_t skew_rejections_ = 0;
  uint64_t ahead_ms_ = 0;
  uint64_t ahead_observed_ = 0;
};

}  // namespace meshkv::crdt
