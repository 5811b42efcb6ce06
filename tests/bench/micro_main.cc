// meshkv_bench: micro-benchmarks of the hot paths (micro.h). Prints figures;
// asserts nothing and always exits 0.
//
//   meshkv_bench [--markdown] [--reps N] [--only merge|delta|codec]
//
// Meant for a Release build (-O2 -DNDEBUG); about 20 s on an idle 2-core
// machine, about 40 s when another build shares it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <thread>

#include "bench/micro.h"

using namespace meshkv::bench::micro;

namespace {

// The 1-minute load average (Linux), or a negative number when unknown. Read
// before the work starts; it reflects the minute before.
double load_average() {
  double v = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1;
    std::fclose(f);
  }
  return v;
}

int usage(const char* argv0) {
  std::printf(
      "usage: %s [--markdown] [--reps N] [--only merge|delta|codec]\n"
      "  --markdown  also print the results as a Markdown table\n"
      "  --reps N    repetitions of the long measurements (default 5)\n"
      "  --only X    run one group only\n",
      argv0);
  return 0;
}

void print_header(int reps) {
  std::printf("meshkv micro-benchmarks\n");
  std::printf("hardware_concurrency: %u\n", std::thread::hardware_concurrency());
#ifdef NDEBUG
  std::printf("build: Release (NDEBUG defined)");
#else
  std::printf("build: WARNING: NDEBUG is not defined; this is not a Release build and the "
              "figures mean little");
#endif
#ifndef __OPTIMIZE__
  std::printf(" -- WARNING: compiled without optimization");
#endif
  std::printf("\nrepetitions: %d (best = least time; aims are judged on the median)\n", reps);
  if (const double la = load_average(); la >= 0) {
    std::printf("load average (1 min) before start: %.2f%s\n", la,
                la > 0.5 ? "  (WARNING: the machine is busy; figures may be pessimistic)" : "");
  }
  std::printf("\n");
  std::fflush(stdout);
}

// Every measurement is single-threaded: CPU time well below wall time means
// other processes took the core away and the figures are pessimistic.
void print_footer(Clock::time_point t0, std::clock_t cpu0) {
  const double wall = seconds_since(t0);
  const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  std::printf("\nCPU time / wall time: %.0f%%%s\n", wall > 0 ? 100 * cpu / wall : 0.0,
              cpu < 0.9 * wall ? "  (WARNING: other processes competed for the CPU; the figures "
                                 "are pessimistic)"
                               : "");
  std::printf("total %.1f s (checksum %llu)\n", seconds_since(t0), static_cast<unsigned long long>(checksum()));
}

}  // namespace

int main(int argc, char** argv) {
  bool markdown = false;
  int reps = 5;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--markdown") {
      markdown = true;
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      return usage(argv[0]);
    }
  }
  print_header(reps);
  const auto t0 = Clock::now();
  const std::clock_t cpu0 = std::clock();
  if (only.empty() || only == "merge") bench_merge(reps);
  if (only.empty() || only == "delta") bench_delta(reps);
  if (only.empty() || only == "codec") bench_codec(reps);
  std::printf("\n");
  print_table();
  if (markdown) {
    std::printf("\n");
    print_markdown();
  }
  print_footer(t0, cpu0);
  return 0;
}
