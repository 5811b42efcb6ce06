// Backpressure (issue 19): the answer to a local write is held while the
// push queue toward a member that takes writes is full, so that a client
// writing in a closed loop goes at the pace the members acknowledge pushes.
// Without it a batched writer outran replication: the queue (4096 pushes per
// member) overflowed, its oldest pushes were dropped, and anti-entropy
// repaired the rest for tens of seconds after the writes stopped.
//
// Engine state with deadlines, like the waits of node/consistency.cc, so the
// simulator drives it exactly as the Asio shell does.
#include <algorithm>

#include "node/consistency.h"
#include "node/engine_impl.h"

namespace meshkv::node {

uint64_t Engine::hold_write(uint64_t hold_ms, wire::CtlResponse& done, Now now) {
  Impl& s = *impl_;
  s.now = now;
  if (hold_ms == 0 || !s.replication.congested()) return 0;
  if (s.holds.size() >= kMaxWaits) {
    // Holding answers must not grow without bound either; the write stands
    // and its push waits in the queue (or, past its bound, anti-entropy).
    ++s.backpressure.not_held;
    return 0;
  }
  Impl::Held h;
  h.start_us = now.mono_us;
  h.deadline_us = now.mono_us + std::min(hold_ms, kMaxWaitMs) * 1000;
  h.done = std::move(done);
  const uint64_t id = s.next_wait_id++;
  s.timers.set(TimerKind::kBackpressure, id, h.deadline_us);
  s.holds.emplace(id, std::move(h));
  ++s.backpressure.writes_slowed;
  return id;
}

void Engine::Impl::settle_holds() {
  const bool congested = replication.congested();
  for (auto it = holds.begin(); it != holds.end();) {
    Held& h = it->second;
    if (congested && now.mono_us < h.deadline_us) {
      ++it;
      continue;
    }
    if (congested) ++backpressure.slowed_to_deadline;
    const uint64_t ms = (now.mono_us - h.start_us) / 1000;
    backpressure.slowed_ms += ms;
    h.done.body.set("slowed_ms", ms);
    timers.cancel(TimerKind::kBackpressure, it->first);
    out.reply({it->first, std::move(h.done)});
    it = holds.erase(it);
  }
}

wire::Value Engine::Impl::backpressure_view() const {
  wire::Value v = wire::Value::object();
  v.set("writes_slowed", backpressure.writes_slowed);
  v.set("slowed_ms", backpressure.slowed_ms);
  v.set("slowed_to_deadline", backpressure.slowed_to_deadline);
  v.set("not_held", backpressure.not_held);
  v.set("held", static_cast<uint64_t>(holds.size()));
  v.set("queue_max", static_cast<uint64_t>(replication.congestion()));
  v.set("congested_at", static_cast<uint64_t>(Replication::kCongestedAt));
  return v;
}

}  // namespace meshkv::node
