// meshkv_bench_converge: benchmarks of real `meshkv node` processes on
// loopback, driven over their control ports. Prints figures, asserts nothing;
// scripts/bench.sh and scripts/bench_convergence.sh read its table rows and
// its --results file, so both formats are kept as they are.
//
// The pieces: converge_main.cc (options, the cluster's start, dispatch),
// cluster.cc (processes, ports, /proc), conn.cc (control connections on
// net::Connection), and one file per mode: latency.cc (the default: writes
// at a steady rate, idle cost, failure detection), throughput.cc,
// join_time.cc, false_positives.cc, full_sync.cc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/control_client.h"
#include "wire/messages.h"

namespace meshkv::bench {

// The options; each field is the option of the same name (see --help).
struct Args {
  std::string bin = "build/meshkv";
  int nodes = 5;
  int writes = 2000;
  int rate = 500;
  double loss = 0;
  int base_port = 0;
  bool detect = true;
  std::string data_dir;   // each node gets DATA_DIR/nI when set
  std::string sync;       // passed as --sync
  double throughput = 0;  // > 0: closed-loop throughput for this many seconds
  int clients = 16;       // connections per node in throughput mode
  int batch_size = 1;     // writes per request in throughput mode (> 1: `mset`)
  int pipeline = 1;       // requests in flight per connection in throughput mode
  bool incr = false;     // throughput: `incr` of one counter instead of `set` of new keys
  std::string key_file;   // sealed mesh: passed to every node as --key-file
  bool counters = false;  // print the nodes' summed datagram counters to stderr
  std::string latency_file;  // each write's latency in ms, one a line
  std::string results_file;  // every figure as "name value" lines
  std::string log_dir = "/tmp";
  double idle_seconds = 5;
  int settle_ms = 2000;        // pause between the writes and the idle window
  int join_trials = 0;         // > 0: --join-time mode
  double false_positives = 0;  // > 0: --false-positives mode, seconds
  long full_sync = 0;          // > 0: --full-sync mode, keys
  long batch_part = 100000;
  double sync_timeout = 120;
  std::string consistency;  // mode: wait-quorum, wait-all or read-quorum
};

// Parses argv into `a`; prints the problem and returns false on a bad option.
// --help prints the usage and exits 0.
bool parse_args(int argc, char** argv, Args& a);

// Milliseconds on the steady clock.
double now_ms();

// A pipelined control connection to one node on 127.0.0.1, sealed when the
// run has a key (net::set_client_key). Requests are numbered per
// connection; the node answers them in order.
class Conn {
 public:
  // Connects; false (quietly, but for a refused key) when the node is not there.
  bool open(int port);
  int fd() const { return c_ ? c_->fd() : -1; }
  uint64_t last_id() const { return id_; }
  bool closed() const { return closed_; }
  bool send(const std::string& op, wire::Value args);
  // Holds a request back until flush(), which writes all held in one call.
  void queue(const std::string& op, wire::Value args);
  bool flush();
  // What has arrived, without blocking; call when fd() is readable.
  std::vector<wire::CtlResponse> read_some();
  // Sends a request and waits for its response; responses to earlier
  // pipelined requests (the acknowledgements of sets) are skipped.
  std::optional<wire::CtlResponse> call(const std::string& op, wire::Value args, int timeout_ms = 3000);
  // Reads and drops what has arrived, without waiting.
  void drain();

 private:
  std::optional<net::Connection> c_;
  uint64_t id_ = 0;
  bool closed_ = false;
  std::vector<wire::CtlRequest> queued_;
};
using Conns = std::vector<std::unique_ptr<Conn>>;

// Sends `op` to every connection at once, then collects every answer (none
// for a connection that gave none within timeout_ms): one round trip for the
// whole mesh rather than one per node.
std::vector<std::optional<wire::CtlResponse>> call_all(Conns& conns, const std::string& op, int timeout_ms = 5000);

// One node's datagram counters (status), for byte accounting.
struct NodeCounters {
  bool ok = false;
  uint64_t sent = 0, received = 0, bytes_sent = 0, bytes_received = 0, pending = 0, keys = 0;
  uint64_t retransmits = 0;
};
std::vector<NodeCounters> counters_all(Conns& conns);
NodeCounters sum(const std::vector<NodeCounters>& v);
// The nodes' datagram counters, summed, on stderr (--counters).
void print_counters(Conns& ctl, const char* label);
// The state `name` has in a peers answer ("" if absent).
std::string state_of(const wire::CtlResponse& r, const std::string& name);

// Every figure of the run, written as "name value" lines to --results FILE.
struct Results {
  std::vector<std::pair<std::string, std::string>> kv;
  void put(const std::string& k, const std::string& v) { kv.emplace_back(k, v); }
  void num(const std::string& k, double v);
  void count(const std::string& k, uint64_t v) { put(k, std::to_string(v)); }
  // True when written, or when there is no path.
  bool write(const std::string& path) const;
};

struct Node {
  pid_t pid = 0;
  int port = 0;
  std::string name;
};

// CPU time and resident memory of a process, from /proc.
struct Usage {
  double cpu_s = 0;
  long rss_kb = 0;
};
Usage usage(pid_t pid);

// The running benchmark: its nodes n0..n(N-1) on ports base.., a control
// connection to each, and the figures gathered so far.
struct Cluster {
  explicit Cluster(const Args& args) : a(args) {}

  const Args& a;
  int base = 0;
  std::vector<Node> nodes;
  Conns ctl;
  Results res;
};

// A free block of `n` loopback ports (UDP and TCP), below the ephemeral range.
int free_base_port(int n);
std::string log_path(const Args& a, pid_t bench, int i);
// Starts node nI (joining n0 unless it is n0) with its log in log_path().
pid_t spawn(const Args& a, int i, int base);
// SIGTERM (the node leaves the mesh), SIGKILL after 5 s.
void stop(pid_t pid);
// SIGKILL of every node still running.
void kill_all(Cluster& c);
// Runs `meshkv set --batch FILE` against one node; its exit code.
int run_batch(const Args& a, const std::string& file, int port);
// kill -9 of the last node; the time until every other node shows it dead
// (all asked at once, about every 10 ms), -1 if not within 20 s.
double detect_kill(Cluster& c);
// The p-quantile (0..1) of `v`, 0 for none.
double pct(std::vector<double> v, double p);

// The modes. Each prints its table row to stdout, adds its figures to
// c.res, and returns the exit status.
int run_latency(Cluster& c);
int run_throughput(Cluster& c);
int run_join_time(Cluster& c);
int run_false_positives(Cluster& c);
int run_full_sync(Cluster& c);
int run_consistency(Cluster& c);
// Each latency in ms, one a line (nothing when `path` is empty).
void write_latency_file(const std::string& path, const std::vector<double>& lat);

}  // namespace meshkv::bench
