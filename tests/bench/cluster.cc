// The benchmark's processes: free ports, `meshkv node` children, their
// CPU and memory from /proc, and the figures file.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

void Results::num(const std::string& k, double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.3f", v);
  put(k, b);
}

bool Results::write(const std::string& path) const {
  if (path.empty()) return true;
  std::ofstream f(path);
  for (const auto& [k, v] : kv) f << k << ' ' << v << '\n';
  return static_cast<bool>(f);
}

namespace {
// Whether `port` is free on loopback for both UDP (the mesh) and TCP (the
// control port): a node needs both.
bool port_free(int port) {
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    const int fd = socket(AF_INET, type, 0);
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
}  // namespace

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

pid_t spawn(const Args& a, int i, int base) {
  const pid_t bench = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const std::string id = "n" + std::to_string(i);
  const std::string log = log_path(a, bench, i);
  const int devnull = ::open("/dev/null", O_RDONLY);
  const int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(devnull, 0);
  dup2(logfd, 1);
  dup2(logfd, 2);
  std::vector<std::string> argv = {a.bin, "node", "--id", id, "--listen", "127.0.0.1:" + std::to_string(base + i),
                                   "--loss", std::to_string(a.loss), "--log-level", "warn"};
  if (i > 0) argv.insert(argv.end(), {"--join", "127.0.0.1:" + std::to_string(base)});
  if (!a.data_dir.empty()) argv.insert(argv.end(), {"--data-dir", a.data_dir + "/" + id});
  if (!a.sync.empty()) argv.insert(argv.end(), {"--sync", a.sync});
  exec_meshkv(a, argv);
}

void stop(pid_t pid) {
  kill(pid, SIGTERM);
  for (int t = 0; t < 100; ++t) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

void kill_all(Cluster& c) {
  for (auto& n : c.nodes) {
    if (n.pid > 0) {
      kill(n.pid, SIGKILL);
      waitpid(n.pid, nullptr, 0);
      n.pid = 0;
    }
  }
}

int run_batch(const Args& a, const std::string& file, int port) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    exec_meshkv(a, {a.bin, "set", "--batch", file, "--node", "127.0.0.1:" + std::to_string(port), "--timeout",
                    "60000"});
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Usage usage(pid_t pid) {
  Usage u;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(st, line);
  // The fields after the command name, which may itself hold spaces.
  const auto close_paren = line.rfind(')');
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

double detect_kill(Cluster& c) {
  Node& victim = c.nodes.back();
  Conns observers;
  for (size_t i = 0; i + 1 < c.nodes.size(); ++i) observers.push_back(std::move(c.ctl[i]));
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
  for (size_t i = 0; i < observers.size(); ++i) c.ctl[i] = std::move(observers[i]);
  return detect_ms;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace meshkv::bench
