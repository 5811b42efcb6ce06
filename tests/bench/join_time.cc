// --join-time K: K times, a new node joins through n0; the time from starting
// its process until every existing node's peers shows it alive (all asked
// at once, about every ms). Each joiner then leaves (SIGTERM) and the next
// starts once every node has seen it go.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

namespace {

// The time from `t0` until every node showed `name` alive, -1 if not
// within 10 s. Each answer counts at the time the round ended: an upper bound.
double known_by_all(Conns& ctl, const std::string& name, double t0) {
  std::vector<double> seen(ctl.size(), -1);
  while (now_ms() - t0 < 10'000) {
    auto rs = call_all(ctl, "peers", 2000);
    const double t = now_ms();
    bool all = true;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (seen[i] < 0 && rs[i] && state_of(*rs[i], name) == "alive") seen[i] = t - t0;
      all = all && seen[i] >= 0;
    }
    if (all) return *std::max_element(seen.begin(), seen.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return -1;
}

// Until no node shows `name` alive, at most 5 s; then a pause.
void wait_gone(Conns& ctl, const std::string& name) {
  const double t0 = now_ms();
  while (now_ms() - t0 < 5000) {
    bool gone = true;
    for (auto& r : call_all(ctl, "peers", 2000)) gone = gone && r && state_of(*r, name) != "alive";
    if (gone) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

double median(const std::vector<double>& sorted) {
  if (sorted.empty()) return -1;
  const size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

void report(Cluster& c, const std::vector<double>& times, int failed) {
  const Args& a = c.a;
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double med = median(sorted);
  const double lo = sorted.empty() ? -1 : sorted.front(), hi = sorted.empty() ? -1 : sorted.back();
  std::string each;
  for (const double t : times) each += (each.empty() ? "" : ",") + std::to_string(static_cast<int>(t + 0.5));
  std::printf("| %d+1 | %d joins | median %.1f ms | min %.1f ms | max %.1f ms | failed %d | %s |\n", a.nodes,
              a.join_trials, med, lo, hi, failed, each.c_str());
  c.res.count("join_trials", static_cast<uint64_t>(a.join_trials));
  c.res.count("join_failed", static_cast<uint64_t>(failed));
  c.res.num("join_ms_median", med);
  c.res.num("join_ms_min", lo);
  c.res.num("join_ms_max", hi);
  c.res.put("join_ms_each", each.empty() ? "-" : each);
}

}  // namespace

int run_join_time(Cluster& c) {
  const Args& a = c.a;
  std::vector<double> times;
  int failed = 0;
  for (int j = 0; j < a.join_trials; ++j) {
    const int idx = a.nodes + j;
    const std::string name = "n" + std::to_string(idx);
    const double t0 = now_ms();
    const pid_t pid = spawn(a, idx, c.base);
    const double known = known_by_all(c.ctl, name, t0);
    if (known < 0) {
      ++failed;
    } else {
      times.push_back(known);
    }
    std::fprintf(stderr, "bench: join %d (%s): %s\n", j + 1, name.c_str(),
                 known < 0 ? "not known by all within 10 s" : (std::to_string(known) + " ms").c_str());
    stop(pid);
    wait_gone(c.ctl, name);
  }
  report(c, times, failed);
  return 0;
}

}  // namespace meshkv::bench
