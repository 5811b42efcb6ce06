// meshkv_bench_converge: real `meshkv node` processes on loopback. Prints
// figures, asserts nothing.
//
//   meshkv_bench_converge --bin build/meshkv --nodes 5 --writes 2000 --rate 500 --loss 0.3
//
// Starts N nodes, waits until each sees all others alive, checks that they
// are sealed exactly when the run has --key-file, then runs one mode (see
// converge.h for the files, --help for the options):
//   (default)            latency.cc: writes at a steady rate through random
//                        nodes; latency until the last node applied each;
//                        idle CPU, memory and traffic; failure detection.
//   --throughput S       throughput.cc: closed-loop clients, then the time
//                        until every node holds every acknowledged write.
//   --join-time K        join_time.cc: K joins through n0, each timed until
//                        every node's peers shows the new node alive.
//   --false-positives S  false_positives.cc: S seconds with no node stopped;
//                        members declared dead anyway; then detection.
//   --full-sync KEYS     full_sync.cc: KEYS keys loaded, then the time until
//                        a new node's status shows them all.
//   --consistency MODE   consistency.cc: set --wait quorum|all or get --read
//                        quorum, one at a time; each one's latency.
// Every figure goes, as "name value" lines, to --results FILE when given.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/converge.h"
#include "crypto/keys.h"

using namespace meshkv;
using namespace meshkv::bench;

namespace {

int alive_count(Conn& c) {
  auto r = c.call("peers", wire::Value::object());
  if (!r) return -1;
  int n = 0;
  // peers lists the node itself too (first, "self": true): not counted.
  for (const auto& m : r->body.get("members").as_list()) {
    n += m.get("state").as_string() == "alive" && !m.get("self").as_bool();
  }
  return n;
}

// Starts the nodes and opens a control connection to each; false (said on
// stderr) when one does not answer within 5 s.
bool start(Cluster& c) {
  const Args& a = c.a;
  for (int i = 0; i < a.nodes; ++i) {
    c.nodes.push_back({spawn(a, i, c.base), c.base + i, "n" + std::to_string(i)});
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    auto conn = std::make_unique<Conn>();
    for (int t = 0; t < 100 && !conn->open(c.nodes[i].port); ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (conn->fd() < 0) {
      std::fprintf(stderr, "node %s did not start (see %s)\n", c.nodes[i].name.c_str(),
                   log_path(a, getpid(), static_cast<int>(i)).c_str());
      return false;
    }
    c.ctl.push_back(std::move(conn));
  }
  return true;
}

// Until every node sees the N-1 others alive, at most 30 s.
bool wait_membership(Cluster& c) {
  const double t0 = now_ms();
  bool joined = false;
  while (now_ms() - t0 < 30'000 && !joined) {
    joined = true;
    for (auto& conn : c.ctl) joined = joined && alive_count(*conn) == c.a.nodes - 1;
    if (!joined) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!joined) {
    std::fprintf(stderr, "membership did not converge within 30 s\n");
    return false;
  }
  c.res.num("membership_ms", now_ms() - t0);
  return true;
}

// Whether every node is sealed exactly when this run has a key, asked
// through net::call, so that a "sealed" row can never be measured on an
// unsealed mesh or the reverse.
bool check_sealed(const Cluster& c) {
  for (const auto& n : c.nodes) {
    auto ep = Endpoint::parse("127.0.0.1:" + std::to_string(n.port));
    auto r = net::call(*ep, wire::CtlRequest{1, "status", wire::Value::object()});
    if (!r.ok()) {
      std::fprintf(stderr, "bench: status of %s: %s\n", n.name.c_str(), r.status().to_string().c_str());
      return false;
    }
    const bool sealed = r->body.get("security").get("sealed").as_bool();
    if (sealed != net::has_client_key()) {
      const char* run = net::has_client_key() ? "sealed" : "not sealed";
      std::fprintf(stderr, "bench: node %s is %s, but the run is %s\n", n.name.c_str(),
                   sealed ? "sealed" : "not sealed", run);
      return false;
    }
  }
  return true;
}

int run_mode(Cluster& c) {
  const Args& a = c.a;
  if (a.throughput > 0) return run_throughput(c);
  if (a.join_trials > 0) return run_join_time(c);
  if (a.false_positives > 0) return run_false_positives(c);
  if (a.full_sync > 0) return run_full_sync(c);
  if (!a.consistency.empty()) return run_consistency(c);
  return run_latency(c);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse_args(argc, argv, a)) return 2;
  if (!a.key_file.empty()) {
    auto key = crypto::load_cluster_key(a.key_file);
    if (!key.ok()) {
      std::fprintf(stderr, "bench: %s\n", key.status().to_string().c_str());
      return 2;
    }
    net::set_client_key(*key);
  }
  Cluster c(a);
  // Joiners take the ports after the cluster's.
  const int extra = a.join_trials > 0 ? a.join_trials : a.full_sync > 0 ? 1 : 0;
  c.base = a.base_port ? a.base_port : free_base_port(a.nodes + extra);
  c.res.count("nodes", static_cast<uint64_t>(a.nodes));
  c.res.num("loss", a.loss);
  if (!start(c) || !wait_membership(c) || !check_sealed(c)) {
    kill_all(c);
    return 1;
  }
  const int rc = run_mode(c);
  kill_all(c);
  if (!c.res.write(a.results_file)) {
    std::fprintf(stderr, "bench: cannot write %s\n", a.results_file.c_str());
    return 1;
  }
  return rc;
}
