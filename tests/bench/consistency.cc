// --consistency MODE (issue 17): the latency a client sees for a write that
// waits (wait-quorum, wait-all: `set` with wait) or for a quorum read
// (read-quorum: `get` with read quorum), one request at a time through a
// random node, --writes of them. Each is timed from sending the request to
// its answer; a request answered with an error (a wait that timed out, a
// read too few answered) counts as failed and its time is kept.
//
// Closed loop and one at a time, unlike the default mode's open loop at
// --rate: it measures the protocol's latency, not queueing. It starts a
// second after the mesh has formed: until members that learned of each
// other by gossip have greeted each other, a write reaches some of them by
// anti-entropy (the first one or two requests took 50-200 ms at N=16), and
// how soon a mesh forms is the join-time row's to measure.
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

int run_consistency(Cluster& c) {
  const Args& a = c.a;
  const std::string& mode = a.consistency;
  const bool read = mode == "read-quorum";
  const std::string level = mode == "wait-all" ? "all" : "quorum";
  std::mt19937 rng(42);
  constexpr int kKeys = 100;
  constexpr int kTimeoutMs = 10'000;
  if (read) {
    // Keys every node holds before the reads.
    for (int k = 0; k < kKeys; ++k) {
      wire::Value args = wire::Value::object();
      args.set("key", "bench/" + std::to_string(k));
      args.set("value", "value-" + std::to_string(k));
      args.set("wait", "all");
      args.set("timeout_ms", int64_t{kTimeoutMs});
      c.ctl[rng() % c.ctl.size()]->call("set", std::move(args), kTimeoutMs + 2000);
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<double> lat;
  int failed = 0;
  for (int i = 0; i < a.writes; ++i) {
    wire::Value args = wire::Value::object();
    args.set("timeout_ms", int64_t{kTimeoutMs});
    std::string op = "set";
    if (read) {
      op = "get";
      args.set("key", "bench/" + std::to_string(rng() % kKeys));
      args.set("read", level);
    } else {
      args.set("key", "bench/w" + std::to_string(i));
      args.set("value", "value-" + std::to_string(i));
      args.set("wait", level);
    }
    const double t0 = now_ms();
    auto r = c.ctl[rng() % c.ctl.size()]->call(op, std::move(args), kTimeoutMs + 2000);
    lat.push_back(now_ms() - t0);
    if (!r || r->code != wire::kCtlOk) ++failed;
  }
  write_latency_file(a.latency_file, lat);  // in request order
  const double p50 = pct(lat, 0.5), p99 = pct(lat, 0.99), mx = pct(lat, 1.0);
  std::printf("| %s | N=%d, %.0f %% loss, %d requests | p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d failed |\n",
              mode.c_str(), a.nodes, a.loss * 100, a.writes, p50, p99, mx, failed);
  c.res.num("p50_ms", p50);
  c.res.num("p99_ms", p99);
  c.res.num("max_ms", mx);
  c.res.count("failed", static_cast<uint64_t>(failed));
  return 0;
}

}  // namespace meshkv::bench
