// Convergence benchmark with real processes on loopback. Prints figures,
// asserts nothing.
//
//   meshkv_bench_converge --bin build/meshkv --nodes 5 --writes 2000 --rate 500 --loss 0.3
//
// Starts N `meshkv node` processes, waits until each sees all others alive,
// opens a `watch` stream to every node, then writes at a steady rate through
// random nodes. A write's latency is the time from sending `set` until the
// last node reports applying it. Then: idle CPU and resident memory per node
// over a quiet window (--idle-seconds, default 5), and failure detection
// (kill -9 of one node until every survivor shows it dead). With
// --latency-file FILE each write's latency goes to FILE in ms, one a line.
// The nodes' datagram counters give the bytes every write cost cluster-wide:
// the bytes all nodes sent from the first write until every write was applied
// and acknowledged everywhere, less what the same nodes send idle (measured
// in the idle window) over as long, divided by the writes; and the idle bytes
// per second per node. Those and every other figure go, as "name value"
// lines, to --results FILE when given; the table row on stdout is unchanged.
//
// With --key-file FILE (a cluster key, meshkv keygen --cluster) every node is
// started sealed with that key and every control connection of the benchmark
// opens with the handshake of net/ctl_seal.h, as a keyed client's would; the
// benchmark checks that each node reports itself sealed (or not) before it
// measures anything.
//
// Instead of the write test, one of:
//   --throughput SECONDS   replicated write throughput: --clients closed-loop
//                          connections per node issuing `set`, then the time
//                          until every node holds every acknowledged write.
//                          With --batch-size K > 1 each request is an `mset`
//                          of K writes (what `meshkv set --batch` sends).
//   --join-time K          K times, a new node joins through n0: the time from
//                          starting its process until every existing node's
//                          peers shows it alive (polled about every ms); it
//                          then leaves before the next one starts.
//   --false-positives S    watch the mesh for S seconds (at --loss) and count
//                          members declared dead although none was stopped
//                          (from the nodes' logs, and by polling peers every
//                          100 ms), then measure failure detection.
//   --full-sync KEYS       load KEYS keys into the cluster with `meshkv set
//                          --batch` (parts of --batch-part keys, 100,000 by
//                          default, through the nodes in turn, each part
//                          replicated everywhere before the next), then start
//                          a new node: the time until its status shows KEYS
//                          keys (at most --sync-timeout seconds, default 120),
//                          and the bytes it received meanwhile.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
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
  int batch_size = 1;     // writes per request in throughput mode (> 1: `mset`)
  std::string key_file;   // sealed mesh: passed to every node as --key-file
  bool counters = false;  // print the nodes' summed datagram counters to stderr
  std::string latency_file;  // each write's latency in ms, one a line
  std::string results_file;  // every figure as "name value" lines
  std::string log_dir = "/tmp";
  double idle_seconds = 5;
  int settle_ms = 2000;       // pause between the writes and the idle window
  int join_trials = 0;        // > 0: --join-time mode
  double false_positives = 0;  // > 0: --false-positives mode, seconds
  long full_sync = 0;         // > 0: --full-sync mode, keys
  long batch_part = 100000;
  double sync_timeout = 120;
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
  uint64_t last_id() const { return id_; }
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

// Every figure of the run, written as "name value" lines to --results FILE.
struct Results {
  std::vector<std::pair<std::string, std::string>> kv;
  void put(const std::string& k, const std::string& v) { kv.emplace_back(k, v); }
  void num(const std::string& k, double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.3f", v);
    put(k, b);
  }
  void count(const std::string& k, uint64_t v) { put(k, std::to_string(v)); }
  bool write(const std::string& path) const {
    if (path.empty()) return true;
    std::ofstream f(path);
    for (const auto& [k, v] : kv) f << k << ' ' << v << '\n';
    return static_cast<bool>(f);
  }
};
Results g_res;

// Whether `port` is free on loopback for both UDP (the mesh) and TCP (the
// control port): a node needs both.
bool port_free(int port) {
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (!ok) return false;
  }
  return true;
}

int free_base_port(int n) {
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  for (int attempt = 0; attempt < 50; ++attempt) {
    // Below the ephemeral port range, so client connections cannot take them.
    const int base = 12000 + static_cast<int>(rng() % 20000);
    bool ok = true;
    for (int i = 0; i < n && ok; ++i) ok = port_free(base + i);
    if (ok) return base;
  }
  return 40000;
}

std::string log_path(const Args& a, pid_t bench, int i) {
  return a.log_dir + "/meshkv-bench-" + std::to_string(bench) + "-n" + std::to_string(i) + ".log";
}

// In a forked child: runs the meshkv binary with `argv` (argv[0] included),
// presenting the cluster key when the run is sealed. Never returns.
[[noreturn]] void exec_meshkv(const Args& a, std::vector<std::string> argv) {
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

pid_t spawn(const Args& a, int i, int base) {
  const pid_t bench = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  const std::string listen = "127.0.0.1:" + std::to_string(base + i);
  const std::string join = "127.0.0.1:" + std::to_string(base);
  const std::string id = "n" + std::to_string(i);
  const std::string loss = std::to_string(a.loss);
  const std::string log = log_path(a, bench, i);
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
  exec_meshkv(a, argv);
}

// Stops a node: SIGTERM (it leaves the mesh), SIGKILL after 5 s.
void stop(pid_t pid) {
  kill(pid, SIGTERM);
  for (int t = 0; t < 100; ++t) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
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
  if (close_paren == std::string::npos) return u;
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

using Conns = std::vector<std::unique_ptr<Conn>>;

// Sends `op` to every connection at once, then collects every answer (none
// for a connection that gave none within timeout_ms): one round trip for
// the whole mesh rather than one per node.
std::vector<std::optional<wire::CtlResponse>> call_all(Conns& conns, const std::string& op,
                                                       int timeout_ms = 5000) {
  std::vector<std::optional<wire::CtlResponse>> out(conns.size());
  std::vector<bool> waiting(conns.size(), false);
  size_t left = 0;
  for (size_t i = 0; i < conns.size(); ++i) {
    if (conns[i]->send(op, wire::Value::object())) {
      waiting[i] = true;
      ++left;
    }
  }
  const double end = now_ms() + timeout_ms;
  while (left > 0 && now_ms() < end) {
    std::vector<pollfd> fds;
    std::vector<size_t> idx;
    for (size_t i = 0; i < conns.size(); ++i) {
      if (waiting[i] && !conns[i]->closed()) {
        fds.push_back({conns[i]->fd(), POLLIN, 0});
        idx.push_back(i);
      }
    }
    if (fds.empty()) break;
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const size_t i = idx[k];
      for (auto& r : conns[i]->read_some()) {
        if (waiting[i] && r.req_id == conns[i]->last_id()) {
          out[i] = std::move(r);
          waiting[i] = false;
          --left;
        }
      }
      if (waiting[i] && conns[i]->closed()) {
        waiting[i] = false;
        --left;
      }
    }
  }
  return out;
}

// One node's datagram counters (status), for byte accounting.
struct NodeCounters {
  bool ok = false;
  uint64_t sent = 0, received = 0, bytes_sent = 0, bytes_received = 0, pending = 0, keys = 0;
  uint64_t retransmits = 0;
};

std::vector<NodeCounters> counters_all(Conns& conns) {
  std::vector<NodeCounters> out;
  for (auto& r : call_all(conns, "status")) {
    NodeCounters c;
    if (r) {
      const wire::Value& d = r->body.get("datagrams");
      c.ok = true;
      c.sent = static_cast<uint64_t>(d.get("sent").as_int());
      c.received = static_cast<uint64_t>(d.get("received").as_int());
      c.bytes_sent = static_cast<uint64_t>(d.get("bytes_sent").as_int());
      c.bytes_received = static_cast<uint64_t>(d.get("bytes_received").as_int());
      c.pending = static_cast<uint64_t>(r->body.get("pending_retransmissions").as_int());
      c.keys = static_cast<uint64_t>(r->body.get("keys").as_int());
      c.retransmits = static_cast<uint64_t>(d.get("retransmits").as_int());
    }
    out.push_back(c);
  }
  return out;
}

NodeCounters sum(const std::vector<NodeCounters>& v) {
  NodeCounters s;
  s.ok = true;
  for (const auto& c : v) {
    s.ok = s.ok && c.ok;
    s.sent += c.sent;
    s.received += c.received;
    s.bytes_sent += c.bytes_sent;
    s.bytes_received += c.bytes_received;
    s.pending += c.pending;
    s.retransmits += c.retransmits;
  }
  return s;
}

// The state `name` has in a peers answer ("" if absent).
std::string state_of(const wire::CtlResponse& r, const std::string& name) {
  for (const auto& m : r.body.get("members").as_list()) {
    if (m.get("name").as_string() == name) return m.get("state").as_string();
  }
  return "";
}

int alive_count(Conn& c) {
  auto r = c.call("peers", wire::Value::object());
  if (!r) return -1;
  int n = 0;
  for (const auto& m : r->body.get("members").as_list()) n += m.get("state").as_string() == "alive";
  return n;
}

// kill -9 of the last node; the time until every other node shows it dead
// (all of them asked at once, about every 10 ms), -1 if not within 20 s.
double detect_kill(std::vector<Node>& nodes, Conns& ctl) {
  Node& victim = nodes.back();
  Conns observers;
  for (size_t i = 0; i + 1 < nodes.size(); ++i) observers.push_back(std::move(ctl[i]));
  kill(victim.pid, SIGKILL);
  waitpid(victim.pid, nullptr, 0);
  victim.pid = 0;
  const double t0 = now_ms();
  double detect_ms = -1;
  while (now_ms() - t0 < 20'000) {
    bool all = true;
    for (auto& r : call_all(observers, "peers", 2000)) all = all && r && state_of(*r, victim.name) == "dead";
    if (all) {
      detect_ms = now_ms() - t0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (size_t i = 0; i < observers.size(); ++i) ctl[i] = std::move(observers[i]);
  return detect_ms;
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
    if (a.batch_size <= 1) {
      args.set("key", "tp/" + std::to_string(next_key++));
      args.set("value", "0123456789abcdef");
      c.send("set", std::move(args));
      return;
    }
    wire::Value entries = wire::Value::list();
    for (int k = 0; k < a.batch_size; ++k) {
      wire::Value kv = wire::Value::list();
      kv.push("tp/" + std::to_string(next_key++));
      kv.push("0123456789abcdef");
      entries.push(std::move(kv));
    }
    args.set("entries", std::move(entries));
    c.send("mset", std::move(args));
  };
  for (auto& c : conns) send_one(*c);
  const double start = now_ms(), end = start + a.throughput * 1000;
  // epoll rather than poll: the driver shares the machine with the nodes,
  // and poll's walk over every connection per wake-up cost it a fifth of
  // the machine's time.
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < conns.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i]->fd(), &ev);
  }
  std::vector<epoll_event> ready(conns.size());
  while (now_ms() < end) {
    const int n = epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 50);
    for (int k = 0; k < n; ++k) {
      Conn& c = *conns[ready[static_cast<size_t>(k)].data.u64];
      for (const auto& r : c.read_some()) {
        if (r.code == 0) acked += a.batch_size <= 1 ? 1 : static_cast<uint64_t>(r.body.get("written").as_int());
        if (now_ms() < end) send_one(c);
      }
    }
  }
  close(ep);
  const double secs = (now_ms() - start) / 1000.0;
  const double t_rep = now_ms();
  double replicated_ms = -1;
  while (now_ms() - t_rep < 180'000) {
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
              replicated_ms < 0 ? "not within 180 s" : (std::to_string(static_cast<int>(replicated_ms)) + " ms").c_str());
  g_res.count("clients", static_cast<uint64_t>(a.clients * a.nodes));
  g_res.num("seconds", secs);
  g_res.count("acked", acked);
  g_res.num("writes_per_s", static_cast<double>(acked) / secs);
  g_res.num("caught_up_ms", replicated_ms);
  // Replicated: every write everywhere, per second from the first write
  // until the last node caught up; and what the mesh did to get there.
  if (replicated_ms >= 0) {
    g_res.num("replicated_per_s", static_cast<double>(acked) / (secs + replicated_ms / 1000.0));
  }
  const NodeCounters c = sum(counters_all(ctl));
  g_res.count("datagrams_sent", c.sent);
  g_res.count("datagrams_received", c.received);
  g_res.count("retransmits", c.retransmits);
  g_res.count("batch_size", static_cast<uint64_t>(std::max(1, a.batch_size)));
}

// K times: a new node joins through n0; the time from starting its process
// until every existing node's peers shows it alive. Each joiner then leaves
// (SIGTERM) and the next starts once every node has seen it go.
void run_join_time(const Args& a, Conns& ctl, int base) {
  std::vector<double> times;
  int failed = 0;
  for (int j = 0; j < a.join_trials; ++j) {
    const int idx = a.nodes + j;
    const std::string name = "n" + std::to_string(idx);
    const double t0 = now_ms();
    const pid_t pid = spawn(a, idx, base);
    std::vector<double> seen(ctl.size(), -1);
    double known = -1;
    while (now_ms() - t0 < 10'000) {
      auto rs = call_all(ctl, "peers", 2000);
      const double t = now_ms();  // each answer came by now: an upper bound
      bool all = true;
      for (size_t i = 0; i < rs.size(); ++i) {
        if (seen[i] < 0 && rs[i] && state_of(*rs[i], name) == "alive") seen[i] = t - t0;
        all = all && seen[i] >= 0;
      }
      if (all) {
        known = *std::max_element(seen.begin(), seen.end());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (known < 0) {
      ++failed;
    } else {
      times.push_back(known);
    }
    std::fprintf(stderr, "bench: join %d (%s): %s\n", j + 1, name.c_str(),
                 known < 0 ? "not known by all within 10 s" : (std::to_string(known) + " ms").c_str());
    stop(pid);
    const double t_leave = now_ms();
    while (now_ms() - t_leave < 5000) {
      bool gone = true;
      for (auto& r : call_all(ctl, "peers", 2000)) gone = gone && r && state_of(*r, name) != "alive";
      if (gone) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.empty() ? -1
                        : sorted.size() % 2 ? sorted[sorted.size() / 2]
                                            : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  std::string each;
  for (double t : times) each += (each.empty() ? "" : ",") + std::to_string(static_cast<int>(t + 0.5));
  std::printf("| %d+1 | %d joins | median %.1f ms | min %.1f ms | max %.1f ms | failed %d | %s |\n", a.nodes,
              a.join_trials, median, sorted.empty() ? -1 : sorted.front(), sorted.empty() ? -1 : sorted.back(),
              failed, each.c_str());
  g_res.count("join_trials", static_cast<uint64_t>(a.join_trials));
  g_res.count("join_failed", static_cast<uint64_t>(failed));
  g_res.num("join_ms_median", median);
  g_res.num("join_ms_min", sorted.empty() ? -1 : sorted.front());
  g_res.num("join_ms_max", sorted.empty() ? -1 : sorted.back());
  g_res.put("join_ms_each", each.empty() ? "-" : each);
}

// Lines of `path` from byte `from` on that contain `needle`.
int count_lines(const std::string& path, std::streamoff from, const std::string& needle) {
  std::ifstream f(path);
  f.seekg(from);
  int n = 0;
  std::string line;
  while (std::getline(f, line)) n += line.find(needle) != std::string::npos;
  return n;
}

std::streamoff file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<std::streamoff>(st.st_size) : 0;
}

// For `seconds`, nobody is stopped: every member a node declares dead (its
// log says "member X (...) is dead") is a false positive, and so is every
// dead state seen by polling every node's peers every 100 ms. Then failure
// detection as in the write test.
void run_false_positives(const Args& a, std::vector<Node>& nodes, Conns& ctl) {
  const pid_t bench = getpid();
  std::vector<std::streamoff> from;
  for (int i = 0; i < a.nodes; ++i) from.push_back(file_size(log_path(a, bench, i)));
  std::map<std::pair<size_t, std::string>, std::string> last;  // (observer, member) -> state
  int polled_dead = 0, polled_suspect = 0, polls = 0;
  const double t0 = now_ms();
  while (now_ms() - t0 < a.false_positives * 1000) {
    auto rs = call_all(ctl, "peers", 2000);
    ++polls;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (!rs[i]) continue;
      for (const auto& m : rs[i]->body.get("members").as_list()) {
        const std::string st = m.get("state").as_string();
        std::string& prev = last[{i, m.get("name").as_string()}];
        if (st != prev && !prev.empty()) {
          polled_dead += st == "dead";
          polled_suspect += st == "suspect";
        }
        prev = st;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int logged_dead = 0, logged_suspect = 0;
  for (int i = 0; i < a.nodes; ++i) {
    logged_dead += count_lines(log_path(a, bench, i), from[static_cast<size_t>(i)], ") is dead");
    logged_suspect += count_lines(log_path(a, bench, i), from[static_cast<size_t>(i)], ") is suspect");
  }
  const int fp = std::max(logged_dead, polled_dead);
  const double detect_ms = a.nodes > 2 ? detect_kill(nodes, ctl) : -1;
  std::printf("| %d | %.0f%% | %.0f s | %d false positives | %d suspicions | %s |\n", a.nodes, a.loss * 100,
              a.false_positives, fp, logged_suspect,
              detect_ms < 0 ? "-" : (std::to_string(static_cast<int>(detect_ms)) + " ms").c_str());
  g_res.num("fp_seconds", a.false_positives);
  g_res.count("false_positives", static_cast<uint64_t>(fp));
  g_res.count("fp_logged_dead", static_cast<uint64_t>(logged_dead));
  g_res.count("fp_polled_dead", static_cast<uint64_t>(polled_dead));
  g_res.count("suspicions_logged", static_cast<uint64_t>(logged_suspect));
  g_res.count("suspicions_polled", static_cast<uint64_t>(polled_suspect));
  g_res.count("fp_polls", static_cast<uint64_t>(polls));
  g_res.num("detect_ms", detect_ms);
}

// Runs `meshkv set --batch FILE` against one node; its exit code.
int run_batch(const Args& a, const std::string& file, int port) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    std::vector<std::string> argv = {a.bin, "set", "--batch", file, "--node", "127.0.0.1:" + std::to_string(port),
                                     "--timeout", "60000"};
    exec_meshkv(a, argv);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// Loads KEYS keys with `meshkv set --batch` in parts (through the nodes in
// turn, each part held by every node before the next), then a new node
// joins: the time until its status shows every key, and what it received.
int run_full_sync(const Args& a, std::vector<Node>& nodes, Conns& ctl, int base) {
  char tmpl[] = "/tmp/meshkv-bench-sync-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (!dir) {
    std::perror("bench: mkdtemp");
    return 1;
  }
  const long keys = a.full_sync, part = std::max(1L, a.batch_part);
  std::vector<std::string> parts;
  for (long k = 0; k < keys; k += part) {
    parts.push_back(std::string(dir) + "/part" + std::to_string(parts.size()));
    std::ofstream f(parts.back());
    char line[64];
    for (long i = k; i < std::min(keys, k + part); ++i) {
      std::snprintf(line, sizeof line, "sync/key/%09ld value-%013ld\n", i, i);
      f << line;
    }
  }
  auto cleanup_dir = [&] {
    for (const auto& p : parts) unlink(p.c_str());
    rmdir(dir);
  };
  const double t_load = now_ms();
  std::string load_error;
  for (size_t p = 0; p < parts.size() && load_error.empty(); ++p) {
    const Node& via = nodes[p % nodes.size()];
    const int rc = run_batch(a, parts[p], via.port);
    if (rc != 0) {
      load_error = "meshkv set --batch exited " + std::to_string(rc) + " on part " + std::to_string(p + 1);
      break;
    }
    const uint64_t want = static_cast<uint64_t>(std::min(keys, static_cast<long>(p + 1) * part));
    const double t_part = now_ms();
    bool held = false;
    while (!held && now_ms() - t_part < 120'000) {
      held = true;
      for (const auto& c : counters_all(ctl)) held = held && c.ok && c.keys >= want;
      if (!held) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!held) load_error = "part " + std::to_string(p + 1) + " not on every node within 120 s";
  }
  const double load_s = (now_ms() - t_load) / 1000.0;
  cleanup_dir();
  std::fprintf(stderr, "bench: loaded %ld keys in %.1f s%s%s\n", keys, load_s, load_error.empty() ? "" : ": ",
               load_error.c_str());
  g_res.count("sync_keys", static_cast<uint64_t>(keys));
  g_res.num("load_s", load_s);
  if (!load_error.empty()) {
    g_res.put("load_error", "\"" + load_error + "\"");
    std::printf("| %zu+1 | %ld keys | load failed: %s |\n", nodes.size(), keys, load_error.c_str());
    return 1;
  }

  std::vector<Usage> peers0;
  for (const auto& n : nodes) peers0.push_back(usage(n.pid));
  const int idx = static_cast<int>(nodes.size());
  const double t0 = now_ms();
  const pid_t pid = spawn(a, idx, base);
  Conn c;
  for (int t = 0; t < 200 && !c.open(base + idx); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  uint64_t got = 0, bytes = 0, datagrams = 0;
  double sync_ms = -1;
  while (c.fd() >= 0 && now_ms() - t0 < a.sync_timeout * 1000) {
    auto st = c.call("status", wire::Value::object(), 10'000);
    if (st) {
      got = static_cast<uint64_t>(st->body.get("keys").as_int());
      bytes = static_cast<uint64_t>(st->body.get("datagrams").get("bytes_received").as_int());
      datagrams = static_cast<uint64_t>(st->body.get("datagrams").get("received").as_int());
      if (got >= static_cast<uint64_t>(keys)) {
        sync_ms = now_ms() - t0;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double elapsed_s = (now_ms() - t0) / 1000.0;
  const Usage joiner = usage(pid);
  double peers_cpu = 0;
  for (size_t i = 0; i < nodes.size(); ++i) peers_cpu += usage(nodes[i].pid).cpu_s - peers0[i].cpu_s;
  stop(pid);
  const std::string when = sync_ms >= 0 ? std::to_string(static_cast<int>(sync_ms)) + " ms"
                                        : "not within " + std::to_string(static_cast<int>(a.sync_timeout)) + " s";
  std::printf("| %zu+1 | %ld keys | loaded in %.1f s | %s | %llu keys after %.1f s | %.1f MB received |\n",
              nodes.size(), keys, load_s, when.c_str(), static_cast<unsigned long long>(got), elapsed_s,
              static_cast<double>(bytes) / 1e6);
  g_res.num("sync_ms", sync_ms);
  g_res.num("sync_elapsed_s", elapsed_s);
  g_res.count("sync_keys_reached", got);
  g_res.count("sync_bytes_received", bytes);
  g_res.count("sync_datagrams_received", datagrams);
  g_res.num("sync_keys_per_s", static_cast<double>(got) / elapsed_s);
  g_res.num("sync_joiner_rss_mb", static_cast<double>(joiner.rss_kb) / 1024.0);
  g_res.num("sync_joiner_cpu_s", joiner.cpu_s);
  g_res.num("sync_peers_cpu_s", peers_cpu);
  return 0;
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
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench: %s needs a value\n", k.c_str());
      return 2;
    }
    std::string v = argv[i + 1];
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
    else if (k == "--batch-size") a.batch_size = std::stoi(v);
    else if (k == "--key-file") a.key_file = v;
    else if (k == "--counters") a.counters = v != "0";
    else if (k == "--latency-file") a.latency_file = v;
    else if (k == "--results") a.results_file = v;
    else if (k == "--log-dir") a.log_dir = v;
    else if (k == "--idle-seconds") a.idle_seconds = std::stod(v);
    else if (k == "--settle-ms") a.settle_ms = std::stoi(v);
    else if (k == "--join-time") a.join_trials = std::stoi(v);
    else if (k == "--false-positives") a.false_positives = std::stod(v);
    else if (k == "--full-sync") a.full_sync = std::stol(v);
    else if (k == "--batch-part") a.batch_part = std::stol(v);
    else if (k == "--sync-timeout") a.sync_timeout = std::stod(v);
    else {
      std::fprintf(stderr, "bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (a.nodes < 1 || a.writes < 1 || a.rate < 1 || a.idle_seconds <= 0) {
    std::fprintf(stderr, "bench: --nodes, --writes, --rate and --idle-seconds must be positive\n");
    return 2;
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
  // Joiners take the ports after the cluster's.
  const int extra = a.join_trials > 0 ? a.join_trials : a.full_sync > 0 ? 1 : 0;
  const int base = a.base_port ? a.base_port : free_base_port(a.nodes + extra);
  g_res.count("nodes", static_cast<uint64_t>(a.nodes));
  g_res.num("loss", a.loss);
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
      std::fprintf(stderr, "node %s did not start (see %s)\n", n.name.c_str(),
                   log_path(a, getpid(), static_cast<int>(&n - nodes.data())).c_str());
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
  g_res.num("membership_ms", now_ms() - t_join);
  if (!check_sealed(nodes)) {
    cleanup();
    return 1;
  }
  auto finish = [&](int rc) {
    cleanup();
    if (!g_res.write(a.results_file)) {
      std::fprintf(stderr, "bench: cannot write %s\n", a.results_file.c_str());
      return 1;
    }
    return rc;
  };
  if (a.throughput > 0) {
    run_throughput(a, ctl, nodes);
    if (a.counters) print_counters(ctl, "throughput");
    return finish(0);
  }
  if (a.join_trials > 0) {
    run_join_time(a, ctl, base);
    return finish(0);
  }
  if (a.false_positives > 0) {
    run_false_positives(a, nodes, ctl);
    return finish(0);
  }
  if (a.full_sync > 0) return finish(run_full_sync(a, nodes, ctl, base));

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
  const NodeCounters w0 = sum(counters_all(ctl));
  std::vector<Usage> uw0;
  for (auto& n : nodes) uw0.push_back(usage(n.pid));
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
  // The write phase ends when every write is applied everywhere and every
  // push acknowledged (no retransmission pending), within 10 s more.
  NodeCounters w1 = sum(counters_all(ctl));
  for (const double t_ack = now_ms(); (w1.pending > 0 || !w1.ok) && now_ms() - t_ack < 10'000;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    w1 = sum(counters_all(ctl));
  }
  const double write_phase_s = (now_ms() - start) / 1000.0;
  // CPU per node while writing (from the first write to the last ack).
  double wcpu_sum = 0, wcpu_max = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const double c = 100.0 * (usage(nodes[i].pid).cpu_s - uw0[i].cpu_s) / write_phase_s;
    wcpu_sum += c;
    wcpu_max = std::max(wcpu_max, c);
  }
  if (a.counters) print_counters(ctl, "latency");

  // Idle cost per node, after a settling pause.
  std::this_thread::sleep_for(std::chrono::milliseconds(a.settle_ms));
  for (auto& c : ctl) c->drain();
  std::vector<Usage> u0;
  for (auto& n : nodes) u0.push_back(usage(n.pid));
  const std::vector<NodeCounters> i0 = counters_all(ctl);
  const double t_idle = now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(a.idle_seconds * 1000)));
  const std::vector<NodeCounters> i1 = counters_all(ctl);
  const double idle_s = (now_ms() - t_idle) / 1000.0;
  double cpu_max = 0, cpu_sum = 0;
  long rss_max = 0, rss_sum = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Usage u1 = usage(nodes[i].pid);
    const double pct_cpu = 100.0 * (u1.cpu_s - u0[i].cpu_s) / a.idle_seconds;
    cpu_max = std::max(cpu_max, pct_cpu);
    cpu_sum += pct_cpu;
    rss_max = std::max(rss_max, u1.rss_kb);
    rss_sum += u1.rss_kb;
  }
  // Idle traffic per node (bytes per second sent and received) and the whole
  // mesh's idle send rate, the baseline of the write phase.
  double idle_sent_max = 0, idle_recv_max = 0, idle_sent_sum = 0, idle_recv_sum = 0, idle_dg_sum = 0;
  bool idle_ok = true;
  for (size_t i = 0; i < nodes.size(); ++i) {
    idle_ok = idle_ok && i0[i].ok && i1[i].ok;
    const double s = static_cast<double>(i1[i].bytes_sent - i0[i].bytes_sent) / idle_s;
    const double r = static_cast<double>(i1[i].bytes_received - i0[i].bytes_received) / idle_s;
    idle_sent_sum += s;
    idle_recv_sum += r;
    idle_sent_max = std::max(idle_sent_max, s);
    idle_recv_max = std::max(idle_recv_max, r);
    idle_dg_sum += static_cast<double>(i1[i].sent - i0[i].sent) / idle_s;
  }
  const double n_nodes = static_cast<double>(nodes.size());
  const size_t applied = lat.size();
  const double write_bytes = static_cast<double>(w1.bytes_sent - w0.bytes_sent) - idle_sent_sum * write_phase_s;
  const double write_dgrams = static_cast<double>(w1.sent - w0.sent) - idle_dg_sum * write_phase_s;
  const double per_write = applied ? write_bytes / static_cast<double>(applied) : -1;
  const double dg_per_write = applied ? write_dgrams / static_cast<double>(applied) : -1;

  double detect_ms = -1;
  if (a.detect && a.nodes > 2) detect_ms = detect_kill(nodes, ctl);
  cleanup();

  std::printf("| %d | %.0f%% | %d | %.0f/s | %.2f | %.2f | %.2f | %zu | %.2f%% / %.2f%% | %.1f MB | %s |\n",
              a.nodes, a.loss * 100, a.writes, achieved, pct(lat, 0.5), pct(lat, 0.99),
              lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()), missing,
              cpu_sum / n_nodes, cpu_max, static_cast<double>(rss_max) / 1024.0,
              detect_ms < 0 ? "-" : (std::to_string(static_cast<int>(detect_ms)) + " ms").c_str());
  if (a.counters) {
    std::fprintf(stderr, "bench bytes: %.0f B and %.2f datagrams per write cluster-wide; idle per node: %.0f B/s sent, %.0f B/s received\n",
                 per_write, dg_per_write, idle_sent_sum / n_nodes, idle_recv_sum / n_nodes);
  }
  if (!a.latency_file.empty()) {
    std::ofstream f(a.latency_file);
    char b[32];
    for (double l : lat) {
      std::snprintf(b, sizeof b, "%.3f\n", l);
      f << b;
    }
  }
  g_res.count("writes", static_cast<uint64_t>(a.writes));
  g_res.num("rate", a.rate);
  g_res.num("rate_achieved", achieved);
  g_res.num("p50_ms", pct(lat, 0.5));
  g_res.num("p99_ms", pct(lat, 0.99));
  g_res.num("max_ms", lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()));
  g_res.count("lost", missing);
  g_res.num("write_cpu_mean_pct", wcpu_sum / n_nodes);
  g_res.num("write_cpu_max_pct", wcpu_max);
  g_res.num("idle_seconds", idle_s);
  g_res.num("idle_cpu_mean_pct", cpu_sum / n_nodes);
  g_res.num("idle_cpu_max_pct", cpu_max);
  g_res.num("rss_mean_mb", static_cast<double>(rss_sum) / n_nodes / 1024.0);
  g_res.num("rss_max_mb", static_cast<double>(rss_max) / 1024.0);
  g_res.count("idle_counters_ok", idle_ok && w0.ok && w1.ok);
  g_res.num("idle_bytes_sent_per_node_s", idle_sent_sum / n_nodes);
  g_res.num("idle_bytes_sent_per_node_s_max", idle_sent_max);
  g_res.num("idle_bytes_received_per_node_s", idle_recv_sum / n_nodes);
  g_res.num("idle_bytes_received_per_node_s_max", idle_recv_max);
  g_res.num("idle_datagrams_sent_per_node_s", idle_dg_sum / n_nodes);
  g_res.num("write_phase_s", write_phase_s);
  g_res.count("write_pending_at_end", w1.pending);
  g_res.num("write_bytes_sent_raw", static_cast<double>(w1.bytes_sent - w0.bytes_sent));
  g_res.num("bytes_per_write", per_write);
  g_res.num("datagrams_per_write", dg_per_write);
  // IPv4 (20) and UDP (8) headers on top of the datagrams' payload.
  g_res.num("bytes_per_write_with_headers", applied ? per_write + 28 * dg_per_write : -1);
  g_res.num("detect_ms", detect_ms);
  if (!g_res.write(a.results_file)) {
    std::fprintf(stderr, "bench: cannot write %s\n", a.results_file.c_str());
    return 1;
  }
  return missing == 0 ? 0 : 1;
}
