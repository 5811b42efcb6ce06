// The options of meshkv_bench_converge: one table, from which --help is made.
// Every option takes a value ("--detect 0"), as scripts/bench.sh passes them.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "bench/converge.h"

namespace meshkv::bench {

namespace {

struct Option {
  const char* name;
  const char* value;
  const char* help;
  void (*set)(Args&, const std::string&);
};

constexpr Option kOptions[] = {
    {"--bin", "PATH", "the meshkv binary (build/meshkv)", [](Args& a, const std::string& v) { a.bin = v; }},
    {"--nodes", "N", "nodes in the mesh (5)", [](Args& a, const std::string& v) { a.nodes = std::stoi(v); }},
    {"--writes", "K", "writes of the latency test (2000)", [](Args& a, const std::string& v) { a.writes = std::stoi(v); }},
    {"--rate", "R", "writes per second (500)", [](Args& a, const std::string& v) { a.rate = std::stoi(v); }},
    {"--loss", "P", "share of datagrams every node drops as it sends (0)",
     [](Args& a, const std::string& v) { a.loss = std::stod(v); }},
    {"--base-port", "PORT", "first port (a free block by default)",
     [](Args& a, const std::string& v) { a.base_port = std::stoi(v); }},
    {"--detect", "0|1", "measure failure detection after the latency test (1)",
     [](Args& a, const std::string& v) { a.detect = v != "0"; }},
    {"--data-dir", "DIR", "durable nodes, node nI in DIR/nI", [](Args& a, const std::string& v) { a.data_dir = v; }},
    {"--sync", "POLICY", "passed to every node as --sync", [](Args& a, const std::string& v) { a.sync = v; }},
    {"--throughput", "S", "mode: closed-loop replicated write throughput for S seconds",
     [](Args& a, const std::string& v) { a.throughput = std::stod(v); }},
    {"--clients", "C", "throughput: connections per node (16)",
     [](Args& a, const std::string& v) { a.clients = std::stoi(v); }},
    {"--batch-size", "K", "throughput: writes per request, > 1 sends mset (1)",
     [](Args& a, const std::string& v) { a.batch_size = std::stoi(v); }},
    {"--pipeline", "P", "throughput: requests in flight per connection, sent together (1)",
     [](Args& a, const std::string& v) { a.pipeline = std::stoi(v); }},
    {"--incr", "0|1", "throughput: every request increments one counter, tp/hits (0)",
     [](Args& a, const std::string& v) { a.incr = v != "0"; }},
    {"--key-file", "FILE", "a cluster key: nodes and control connections sealed",
     [](Args& a, const std::string& v) { a.key_file = v; }},
    {"--counters", "0|1", "print the nodes' summed datagram counters to stderr (0)",
     [](Args& a, const std::string& v) { a.counters = v != "0"; }},
    {"--latency-file", "FILE", "each write's latency in ms, one a line",
     [](Args& a, const std::string& v) { a.latency_file = v; }},
    {"--results", "FILE", "every figure as \"name value\" lines",
     [](Args& a, const std::string& v) { a.results_file = v; }},
    {"--log-dir", "DIR", "where the nodes' logs go (/tmp)", [](Args& a, const std::string& v) { a.log_dir = v; }},
    {"--idle-seconds", "S", "the idle window after the writes (5)",
     [](Args& a, const std::string& v) { a.idle_seconds = std::stod(v); }},
    {"--settle-ms", "MS", "pause between the writes and the idle window (2000)",
     [](Args& a, const std::string& v) { a.settle_ms = std::stoi(v); }},
    {"--join-time", "K", "mode: K times, the time until a joining node is known by all",
     [](Args& a, const std::string& v) { a.join_trials = std::stoi(v); }},
    {"--false-positives", "S", "mode: S seconds of members declared dead though none stopped",
     [](Args& a, const std::string& v) { a.false_positives = std::stod(v); }},
    {"--full-sync", "KEYS", "mode: load KEYS keys, then the time until a new node holds them",
     [](Args& a, const std::string& v) { a.full_sync = std::stol(v); }},
    {"--consistency", "MODE",
     "mode: --writes requests one at a time: wait-quorum or wait-all (set with --wait), or "
     "read-quorum (get --read quorum); each one's latency at the client",
     [](Args& a, const std::string& v) { a.consistency = v; }},
    {"--batch-part", "KEYS", "full sync: keys per `meshkv set --batch` (100000)",
     [](Args& a, const std::string& v) { a.batch_part = std::stol(v); }},
    {"--sync-timeout", "S", "full sync: how long to wait for the new node (120)",
     [](Args& a, const std::string& v) { a.sync_timeout = std::stod(v); }},
};

void usage() {
  std::printf(
      "Usage: meshkv_bench_converge [--OPTION VALUE]...\n"
      "\n"
      "Starts N `meshkv node` processes on loopback and, by default, writes at a steady\n"
      "rate through random nodes: latency until every node applied each write, then\n"
      "idle CPU, memory and traffic per node, then failure detection. Prints one table\n"
      "row; asserts nothing.\n\n");
  for (const Option& o : kOptions) std::printf("  %-17s %-7s %s\n", o.name, o.value, o.help);
}

const Option* find(const std::string& name) {
  for (const Option& o : kOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

}  // namespace

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      usage();
      std::exit(0);
    }
    const Option* o = find(k);
    if (o == nullptr) {
      std::fprintf(stderr, "bench: unknown option %s\n", k.c_str());
      return false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench: %s needs a value\n", k.c_str());
      return false;
    }
    try {
      o->set(a, argv[i + 1]);
    } catch (const std::exception&) {  // std::stoi and friends on a malformed number
      std::fprintf(stderr, "bench: %s needs a number, not '%s'\n", k.c_str(), argv[i + 1]);
      return false;
    }
  }
  if (!a.consistency.empty() && a.consistency != "wait-quorum" && a.consistency != "wait-all" &&
      a.consistency != "read-quorum") {
    std::fprintf(stderr, "bench: --consistency is wait-quorum, wait-all or read-quorum\n");
    return false;
  }
  if (a.nodes < 1 || a.writes < 1 || a.rate < 1 || a.idle_seconds <= 0) {
    std::fprintf(stderr, "bench: --nodes, --writes, --rate and --idle-seconds must be positive\n");
    return false;
  }
  return true;
}

}  // namespace meshkv::bench
