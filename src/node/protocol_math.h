// Protocol math as pure functions: timeouts, backoff, fan-out. Tested with
// tables in tests/protocol_math_test.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace meshkv::node {

// How long a suspect has to refute before it is declared dead (us):
// mult * probe_interval * max(1, log10(n + 1)), so larger meshes, where news
// takes more hops to reach the suspect, wait longer.
inline uint64_t suspicion_timeout_us(unsigned mult, uint64_t probe_interval_ms, size_t members) {
  const double scale = std::max(1.0, std::log10(static_cast<double>(members) + 1.0));
  return static_cast<uint64_t>(mult * static_cast<double>(probe_interval_ms) * scale * 1000.0);
}

// How many times a membership update is gossiped: 4 * ceil(log10(n + 1)),
// at least 4, so it reaches every member with high probability under loss.
inline unsigned gossip_transmits(size_t members) {
  const double l = std::ceil(std::log10(static_cast<double>(members) + 1.0));
  return static_cast<unsigned>(4 * std::max(1.0, l));
}

// Smoothed RTT and retransmission timeout in the manner of TCP (RFC 6298),
// clamped for a protocol whose messages are tiny: the floor keeps loopback
// from retransmitting on scheduling jitter, the ceiling keeps recovery quick.
class RttEstimator {
 public:
  static constexpr uint64_t kMinRtoUs = 10'000;
  static constexpr uint64_t kMaxRtoUs = 1'000'000;
  static constexpr uint64_t kInitialRtoUs = 50'000;
  static constexpr uint64_t kMaxBackoff = 2;

  void sample(uint64_t rtt_us) {
    const double r = static_cast<double>(rtt_us);
    if (!has_) {
      srtt_ = r;
      var_ = r / 2;
      has_ = true;
    } else {
      var_ = 0.75 * var_ + 0.25 * std::abs(srtt_ - r);
      srtt_ = 0.875 * srtt_ + 0.125 * r;
    }
    backoff_ = 1;
  }
  // A retransmission timer expired for a message first sent at `sent_us`
  // (RFC 6298, 5.5): the RTO doubles, once per round of expiries (messages
  // sent since the last doubling), until the next sample.
  // Without it a round trip longer than the RTO was never measured: Karn's
  // rule discards the samples of retransmitted messages, every push was
  // retransmitted (three times each over a 100 ms round trip against the
  // initial 50 ms), and the RTO stayed where it was.
  //
  // It doubles once at most. At 30 % loss an expiry is mostly a loss,
  // samples are rare between members that exchange a push every half second
  // (N=64), and an RTO backed off up to its ceiling made every retry wait
  // (write-to-all at N=64, 30 % loss: p50 202-231 ms and p99 1.2 s, against
  // 84-86 ms and 0.65-0.82 s with one doubling). A round trip longer than
  // twice the RTO is measured by the answers to greetings and probes, which
  // are never retransmitted.
  void expired(uint64_t sent_us, uint64_t now_us) {
    if (sent_us < backoff_since_us_) return;  // this round has doubled it already
    backoff_since_us_ = now_us;
    if (backoff_ < kMaxBackoff) backoff_ *= 2;
  }
  bool has_sample() const { return has_; }
  uint64_t srtt_us() const { return static_cast<uint64_t>(srtt_); }
  uint64_t rto_us() const {
    const uint64_t rto = has_ ? static_cast<uint64_t>(srtt_ + 4 * var_) : kInitialRtoUs;
    return std::clamp(rto * backoff_, kMinRtoUs, kMaxRtoUs);
  }

 private:
  bool has_ = false;
  double srtt_ = 0, var_ = 0;
  uint64_t backoff_ = 1;           // the RTO's multiplier since the last sample
  uint64_t backoff_since_us_ = 0;  // when it last doubled
};

// Timeout before retransmission number `attempt` (1 = first retransmission):
// exponential backoff from the RTO, capped so that a burst of loss is
// recovered from within a fraction of a second.
inline uint64_t backoff_us(uint64_t rto_us, unsigned attempt) {
  constexpr uint64_t kCapUs = 250'000;
  const unsigned shift = std::min(attempt > 0 ? attempt - 1 : 0u, 16u);
  return std::min(rto_us << shift, std::max(kCapUs, rto_us));
}

// The clock-offset guard's verdict on this node's wall clock, from the
// offsets (peer's wall clock minus ours, ms) of the peers with a current
// estimate. This node's clock is judged wrong when it is further than
// `limit_ms` from more than half of them, and at least two: with one peer
// either clock could be the wrong one; with a majority against it, it is
// the one wrong clock that stops, not the nodes that see it. limit_ms 0:
// never judged wrong.
struct ClockVerdict {
  size_t judged = 0;     // peers with a current estimate
  size_t beyond = 0;     // of them, further than the limit from this node
  int64_t ahead_ms = 0;  // this node ahead of those beyond (median; negative: behind)
  bool wrong = false;
};

inline ClockVerdict judge_clock(std::vector<double> peer_offsets_ms, uint64_t limit_ms) {
  ClockVerdict v;
  v.judged = peer_offsets_ms.size();
  std::vector<double> beyond;
  for (double off : peer_offsets_ms) {
    if (std::abs(off) > static_cast<double>(limit_ms)) beyond.push_back(-off);
  }
  v.beyond = beyond.size();
  if (!beyond.empty()) {
    std::sort(beyond.begin(), beyond.end());
    // Clamped: a peer's clock reading is whatever it sent (a century is plenty).
    v.ahead_ms = std::llround(std::clamp(beyond[beyond.size() / 2], -3.2e12, 3.2e12));
  }
  v.wrong = limit_ms != 0 && v.judged >= 2 && 2 * v.beyond > v.judged;
  return v;
}

}  // namespace meshkv::node
