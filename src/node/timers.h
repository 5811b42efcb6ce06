// Internal to src/node: the engine's timers, as data. Each component sets
// and cancels its own (kind, key) timers when its deadlines change; the
// earliest one is what the driver is asked to tick at (the Timer effect).
//
// A min-heap with lazy deletion: moving or cancelling a timer leaves its old
// entry in the heap, recognised as stale by the value it was set with and
// dropped when it reaches the top.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

#include "node/effects.h"

namespace meshkv::node {

class Timers {
 public:
  // Sets timer (kind, key) to `at_us`, moving it if it was set.
  void set(TimerKind kind, uint64_t key, uint64_t at_us);
  // set(), or cancel() when `at_us` is empty.
  void set(TimerKind kind, uint64_t key, std::optional<uint64_t> at_us);
  void cancel(TimerKind kind, uint64_t key);
  // The earliest timer set; nothing when none is.
  std::optional<Timer> next();

 private:
  struct Entry {
    uint64_t at_us;
    TimerKind kind;
    uint64_t key;
    friend bool operator>(const Entry& a, const Entry& b) {
      return std::tie(a.at_us, a.kind, a.key) > std::tie(b.at_us, b.kind, b.key);
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::map<std::pair<TimerKind, uint64_t>, uint64_t> live_;  // -> at_us
};

}  // namespace meshkv::node
