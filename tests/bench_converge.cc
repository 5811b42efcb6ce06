// Convergence benchmark with real processes on loopback. Prints figures,
// asserts nothing.
//
//   meshkv_bench_converge --bin build/meshkv --nodes 5 --writes 2000 --rate 500 --loss 0.3
//
// Starts N `meshkv node` processes, waits until each sees all others alive,
// opens a `watch` stream to every node, then writes at a steady rate through
// random nodes. A write's latency is the time from sending `set` until the
// last node reports applying it. Then: idle CPU and resident memory per node
// over a quiet window, and failure detection (kill -9 of one node until every
// survivor shows it dead).
//
// With --key-file FILE (a cluster key, meshkv keygen --cluster) every node is
// started sealed with that key and every control connection of the benchmark
// opens with the handshake of net/ctl_seal.h, as a keyed client's would; the
// benchmark checks that each node reports itself sealed (or not) before it
// measures anything.
//
// With --throughput SECONDS it measures replicated write throughput instead:
// --clients closed-loop connections per node issuing `set`, then the time
// until every node holds every acknowledged write.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/keys.h"
#include "net/control_client.h"
#include "net/ctl_seal.h"
#include "wire/codec.h"

using namespace meshkv;
using Clock = std::chrono::steady_clock;

namespace {

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
  std::string key_file;   // sealed mesh: passed to every node as --key-file
  bool counters = false;  // print the nodes' summed datagram counters to stderr
};

// The cluster key of a sealed run; every Conn then opens a sealed session.
std::optional<crypto::ClusterKey> g_key;

double now_ms() {
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

// One control connection: length-prefixed frames of wire messages, sealed
// (net/ctl_seal.h) when the run has a cluster key. Requests may be pipelined:
// the node answers them in order.
class Conn {
 public:
  bool open(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      reset();
      return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g_key && !handshake()) {
      reset();
      return false;
    }
    return true;
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  bool send(const std::string& op, wire::Value args) {
    wire::Bytes body = wire::encode(wire::Envelope{wire::kVersion, 0, wire::CtlRequest{++id_, op, std::move(args)}});
    if (session_) body = session_->seal(body);
    return send_frame(body);
  }
  // Reads whatever arrived; returns complete responses.
  std::vector<wire::CtlResponse> read_some() {
    std::vector<wire::CtlResponse> out;
    if (!fill()) return out;
    wire::Bytes body, plain;
    while (next_frame(body)) {
      const wire::Bytes* msg = &body;
      if (session_) {
        if (!session_->open(body, plain)) {
          std::fprintf(stderr, "bench: a sealed response did not authenticate\n");
          closed_ = true;
          return out;
        }
        msg = &plain;
      }
      auto env = wire::decode(*msg);
      if (env.ok() && std::holds_alternative<wire::CtlResponse>(env->msg)) {
        out.push_back(std::get<wire::CtlResponse>(env->msg));
      }
    }
    return out;
  }
  // Sends a request and waits for its response; responses to earlier
  // pipelined requests (the acknowledgements of sets) are skipped.
  std::optional<wire::CtlResponse> call(const std::string& op, wire::Value args, int timeout_ms = 3000) {
    if (!send(op, std::move(args))) return std::nullopt;
    const double end = now_ms() + timeout_ms;
    while (now_ms() < end && !closed_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      for (auto& r : read_some()) {
        if (r.req_id == id_) return std::move(r);
      }
    }
    return std::nullopt;
  }
  // Reads and drops what has arrived, without waiting.
  void drain() {
    pollfd p{fd_, POLLIN, 0};
    while (!closed_ && poll(&p, 1, 0) > 0) read_some();
  }
  bool closed() const { return closed_; }

 private:
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    session_.reset();
    buf_.clear();
    closed_ = false;
  }
  bool send_frame(const wire::Bytes& body) {
    wire::Bytes frame(4);
    const uint32_t n = static_cast<uint32_t>(body.size());
    for (int i = 0; i < 4; ++i) frame[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
    frame.insert(frame.end(), body.begin(), body.end());
    return ::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
  }
  // One recv into the buffer; false when the node closed the connection.
  bool fill() {
    uint8_t tmp[65536];
    ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
    if (r <= 0) {
      closed_ = true;
      return false;
    }
    buf_.insert(buf_.end(), tmp, tmp + r);
    return true;
  }
  // Takes one complete frame's body off the buffer.
  bool next_frame(wire::Bytes& body) {
    if (buf_.size() < 4) return false;
    const uint32_t n = buf_[0] | (buf_[1] << 8) | (buf_[2] << 16) | (static_cast<uint32_t>(buf_[3]) << 24);
    if (buf_.size() < 4 + n) return false;
    body.assign(buf_.begin() + 4, buf_.begin() + 4 + n);
    buf_.erase(buf_.begin(), buf_.begin() + 4 + n);
    return true;
  }
  // Client hello, node hello, then a session (as net::call does).
  bool handshake() {
    const net::Nonce24 cn = net::random_nonce();
    if (!send_frame(net::client_hello(g_key->id, cn))) return false;
    const double end = now_ms() + 3000;
    wire::Bytes body;
    while (!next_frame(body)) {
      pollfd p{fd_, POLLIN, 0};
      if (now_ms() > end || closed_) return false;
      if (poll(&p, 1, 50) > 0 && !fill()) return false;
    }
    net::Nonce24 sn{};
    if (!net::parse_server_hello(body, sn)) {
      static bool said = false;
      if (!said) std::fprintf(stderr, "bench: the node refused the sealed handshake (not sealed, or another key)\n");
      said = true;
      return false;
    }
    session_ = std::make_unique<net::CtlSession>(*g_key, cn, sn, false);
    return true;
  }

  int fd_ = -1;
  uint64_t id_ = 0;
  bool closed_ = false;
  std::vector<uint8_t> buf_;
  std::unique_ptr<net::CtlSession> session_;
};

struct Node {
  pid_t pid = 0;
  int port = 0;
  std::string name;
};

int free_base_port(int n) {
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  for (int attempt = 0; attempt < 50; ++attempt) {
    // Below the ephemeral port range, so client connections cannot take them.
    const int base = 12000 + static_cast<int>(rng() % 20000);
    bool ok = true;
    for (int i = 0; i < n && ok; ++i) {
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(base + i));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      close(fd);
    }
    if (ok) return base;
  }
  return 40000;
}

pid_t spawn(const Args& a, int i, int base) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  const std::string listen = "127.0.0.1:" + std::to_string(base + i);
  const std::string join = "127.0.0.1:" + std::to_string(base);
  const std::string id = "n" + std::to_string(i);
  const std::string loss = std::to_string(a.loss);
  const std::string log = "/tmp/meshkv-bench-" + std::to_string(getppid()) + "-" + id + ".log";
  int devnull = ::open("/dev/null", O_RDONLY);
  int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(devnull, 0);
  dup2(logfd, 1);
  dup2(logfd, 2);
  std::vector<std::string> argv = {a.bin, "node", "--id", id, "--listen", listen, "--loss", loss,
                                   "--log-level", "warn"};
  if (i > 0) {
    argv.push_back("--join");
    argv.push_back(join);
  }
  if (!a.data_dir.empty()) {
    argv.push_back("--data-dir");
    argv.push_back(a.data_dir + "/" + id);
  }
  if (!a.sync.empty()) {
    argv.push_back("--sync");
    argv.push_back(a.sync);
  }
  if (!a.key_file.empty()) {
    argv.push_back("--key-file");
    argv.push_back(a.key_file);
  }
  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  execv(a.bin.c_str(), cargv.data());
  _exit(127);
}

struct Usage {
  double cpu_s = 0;
  long rss_kb = 0;
};

Usage usage(pid_t pid) {
  Usage u;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(st, line);
  auto close_paren = line.rfind(')');
  std::istringstream is(line.substr(close_paren + 2));
  std::string f;
  unsigned long utime = 0, stime = 0;
  for (int field = 3; is >> f; ++field) {
    if (field == 14) utime = std::stoul(f);
    if (field == 15) {
      stime = std::stoul(f);
      break;
    }
  }
  u.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kb = std::stol(line.substr(6));
  }
  return u;
}

int alive_count(Conn& c) {
  auto r = c.call("peers", wire::Value::object());
  if (!r) return -1;
  int n = 0;
  for (const auto& m : r->body.get("members").as_list()) n += m.get("state").as_string() == "alive";
  return n;
}

// Closed loop: `clients` connections per node, each sending its next set as
// soon as the previous one is acknowledged, for `seconds`. Then the time
// until every node holds every acknowledged write.
void run_throughput(const Args& a, std::vector<std::unique_ptr<Conn>>& ctl, const std::vector<Node>& nodes) {
  std::vector<std::unique_ptr<Conn>> conns;
  for (const auto& n : nodes) {
    for (int c = 0; c < a.clients; ++c) {
      auto conn = std::make_unique<Conn>();
      if (conn->open(n.port)) conns.push_back(std::move(conn));
    }
  }
  uint64_t next_key = 0, acked = 0;
  auto send_one = [&](Conn& c) {
    wire::Value args = wire::Value::object();
    args.set("key", "tp/" + std::to_string(next_key++));
    args.set("value", "0123456789abcdef");
    c.send("set", std::move(args));
  };
  for (auto& c : conns) send_one(*c);
  const double start = now_ms(), end = start + a.throughput * 1000;
  std::vector<pollfd> fds;
  for (auto& c : conns) fds.push_back({c->fd(), POLLIN, 0});
  while (now_ms() < end) {
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (const auto& r : conns[i]->read_some()) {
        if (r.code == 0) ++acked;
        if (now_ms() < end) send_one(*conns[i]);
      }
    }
  }
  const double secs = (now_ms() - start) / 1000.0;
  const double t_rep = now_ms();
  double replicated_ms = -1;
  while (now_ms() - t_rep < 60'000) {
    bool all = true;
    for (auto& c : ctl) {
      auto st = c->call("status", wire::Value::object(), 5000);
      if (!st || static_cast<uint64_t>(st->body.get("keys").as_int()) < acked) all = false;
    }
    if (all) {
      replicated_ms = now_ms() - t_rep;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("| %d | %s | %d | %.0f | %.0f | %s |\n", a.nodes,
              a.data_dir.empty() ? "in-memory" : (a.sync.empty() ? "always" : a.sync.c_str()),
              a.clients * a.nodes, static_cast<double>(acked), static_cast<double>(acked) / secs,
              replicated_ms < 0 ? "not within 60 s" : (std::to_string(static_cast<int>(replicated_ms)) + " ms").c_str());
}

// Whether every node is sealed exactly when this run has a key, asked through
// net::call (which presents the key given to net::set_client_key), so that a
// "sealed" row can never be measured on an unsealed mesh or the reverse.
bool check_sealed(const std::vector<Node>& nodes) {
  for (const auto& n : nodes) {
    auto ep = Endpoint::parse("127.0.0.1:" + std::to_string(n.port));
    auto r = net::call(*ep, wire::CtlRequest{1, "status", wire::Value::object()});
    if (!r.ok()) {
      std::fprintf(stderr, "bench: status of %s: %s\n", n.name.c_str(), r.status().to_string().c_str());
      return false;
    }
    const bool sealed = r->body.get("security").get("sealed").as_bool();
    if (sealed != g_key.has_value()) {
      std::fprintf(stderr, "bench: node %s is %s, but the run is %s\n", n.name.c_str(),
                   sealed ? "sealed" : "not sealed", g_key ? "sealed" : "not sealed");
      return false;
    }
  }
  return true;
}

// The nodes' datagram counters, summed, on stderr: what the protocol did to
// get there (retransmissions, datagrams waiting for an identity, ...).
void print_counters(std::vector<std::unique_ptr<Conn>>& ctl, const char* label) {
  static const char* const kNames[] = {"sent", "received", "bytes_sent", "retransmits", "duplicates",
                                       "anti_entropy_rounds", "queue_drops", "awaiting_identity",
                                       "unknown_sender", "replayed", "auth_failed", "stale_session"};
  std::map<std::string, uint64_t> sum;
  for (auto& c : ctl) {
    auto st = c->call("status", wire::Value::object(), 5000);
    if (!st) continue;
    const wire::Value& d = st->body.get("datagrams");
    for (const char* k : kNames) sum[k] += static_cast<uint64_t>(d.get(k).as_int());
  }
  std::fprintf(stderr, "bench counters (%s, %s, all nodes):", label, g_key ? "sealed" : "unsealed");
  for (const char* k : kNames) std::fprintf(stderr, " %s=%llu", k, static_cast<unsigned long long>(sum[k]));
  std::fprintf(stderr, "\n");
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--bin") a.bin = v;
    else if (k == "--nodes") a.nodes = std::stoi(v);
    else if (k == "--writes") a.writes = std::stoi(v);
    else if (k == "--rate") a.rate = std::stoi(v);
    else if (k == "--loss") a.loss = std::stod(v);
    else if (k == "--base-port") a.base_port = std::stoi(v);
    else if (k == "--detect") a.detect = v != "0";
    else if (k == "--data-dir") a.data_dir = v;
    else if (k == "--sync") a.sync = v;
    else if (k == "--throughput") a.throughput = std::stod(v);
    else if (k == "--clients") a.clients = std::stoi(v);
    else if (k == "--key-file") a.key_file = v;
    else if (k == "--counters") a.counters = v != "0";
    else {
      std::fprintf(stderr, "bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (!a.key_file.empty()) {
    auto key = crypto::load_cluster_key(a.key_file);
    if (!key.ok()) {
      std::fprintf(stderr, "bench: %s\n", key.status().to_string().c_str());
      return 2;
    }
    g_key = *key;
    net::set_client_key(*key);
  }
  const int base = a.base_port ? a.base_port : free_base_port(a.nodes);
  std::vector<Node> nodes(static_cast<size_t>(a.nodes));
  for (int i = 0; i < a.nodes; ++i) {
    nodes[static_cast<size_t>(i)] = {spawn(a, i, base), base + i, "n" + std::to_string(i)};
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto cleanup = [&] {
    for (auto& n : nodes) {
      if (n.pid > 0) {
        kill(n.pid, SIGKILL);
        waitpid(n.pid, nullptr, 0);
        n.pid = 0;
      }
    }
  };
  std::vector<std::unique_ptr<Conn>> ctl, watch;
  for (auto& n : nodes) {
    auto c = std::make_unique<Conn>();
    for (int t = 0; t < 100 && !c->open(n.port); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (c->fd() < 0) {
      std::fprintf(stderr, "node %s did not start (see /tmp/meshkv-bench-*.log)\n", n.name.c_str());
      cleanup();
      return 1;
    }
    ctl.push_back(std::move(c));
  }
  const double t_join = now_ms();
  bool joined = false;
  while (now_ms() - t_join < 30'000 && !joined) {
    joined = true;
    for (auto& c : ctl) joined = joined && alive_count(*c) == a.nodes - 1;
    if (!joined) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!joined) {
    std::fprintf(stderr, "membership did not converge within 30 s\n");
    cleanup();
    return 1;
  }
  if (!check_sealed(nodes)) {
    cleanup();
    return 1;
  }
  if (a.throughput > 0) {
    run_throughput(a, ctl, nodes);
    if (a.counters) print_counters(ctl, "throughput");
    cleanup();
    return 0;
  }
  for (auto& n : nodes) {
    auto w = std::make_unique<Conn>();
    w->open(n.port);
    wire::Value args = wire::Value::object();
    args.set("prefix", "bench/");
    w->send("watch", std::move(args));
    watch.push_back(std::move(w));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // Writes at a steady rate; watch streams are read in between.
  std::map<std::string, std::pair<double, int>> pending;  // key -> (sent at, nodes seen)
  std::vector<double> lat;
  std::mt19937 rng(42);
  auto drain = [&](int timeout_ms) {
    std::vector<pollfd> fds;
    for (auto& w : watch) fds.push_back({w->fd(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
    const double t = now_ms();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (const auto& r : watch[i]->read_some()) {
        auto it = pending.find(r.body.get("key").as_string());
        if (it == pending.end()) continue;
        if (++it->second.second == a.nodes) {
          lat.push_back(t - it->second.first);
          pending.erase(it);
        }
      }
    }
  };
  const double interval = 1000.0 / a.rate;
  const double start = now_ms();
  for (int i = 0; i < a.writes; ++i) {
    const double due = start + i * interval;
    while (now_ms() < due) drain(std::max(0, static_cast<int>(due - now_ms())));
    const std::string key = "bench/" + std::to_string(i);
    wire::Value args = wire::Value::object();
    args.set("key", key);
    args.set("value", "value-" + std::to_string(i));
    pending[key] = {now_ms(), 0};
    ctl[rng() % ctl.size()]->send("set", std::move(args));
  }
  const double t_end = now_ms();
  while (!pending.empty() && now_ms() - t_end < 15'000) drain(50);
  const size_t missing = pending.size();
  const double achieved = a.writes / ((t_end - start) / 1000.0);
  if (a.counters) print_counters(ctl, "latency");

  // Idle cost per node, after a settling pause.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (auto& c : ctl) c->drain();
  std::vector<Usage> u0;
  for (auto& n : nodes) u0.push_back(usage(n.pid));
  const double idle_window_s = 5;
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(idle_window_s * 1000)));
  double cpu_max = 0, cpu_sum = 0;
  long rss_max = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Usage u1 = usage(nodes[i].pid);
    const double pct_cpu = 100.0 * (u1.cpu_s - u0[i].cpu_s) / idle_window_s;
    cpu_max = std::max(cpu_max, pct_cpu);
    cpu_sum += pct_cpu;
    rss_max = std::max(rss_max, u1.rss_kb);
  }

  double detect_ms = -1;
  if (a.detect && a.nodes > 2) {
    Node& victim = nodes.back();
    kill(victim.pid, SIGKILL);
    waitpid(victim.pid, nullptr, 0);
    victim.pid = 0;
    const double t0 = now_ms();
    while (now_ms() - t0 < 20'000) {
      bool all = true;
      for (size_t i = 0; i + 1 < nodes.size() && all; ++i) {
        auto r = ctl[i]->call("peers", wire::Value::object());
        bool dead = false;
        if (r) {
          for (const auto& m : r->body.get("members").as_list()) {
            if (m.get("name").as_string() == victim.name) dead = m.get("state").as_string() == "dead";
          }
        }
        all = dead;
      }
      if (all) {
        detect_ms = now_ms() - t0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  cleanup();

  std::printf("| %d | %.0f%% | %d | %.0f/s | %.2f | %.2f | %.2f | %zu | %.2f%% / %.2f%% | %.1f MB | %s |\n",
              a.nodes, a.loss * 100, a.writes, achieved, pct(lat, 0.5), pct(lat, 0.99),
              lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()), missing,
              cpu_sum / static_cast<double>(nodes.size()), cpu_max, static_cast<double>(rss_max) / 1024.0,
              detect_ms < 0 ? "-" : (std::to_string(static_cast<int>(detect_ms)) + " ms").c_str());
  return missing == 0 ? 0 : 1;
}
