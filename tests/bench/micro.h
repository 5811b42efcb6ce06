// meshkv_bench: micro-benchmarks of the hot paths (CRDT merge, delta
// extraction, the wire codec). Prints figures; asserts nothing.
//
// Every figure is measured several times with std::chrono::steady_clock; the
// table shows the best run (least time) and the median. Inputs are built
// before the clock starts, and results feed a checksum (consume()) so the
// optimizer cannot drop the work.
//
// micro_main.cc runs the groups and prints; micro_table.cc keeps the rows;
// micro_crdt.cc measures merge and delta, micro_codec.cc the codec.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "crdt/entry.h"

namespace meshkv::bench::micro {

using Clock = std::chrono::steady_clock;

// Folds `v` into the checksum printed at the end.
void consume(uint64_t v);
uint64_t checksum();
double seconds_since(Clock::time_point t0);

struct Stats {
  double best = 0;    // least time, seconds
  double median = 0;  // seconds
  size_t runs = 0;
};
Stats stats_of(std::vector<double> t);

// A rate row: `work` units per run, converted from run times and divided by
// `scale`; an aim > 0 is a floor judged on the median.
void add_rate(std::string name, std::string unit, double work, const Stats& s, double scale, double aim,
              std::string note);
// A latency row: run times divided by `scale` (1e-6 for us, 1e-3 for ms); an
// aim > 0 is a ceiling judged on the median.
void add_time(std::string name, std::string unit, const Stats& s, double scale, double aim, std::string note);
void print_table();
void print_markdown();

constexpr uint64_t kBaseMs = 1'700'000'000'000;  // Nov 2023, in ms
// Late enough that no timestamp below is "in the future" for the clock.
constexpr uint64_t kNowMs = kBaseMs + 10'000'000;
constexpr crdt::Origin kOrigins[4] = {0x1111'0000'0000'0001, 0x2222'0000'0000'0002, 0x3333'0000'0000'0003,
                                      0x4444'0000'0000'0004};
// `n` letters drawn from `salt`.
std::string fixed_value(size_t n, uint64_t salt);

void bench_merge(int reps);
void bench_delta(int reps);
void bench_codec(int reps);

}  // namespace meshkv::bench::micro
