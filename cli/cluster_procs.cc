#include "cluster_procs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace meshkv::cli::cluster {

namespace {

constexpr const char* kStateHeader = "meshkv-cluster-state-v1";

// Whether a socket of `type` binds 127.0.0.1:port now. SO_REUSEADDR as the
// node's own listener sets it, so a port in TIME_WAIT counts as free, as it
// is for the node.
bool can_bind(int type, uint16_t port) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool port_free(uint16_t port) { return can_bind(SOCK_DGRAM, port) && can_bind(SOCK_STREAM, port); }

// The fields of /proc/PID/stat after the command name, which may itself hold
// spaces and parentheses (hence the last ')').
std::vector<std::string> stat_fields(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return {};
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> out;
  for (std::string w; rest >> w;) out.push_back(w);
  return out;
}

std::vector<std::string> cmdline(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> out;
  for (std::string arg; std::getline(f, arg, '\0');) out.push_back(arg);
  return out;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

NodeRecord* State::find(const std::string& id) {
  for (auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

Result<State> load_state(const std::string& dir) {
  const std::string path = dir + "/state";
  std::ifstream f(path);
  if (!f) return Status::NotFound("no meshkv cluster was started in " + dir);
  std::string line;
  if (!std::getline(f, line) || line != kStateHeader) {
    return Status::Corruption(path + ": not a meshkv cluster state file");
  }
  State s;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string what;
    in >> what;
    if (what == "loss") {
      in >> s.loss;
    } else if (what == "data") {
      in >> s.data;
    } else if (what == "key") {
      std::getline(in >> std::ws, s.key_file);
    } else if (what == "partition") {
      for (std::string id; in >> id;) s.partition.push_back(id);
      in.clear();
    } else if (what == "node") {
      NodeRecord n;
      in >> n.id >> n.address >> n.pid >> n.start;
      // A pid of 0 means "not running"; a negative one would mean a process
      // group, or every process, to kill(2).
      if (n.id.empty() || n.address.empty() || n.pid < 0) {
        return Status::Corruption(path + ": bad line '" + line + "'");
      }
      s.nodes.push_back(n);
    } else if (!what.empty() && what[0] != '#') {
      return Status::Corruption(path + ": bad line '" + line + "'");
    }
    if (in.fail() && !in.eof()) return Status::Corruption(path + ": bad line '" + line + "'");
  }
  return s;
}

Status save_state(const std::string& dir, const State& s) {
  const std::string path = dir + "/state", tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << kStateHeader << "\n"
      << "# written by meshkv cluster; node ID ADDRESS PID START (0 0: not running)\n"
      << "loss " << s.loss << "\n"
      << "data " << (s.data ? 1 : 0) << "\n";
    if (!s.key_file.empty()) f << "key " << s.key_file << "\n";
    if (!s.partition.empty()) {
      f << "partition";
      for (const auto& id : s.partition) f << " " << id;
      f << "\n";
    }
    for (const auto& n : s.nodes) {
      f << "node " << n.id << " " << n.address << " " << n.pid << " " << n.start << "\n";
    }
    f.flush();
    if (!f) return Status::Io("cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::Io("cannot replace " + path + ": " + std::strerror(errno));
  }
  for (const auto& n : s.nodes) {
    const std::string pid_file = dir + "/" + n.id + ".pid";
    if (n.pid == 0) {
      std::remove(pid_file.c_str());
      continue;
    }
    std::ofstream p(pid_file, std::ios::trunc);
    p << n.pid << "\n";
  }
  return Status::Ok();
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "meshkv";
  return std::string(buf, static_cast<size_t>(n));
}

std::vector<uint16_t> free_ports(uint16_t base, size_t count, bool consecutive) {
  std::vector<uint16_t> out;
  for (uint32_t p = base; p <= 65535 && p < uint32_t{base} + 2000 && out.size() < count; ++p) {
    if (port_free(static_cast<uint16_t>(p))) {
      out.push_back(static_cast<uint16_t>(p));
    } else if (consecutive) {
      return {};
    }
  }
  if (out.size() < count) return {};
  return out;
}

Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::string& log) {
  // Everything the children need is prepared before fork: after it only
  // async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::Io("cannot open " + log + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int pipe_fd[2];
  if (null_fd < 0 || ::pipe2(pipe_fd, O_CLOEXEC) != 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return Status::Io(std::string("cannot start a node: ") + std::strerror(errno));
  }
  const pid_t child = ::fork();
  if (child < 0) {
    const int e = errno;
    ::close(log_fd), ::close(null_fd), ::close(pipe_fd[0]), ::close(pipe_fd[1]);
    return Status::Io(std::string("fork: ") + std::strerror(e));
  }
  if (child == 0) {
    // The middle process: a new session without a controlling terminal, then
    // the node as its child, then gone, so the node is nobody's child here
    // and never receives the caller's terminal signals.
    ::setsid();
    const pid_t node = ::fork();
    if (node == 0) {
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::execv(args[0], args.data());
      const char msg[] = "meshkv cluster: cannot execute the meshkv binary\n";
      (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
      ::_exit(127);
    }
    (void)!::write(pipe_fd[1], &node, sizeof node);
    ::_exit(node > 0 ? 0 : 1);
  }
  ::close(pipe_fd[1]);
  ::close(log_fd);
  ::close(null_fd);
  pid_t node = -1;
  const ssize_t got = ::read(pipe_fd[0], &node, sizeof node);
  ::close(pipe_fd[0]);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  if (got != static_cast<ssize_t>(sizeof node) || node <= 0) {
    return Status::Io("cannot start a node: fork failed");
  }
  // Until it has called exec the node still shows this command's command
  // line, and is_our_node() would not know it: a failure right after the
  // start could not stop it. So wait (briefly) for the exec, or its end.
  const int64_t end = now_ms() + 2000;
  while (now_ms() < end && start_time(node) != 0) {
    const auto args = cmdline(node);
    if (args.size() >= 2 && args[1] == argv[1]) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return node;
}

uint64_t start_time(pid_t pid) {
  const auto f = stat_fields(pid);
  // After the name: state is field 3 (index 0 here), starttime field 22.
  if (f.size() < 20 || f[0] == "Z" || f[0] == "X") return 0;
  return std::strtoull(f[19].c_str(), nullptr, 10);
}

bool is_our_node(const NodeRecord& n) {
  if (n.pid <= 0) return false;
  const uint64_t t = start_time(n.pid);
  if (t == 0 || t != n.start) return false;
  const auto args = cmdline(n.pid);
  return args.size() >= 6 && args[1] == "node" && args[2] == "--id" && args[3] == n.id &&
         args[4] == "--listen" && args[5] == n.address;
}

std::vector<std::string> stop_nodes(std::vector<NodeRecord*> nodes, int sig, int grace_ms) {
  std::vector<NodeRecord*> signalled;
  for (NodeRecord* n : nodes) {
    if (is_our_node(*n) && ::kill(n->pid, sig) == 0) {
      signalled.push_back(n);
    } else {
      n->pid = 0, n->start = 0;  // not ours any more: never signalled again
    }
  }
  auto wait_gone = [&](int64_t ms) {
    const int64_t end = now_ms() + ms;
    for (;;) {
      bool any = false;
      for (NodeRecord* n : signalled) any = any || is_our_node(*n);
      if (!any || now_ms() >= end) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  wait_gone(grace_ms);
  for (NodeRecord* n : signalled) {
    if (is_our_node(*n)) ::kill(n->pid, SIGKILL);
  }
  wait_gone(2000);
  std::vector<std::string> left;
  for (NodeRecord* n : signalled) {
    if (is_our_node(*n)) {
      left.push_back(n->id);
    } else {
      n->pid = 0, n->start = 0;
    }
  }
  return left;
}

}  // namespace meshkv::cli::cluster
