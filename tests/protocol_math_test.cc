// Table tests of the protocol's pure functions.
#include <doctest/doctest.h>

#include <algorithm>

#include "node/protocol_math.h"
#include "node/seq_window.h"

using namespace meshkv::node;

TEST_CASE("protocol math: suspicion timeout grows with log10 of the mesh size") {
  struct Row { unsigned mult; uint64_t interval_ms; size_t n; uint64_t want_us; };
  const Row rows[] = {
      {4, 250, 1, 1'000'000},    // log10(2) < 1: floor of 1
      {4, 250, 5, 1'000'000},    // log10(6) < 1
      {4, 250, 9, 1'000'000},    // log10(10) == 1
      {4, 250, 99, 2'000'000},   // log10(100) == 2
      {2, 1000, 999, 6'000'000}, // log10(1000) == 3
  };
  for (const Row& r : rows) {
    CAPTURE(r.n);
    CHECK(suspicion_timeout_us(r.mult, r.interval_ms, r.n) == r.want_us);
  }
}

TEST_CASE("protocol math: gossip transmits are 4 * ceil(log10(n + 1)), at least 4") {
  CHECK(gossip_transmits(1) == 4);
  CHECK(gossip_transmits(9) == 4);
  CHECK(gossip_transmits(10) == 8);
  CHECK(gossip_transmits(100) == 12);
  CHECK(gossip_transmits(1000) == 16);
}

TEST_CASE("protocol math: RTO starts conservative, follows samples, stays clamped") {
  RttEstimator r;
  CHECK(r.rto_us() == RttEstimator::kInitialRtoUs);
  r.sample(100);  // loopback: 100 us
  CHECK(r.rto_us() == RttEstimator::kMinRtoUs);
  for (int i = 0; i < 50; ++i) r.sample(200'000);
  CHECK(r.srtt_us() > 190'000);
  CHECK(r.rto_us() >= 200'000);
  for (int i = 0; i < 50; ++i) r.sample(10'000'000);
  CHECK(r.rto_us() == RttEstimator::kMaxRtoUs);
}

TEST_CASE("protocol math: expiries double the RTO once, until the next sample") {
  // At 30 % loss an expiry is mostly a loss: backing off to the ceiling
  // made every retry at N=64 wait (p50 202-231 ms, against 84-86 ms).
  RttEstimator fresh;  // no round trip yet: 50 ms, then 100 ms
  for (uint64_t round = 1; round <= 6; ++round) fresh.expired(round * 1000, round * 1000 + 1);
  CHECK(fresh.rto_us() == 2 * RttEstimator::kInitialRtoUs);
  RttEstimator r;
  r.sample(20'000);
  const uint64_t base = r.rto_us();
  r.expired(1000, 1001);
  CHECK(r.rto_us() == 2 * base);
  for (uint64_t round = 2; round <= 6; ++round) r.expired(round * 1000, round * 1000 + 1);
  CHECK(r.rto_us() == 2 * base);
  r.sample(20'000);  // a sample ends the back-off
  CHECK(r.rto_us() < 2 * base);
  // A long round trip is learnt from a sample (a probe's or a greeting's
  // answer), not from backing off.
  r.sample(300'000);
  CHECK(r.rto_us() > 50'000);
}

TEST_CASE("protocol math: backoff doubles per attempt up to a cap") {
  struct Row { uint64_t rto; unsigned attempt; uint64_t want; };
  const Row rows[] = {
      {10'000, 1, 10'000}, {10'000, 2, 20'000}, {10'000, 3, 40'000},
      {10'000, 5, 160'000}, {10'000, 6, 250'000}, {10'000, 60, 250'000},
      {400'000, 1, 400'000}, {400'000, 3, 400'000},  // an RTO above the cap is kept
  };
  for (const Row& r : rows) {
    CAPTURE(r.attempt);
    CHECK(backoff_us(r.rto, r.attempt) == r.want);
  }
}

TEST_CASE("seq window: new seqs pass once, duplicates and very old seqs do not") {
  SeqWindow w;
  CHECK(w.check_and_mark(5));
  CHECK_FALSE(w.check_and_mark(5));
  CHECK(w.check_and_mark(3));
  CHECK(w.check_and_mark(4));
  CHECK_FALSE(w.check_and_mark(3));
  CHECK(w.check_and_mark(5 + SeqWindow::kWidth + 10));
  CHECK_FALSE(w.check_and_mark(4));  // fell out of the window: treated as seen
}

TEST_CASE("protocol math: the clock guard stops the one clock most peers disagree with") {
  struct Row {
    std::vector<double> offsets;  // each peer's clock minus ours
    uint64_t limit;
    size_t beyond;
    int64_t ahead;
    bool wrong;
  };
  const Row rows[] = {
      {{}, 500, 0, 0, false},                          // alone: nothing to judge by
      {{-3'600'000}, 500, 1, 3'600'000, false},        // one peer: either clock may be wrong
      {{-3'600'012, -3'599'990}, 500, 2, 3'600'012, true},  // b an hour ahead of a and c
      {{3'600'000, 0}, 500, 1, -3'600'000, false},     // a sees b ahead: 1 of 2 is no majority
      {{-600, -700, 10}, 500, 2, 700, true},           // 2 of 3
      {{-600, 10, 20, 5}, 500, 1, 600, false},         // 1 of 4
      {{-600, -700, 10, 5}, 500, 2, 700, false},       // 2 of 4: a tie is no majority
      {{-500, 500}, 500, 0, 0, false},                 // at the limit is within it
      {{4'000, 5'000}, 500, 2, -4'000, true},          // behind both: wrong too
      {{-3'600'000, -3'600'000}, 0, 2, 3'600'000, false},  // limit 0: the guard is off
      {{1.8e19, 1.8e19}, 500, 2, -3'200'000'000'000, true},  // a reading of 2^64 ms is clamped
  };
  for (const Row& r : rows) {
    CAPTURE(r.offsets.size());
    CAPTURE(r.limit);
    const ClockVerdict v = judge_clock(r.offsets, r.limit);
    CHECK(v.judged == r.offsets.size());
    CHECK(v.beyond == r.beyond);
    CHECK(v.ahead_ms == r.ahead);
    CHECK(v.wrong == r.wrong);
  }
}
