#include "node/timers.h"

#include <tuple>

namespace meshkv::node {

const char* timer_name(TimerKind k) {
  switch (k) {
    case TimerKind::kProbe: return "probe";
    case TimerKind::kProbeTimeout: return "probe_timeout";
    case TimerKind::kGossip: return "gossip";
    case TimerKind::kReconnect: return "reconnect";
    case TimerKind::kSuspicion: return "suspicion";
    case TimerKind::kRelay: return "relay";
    case TimerKind::kReap: return "reap";
    case TimerKind::kRetransmit: return "retransmit";
    case TimerKind::kPushHold: return "push_hold";
    case TimerKind::kAntiEntropy: return "anti_entropy";
    case TimerKind::kFollowUp: return "follow_up";
    case TimerKind::kCollect: return "collect";
    case TimerKind::kFragments: return "fragments";
    case TimerKind::kDelayed: return "delayed";
    case TimerKind::kConsistency: return "consistency";
    case TimerKind::kBackpressure: return "backpressure";
  }
  return "?";
}

void Timers::set(TimerKind kind, uint64_t key, uint64_t at_us) {
  auto [it, fresh] = live_.try_emplace({kind, key}, at_us);
  if (!fresh) {
    if (it->second == at_us) return;  // its entry is in the heap already
    it->second = at_us;
  }
  heap_.push({at_us, kind, key});
}

void Timers::set(TimerKind kind, uint64_t key, std::optional<uint64_t> at_us) {
  if (at_us) {
    set(kind, key, *at_us);
  } else {
    cancel(kind, key);
  }
}

void Timers::cancel(TimerKind kind, uint64_t key) { live_.erase({kind, key}); }

std::optional<Timer> Timers::next() {
  // Invariant: every live timer has an entry in the heap with its at_us.
  while (!heap_.empty()) {
    const Entry& top = heap_.top();
    auto it = live_.find({top.kind, top.key});
    if (it != live_.end() && it->second == top.at_us) return Timer{top.at_us, top.kind};
    heap_.pop();
  }
  return std::nullopt;
}

}  // namespace meshkv::node
