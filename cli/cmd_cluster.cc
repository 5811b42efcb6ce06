// meshkv cluster: a local mesh of headless nodes on loopback for demos,
// training and tests, from the binary alone. `up N` starts n1..nN detached
// in a working directory (logs, pid files, a state file), `down` stops
// exactly those processes, and partition, heal, kill and restart drive the
// faults an exercise needs.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "cluster_procs.h"
#include "commands.h"
#include "config_file.h"
#include "crypto/keys.h"
#include "net/control_client.h"

namespace meshkv::cli {

namespace {

using cluster::NodeRecord;
using cluster::State;

struct ClusterOptions {
  std::string action;
  std::vector<std::string> args;
  std::string dir;
  bool data_dir = false, key = false;
  double loss = 0;
  unsigned base_port = 0, wait_s = 15;
};

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string absolute(const std::string& dir) {
  char* real = ::realpath(dir.c_str(), nullptr);
  if (real == nullptr) return dir;
  std::string out(real);
  std::free(real);
  return out;
}


Result<wire::Value> ask(const std::string& address, wire::CtlOp op, wire::Value args = wire::Value::object(),
                        unsigned timeout_ms = 1000) {
  auto ep = parse_address(address);
  if (!ep) return Status::Invalid("bad address " + address);
  wire::CtlRequest req = wire::make_request(op);
  req.args = std::move(args);
  auto r = net::call(*ep, req, std::chrono::milliseconds(timeout_ms));
  if (!r.ok()) return r.status();
  if (r->code != wire::kCtlOk) return Status::Unavailable(r->error);
  return r->body;
}

// How many members `body` (a peers or status answer) lists, and how many of
// them are alive.
std::pair<size_t, size_t> member_counts(const wire::Value& body) {
  size_t all = 0, alive = 0;
  if (body.get("members").is_list()) {
    for (const auto& m : body.get("members").as_list()) {
      if (m.get("self").as_bool()) continue;  // peers lists the node itself too
      ++all;
      if (m.get("state").as_string() == "alive") ++alive;
    }
  }
  return {all, alive};
}

// The command line of node `n`: what is_our_node() recognises, so the id
// and address come first.
std::vector<std::string> node_argv(const std::string& dir, const State& s, const NodeRecord& n,
                                   const std::vector<std::string>& join) {
  std::vector<std::string> a = {cluster::self_exe(), "node", "--id", n.id, "--listen", n.address};
  for (const auto& j : join) a.insert(a.end(), {"--join", j});
  if (s.loss > 0) a.insert(a.end(), {"--loss", std::to_string(s.loss)});
  if (s.data) a.insert(a.end(), {"--data-dir", dir + "/" + n.id + ".data"});
  if (!s.key_file.empty()) a.insert(a.end(), {"--key-file", s.key_file});
  return a;
}

Status start_node(const std::string& dir, State& s, NodeRecord& n, const std::vector<std::string>& join) {
  auto pid = cluster::spawn_detached(node_argv(dir, s, n, join), dir + "/" + n.id + ".log");
  if (!pid.ok()) return pid.status();
  n.pid = *pid;
  n.start = cluster::start_time(n.pid);
  return Status::Ok();
}

void print_tails(const std::string& dir, const State& s) {
  for (const auto& n : s.nodes) {
    std::ifstream f(dir + "/" + n.id + ".log");
    std::vector<std::string> lines;
    for (std::string l; std::getline(f, l);) lines.push_back(l);
    std::cerr << "--- " << dir << "/" << n.id << ".log (last lines)\n";
    for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) std::cerr << lines[i] << "\n";
  }
}

std::vector<NodeRecord*> all_of(State& s) {
  std::vector<NodeRecord*> v;
  for (auto& n : s.nodes) v.push_back(&n);
  return v;
}

// Loads the key of a sealed cluster for this process's control calls.
Status use_key(const State& s) {
  if (s.key_file.empty()) return Status::Ok();
  auto key = crypto::load_cluster_key(s.key_file);
  if (!key.ok()) return key.status();
  net::set_client_key(*key);
  return Status::Ok();
}

// Whether a and b are on the same side of the cluster's partition.
bool same_side(const State& s, const std::string& a, const std::string& b) {
  auto in = [&](const std::string& id) {
    return std::find(s.partition.begin(), s.partition.end(), id) != s.partition.end();
  };
  return in(a) == in(b);
}

// Waits until every node in `watch` runs and sees alive each running node
// it can reach (those on its side of a partition). Returns "" or why not.
std::string wait_formed(State& s, const std::vector<NodeRecord*>& watch, unsigned wait_s) {
  const int64_t end = now_ms() + int64_t{wait_s} * 1000;
  while (now_ms() < end) {
    if (g_interrupted) return "interrupted";
    bool all = true;
    for (NodeRecord* n : watch) {
      if (cluster::start_time(n->pid) != n->start) return n->id + " exited while starting";
      size_t reachable = 0;
      for (const auto& m : s.nodes) reachable += &m != n && m.pid != 0 && same_side(s, n->id, m.id) ? 1 : 0;
      auto peers = ask(n->address, wire::CtlOp::kPeers, wire::Value::object(), 500);
      if (!peers.ok() || member_counts(*peers).second < reachable) all = false;
    }
    if (all) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return "the mesh did not form within " + std::to_string(wait_s) +
         " s (every node must see the others it can reach alive)";
}

void print_nodes(const std::string& dir, const State& s) {
  std::printf("%-4s  %-15s  %-7s  %s\n", "ID", "ADDRESS", "PID", "LOG");
  for (const auto& n : s.nodes) {
    std::printf("%-4s  %-15s  %-7s  %s\n", n.id.c_str(), n.address.c_str(),
                n.pid ? std::to_string(n.pid).c_str() : "-", (dir + "/" + n.id + ".log").c_str());
  }
}

int cmd_up(const ClusterOptions& o, const std::string& dir) {
  if (o.args.size() != 1) {
    std::cerr << "meshkv cluster: up needs the node count N (1 to 64)\n";
    return kExitUsage;
  }
  char* end = nullptr;
  const long n = std::strtol(o.args[0].c_str(), &end, 10);
  if (*end != '\0' || n < 1 || n > 64) {
    std::cerr << "meshkv cluster: up needs a node count N from 1 to 64, got '" << o.args[0] << "'\n";
    return kExitUsage;
  }
  if (o.base_port != 0 && o.base_port + static_cast<unsigned>(n) - 1 > 65535) {
    std::cerr << "meshkv cluster: --base-port needs PORT+N-1 <= 65535\n";
    return kExitUsage;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::cerr << "meshkv cluster: cannot create " << dir << ": " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  const std::string abs = absolute(dir);
  if (auto old = cluster::load_state(abs); old.ok()) {
    for (const auto& nd : old->nodes) {
      if (cluster::is_our_node(nd)) {
        std::cerr << "meshkv cluster: a cluster is already up in " << abs << " (" << nd.id << " is pid "
                  << nd.pid << "); run: meshkv cluster down --dir " << abs << "\n";
        return 1;
      }
    }
  }
  const auto ports = cluster::free_ports(o.base_port ? static_cast<uint16_t>(o.base_port) : 7946,
                                         static_cast<size_t>(n), o.base_port != 0);
  if (ports.empty()) {
    std::cerr << "meshkv cluster: "
              << (o.base_port ? "ports " + std::to_string(o.base_port) + ".." +
                                    std::to_string(o.base_port + static_cast<unsigned>(n) - 1) +
                                    " are not all free"
                              : "not " + std::to_string(n) + " free ports from 7946 on")
              << "\n";
    return 1;
  }

  State s;
  s.loss = o.loss;
  s.data = o.data_dir;
  if (o.key) {
    s.key_file = abs + "/cluster.key";
    if (Status st = crypto::init(); !st.ok()) {
      std::cerr << "meshkv cluster: " << st.message() << "\n";
      return 1;
    }
    // A fresh key for each cluster: replacing the old file is what is asked.
    if (Status st = crypto::write_cluster_key(s.key_file, crypto::new_cluster_key(), true); !st.ok()) {
      std::cerr << "meshkv cluster: " << st.message() << "\n";
      return 1;
    }
  }
  for (long i = 0; i < n; ++i) {
    s.nodes.push_back({"n" + std::to_string(i + 1), "127.0.0.1:" + std::to_string(ports[static_cast<size_t>(i)]), 0, 0});
  }
  if (Status st = use_key(s); !st.ok()) {
    std::cerr << "meshkv cluster: " << st.message() << "\n";
    return 1;
  }
  // Interrupted while starting: stop what was started, as for any failure.
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::signal(SIGHUP, on_interrupt);
  auto failed = [&](const std::string& why) {
    cluster::stop_nodes(all_of(s), SIGTERM, 1000);
    (void)cluster::save_state(abs, s);
    std::cerr << "meshkv cluster: " << why << "\n";
    print_tails(abs, s);
    std::cerr << "stopped the nodes; logs kept in " << abs << "\n";
    return 1;
  };
  for (auto& nd : s.nodes) {
    // A log starts afresh with each cluster.
    std::remove((abs + "/" + nd.id + ".log").c_str());
    const std::vector<std::string> join =
        &nd == &s.nodes.front() ? std::vector<std::string>{} : std::vector<std::string>{s.nodes.front().address};
    if (Status st = start_node(abs, s, nd, join); !st.ok()) return failed(st.message());
  }
  if (Status st = cluster::save_state(abs, s); !st.ok()) return failed(st.message());
  if (std::string why = wait_formed(s, all_of(s), o.wait_s); !why.empty()) return failed(why);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);

  std::cout << "meshkv cluster of " << n << " node(s) up in " << abs;
  if (s.loss > 0) std::cout << " (each dropping " << s.loss << " of what it sends)";
  std::cout << "\n";
  print_nodes(abs, s);
  std::cout << "\nexport MESHKV_NODE=" << s.nodes.front().address << "\n";
  if (!s.key_file.empty()) std::cout << "export MESHKV_KEY_FILE=" << s.key_file << "\n";
  std::cout << "stop with: meshkv cluster down --dir " << abs << std::endl;
  return kExitOk;
}

int cmd_down(const std::string& dir, State& s) {
  bool any = false;
  for (const auto& n : s.nodes) any = any || n.pid != 0;
  if (!any) {
    std::cout << "no meshkv cluster running in " << dir << "\n";
    return kExitOk;
  }
  std::vector<pid_t> before;
  for (const auto& n : s.nodes) before.push_back(n.pid);
  const auto left = cluster::stop_nodes(all_of(s), SIGTERM, 3000);
  for (size_t i = 0; i < s.nodes.size(); ++i) {
    if (before[i] == 0) continue;
    const bool still = std::find(left.begin(), left.end(), s.nodes[i].id) != left.end();
    std::cout << s.nodes[i].id << ": " << (still ? "did not stop" : "stopped") << " (pid " << before[i] << ")\n";
  }
  if (Status st = cluster::save_state(dir, s); !st.ok()) std::cerr << "meshkv cluster: " << st.message() << "\n";
  std::cout << "logs kept in " << dir << "\n";
  return left.empty() ? kExitOk : 1;
}

int cmd_status(State& s) {
  int rc = kExitOk;
  std::printf("%-4s  %-15s  %-7s  %-7s  %-7s  %-5s  %s\n", "ID", "ADDRESS", "PID", "PROCESS", "MEMBERS", "ALIVE",
              "KEYS");
  for (const auto& n : s.nodes) {
    std::string process = "stopped", members = "-", alive = "-", keys = "-";
    if (cluster::is_our_node(n)) {
      process = "running";
      if (auto st = ask(n.address, wire::CtlOp::kStatus); st.ok()) {
        const auto [all, up] = member_counts(*st);
        members = std::to_string(all);
        alive = std::to_string(up);
        keys = std::to_string(st->get("keys").as_int());
      } else {
        process = "silent";
        rc = 1;
      }
    } else {
      rc = 1;
    }
    std::printf("%-4s  %-15s  %-7s  %-7s  %-7s  %-5s  %s\n", n.id.c_str(), n.address.c_str(),
                n.pid ? std::to_string(n.pid).c_str() : "-", process.c_str(), members.c_str(), alive.c_str(),
                keys.c_str());
  }
  if (!s.partition.empty()) {
    std::string in, out;
    for (const auto& n : s.nodes) {
      std::string& side = same_side(s, n.id, s.partition.front()) ? in : out;
      side += (side.empty() ? "" : ",") + n.id;
    }
    std::printf("partitioned: %s | %s (meshkv cluster heal removes it)\n", in.c_str(), out.c_str());
  }
  return rc;
}

// Sets the faults of `nodes` (those running) to the cluster's partition
// (State::partition); with `clear`, every other fault goes too, except the
// cluster's --loss.
int set_faults(State& s, const std::vector<NodeRecord*>& nodes, bool clear) {
  int rc = kExitOk;
  for (const NodeRecord* n : nodes) {
    if (!cluster::is_our_node(*n)) {
      std::cout << n->id << ": not running; skipped\n";
      continue;
    }
    wire::Value args = wire::Value::object();
    if (clear) {
      args.set("clear", true);
      if (s.loss > 0) args.set("drop_ppm", static_cast<int64_t>(s.loss * 1'000'000.0 + 0.5));
    }
    wire::Value cut = wire::Value::list();
    if (!s.partition.empty()) {
      for (const auto& m : s.nodes) {
        if (!same_side(s, n->id, m.id)) cut.push(m.id);
      }
    }
    args.set("partition", std::move(cut));
    if (auto r = ask(n->address, wire::CtlOp::kLoss, std::move(args)); !r.ok()) {
      std::cerr << "meshkv cluster: " << n->id << ": " << r.status().message() << "\n";
      rc = kExitUnreachable;
    }
  }
  return rc;
}

int cmd_partition(const ClusterOptions& o, const std::string& dir, State& s) {
  if (o.args.size() != 1) {
    std::cerr << "meshkv cluster: partition needs the ids of one side, e.g. n4,n5\n";
    return kExitUsage;
  }
  const auto ids = split_commas(o.args[0]);
  std::set<std::string> side(ids.begin(), ids.end());
  for (const auto& id : side) {
    if (s.find(id) == nullptr) {
      std::cerr << "meshkv cluster: no node '" << id << "' in this cluster\n";
      return kExitUsage;
    }
  }
  if (side.empty() || side.size() == s.nodes.size()) {
    std::cerr << "meshkv cluster: partition needs some nodes on each side\n";
    return kExitUsage;
  }
  std::vector<std::string> in, out;
  for (const auto& n : s.nodes) (side.count(n.id) ? in : out).push_back(n.id);
  s.partition = in;
  // Saved first: a node restarted later is cut off the same way.
  if (Status st = cluster::save_state(dir, s); !st.ok()) {
    std::cerr << "meshkv cluster: " << st.message() << "\n";
    return 1;
  }
  const int rc = set_faults(s, all_of(s), false);
  auto join = [](const std::vector<std::string>& v) {
    std::string r;
    for (const auto& x : v) r += (r.empty() ? "" : ",") + x;
    return r;
  };
  if (rc == kExitOk) std::cout << "partitioned: " << join(in) << " | " << join(out) << "\n";
  return rc;
}

int cmd_heal(const std::string& dir, State& s) {
  s.partition.clear();
  if (Status st = cluster::save_state(dir, s); !st.ok()) {
    std::cerr << "meshkv cluster: " << st.message() << "\n";
    return 1;
  }
  const int rc = set_faults(s, all_of(s), true);
  if (rc == kExitOk) std::cout << "healed: every partition and injected fault removed\n";
  return rc;
}

int cmd_kill(const ClusterOptions& o, const std::string& dir, State& s) {
  NodeRecord* n = o.args.size() == 1 ? s.find(o.args[0]) : nullptr;
  if (n == nullptr) {
    std::cerr << "meshkv cluster: kill needs the id of a node of this cluster (n1, n2, ...)\n";
    return kExitUsage;
  }
  if (!cluster::is_our_node(*n)) {
    std::cerr << "meshkv cluster: " << n->id << " is not running\n";
    return 1;
  }
  const pid_t pid = n->pid;
  const auto left = cluster::stop_nodes({n}, SIGKILL, 2000);
  (void)cluster::save_state(dir, s);
  if (!left.empty()) {
    std::cerr << "meshkv cluster: " << n->id << " (pid " << pid << ") did not die\n";
    return 1;
  }
  std::cout << n->id << ": killed (pid " << pid << ", SIGKILL: no graceful leave)\n";
  return kExitOk;
}

int cmd_restart(const ClusterOptions& o, const std::string& dir, State& s) {
  NodeRecord* n = o.args.size() == 1 ? s.find(o.args[0]) : nullptr;
  if (n == nullptr) {
    std::cerr << "meshkv cluster: restart needs the id of a node of this cluster (n1, n2, ...)\n";
    return kExitUsage;
  }
  if (cluster::is_our_node(*n)) {
    std::cerr << "meshkv cluster: " << n->id << " is running (pid " << n->pid << "); kill it first\n";
    return 1;
  }
  // Its port was free when it stopped; it must be again (a client could
  // have taken it meanwhile).
  const uint16_t port = static_cast<uint16_t>(std::stoul(n->address.substr(n->address.rfind(':') + 1)));
  const int64_t end = now_ms() + 5000;
  while (cluster::free_ports(port, 1, true).empty()) {
    if (now_ms() >= end) {
      std::cerr << "meshkv cluster: port " << port << " of " << n->id << " is taken\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<std::string> join;
  for (const auto& m : s.nodes) {
    if (&m != n && m.pid != 0) join.push_back(m.address);
  }
  if (Status st = start_node(dir, s, *n, join); !st.ok()) {
    std::cerr << "meshkv cluster: " << st.message() << "\n";
    return 1;
  }
  (void)cluster::save_state(dir, s);
  // A new process starts without faults: it gets the cluster's partition
  // (and --loss is on its command line) as soon as it answers.
  if (!s.partition.empty()) {
    const int64_t until = now_ms() + int64_t{o.wait_s} * 1000;
    while (!ask(n->address, wire::CtlOp::kPeers).ok() && now_ms() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    set_faults(s, {n}, false);
  }
  if (std::string why = wait_formed(s, {n}, o.wait_s); !why.empty()) {
    std::cerr << "meshkv cluster: " << why << "; see " << dir << "/" << n->id << ".log\n";
    return 1;
  }
  std::cout << n->id << ": restarted (pid " << n->pid << ") on " << n->address << "\n";
  return kExitOk;
}

int run_cluster(const ClusterOptions& o) {
  const std::string dir = o.dir.empty() ? "./meshkv-cluster" : o.dir;
  if (o.action == "up") return cmd_up(o, dir);
  static const std::vector<std::string> actions = {"up", "status", "down", "partition", "heal", "kill", "restart"};
  if (std::find(actions.begin(), actions.end(), o.action) == actions.end()) {
    std::cerr << "meshkv cluster: unknown action '" << o.action << "'" << did_you_mean(o.action, actions)
              << " (up, status, down, partition, heal, kill, restart)\n";
    return kExitUsage;
  }
  const bool takes_arg = o.action == "partition" || o.action == "kill" || o.action == "restart";
  if (!takes_arg && !o.args.empty()) {
    std::cerr << "meshkv cluster: " << o.action << " takes no argument, got '" << o.args[0] << "'\n";
    return kExitUsage;
  }
  const std::string abs = absolute(dir);
  auto s = cluster::load_state(abs);
  if (!s.ok()) {
    if (s.status().code() == Code::kNotFound && o.action == "down") {
      std::cout << "no meshkv cluster running in " << abs << "\n";
      return kExitOk;
    }
    std::cerr << "meshkv cluster: " << s.status().message() << "\n";
    return 1;
  }
  if (Status st = use_key(*s); !st.ok()) {
    std::cerr << "meshkv cluster: " << st.message() << "\n";
    return 1;
  }
  if (o.action == "down") return cmd_down(abs, *s);
  if (o.action == "status") return cmd_status(*s);
  if (o.action == "partition") return cmd_partition(o, abs, *s);
  if (o.action == "heal") return cmd_heal(abs, *s);
  if (o.action == "kill") return cmd_kill(o, abs, *s);
  return cmd_restart(o, abs, *s);
}

}  // namespace

Handler setup_cluster(CLI::App& sub) {
  auto o = std::make_shared<ClusterOptions>();
  sub.footer(
      "Actions:\n"
      "  up N           start nodes n1..nN on free loopback ports (n2.. join n1), wait\n"
      "                 until each sees all the others alive, print them and the\n"
      "                 MESHKV_NODE line to paste; refused while a cluster is up there\n"
      "  status         each node: pid, process running, members, alive, keys; the partition\n"
      "  down           SIGTERM the nodes this directory's up started (SIGKILL after\n"
      "                 3 s); never signals any other process; logs are kept\n"
      "  partition A,B  cut nodes A,B off from the others (both ways)\n"
      "  heal           remove partitions and injected faults (--loss stays)\n"
      "  kill ID        SIGKILL one node (a crash)\n"
      "  restart ID     start a stopped node again with its settings; it joins the others\n"
      "Nodes run detached (own session, stdin /dev/null) and outlive this command.\n"
      "The working directory holds state (the nodes and settings), ID.pid, ID.log,\n"
      "ID.data (--data-dir) and cluster.key (--key).\n"
      "Exit 0 ok, 1 failed (not formed, already up, a node down), 2 usage, 3 unreachable.\n"
      "Example:\n"
      "  meshkv cluster up 5 && export MESHKV_NODE=127.0.0.1:7946\n"
      "  meshkv cluster partition n4,n5; meshkv cluster heal; meshkv cluster down");
  sub.add_option("action", o->action, "up, status, down, partition, heal, kill or restart")
      ->required()
      ->type_name("ACTION");
  sub.add_option("args", o->args, "N for up; IDS for partition; ID for kill and restart")->type_name("ARG");
  sub.add_option("--dir", o->dir,
                 "the working directory (default $MESHKV_CLUSTER_DIR, or ./meshkv-cluster)")
      ->type_name("DIR")
      ->envname("MESHKV_CLUSTER_DIR");
  sub.add_flag("--data-dir", o->data_dir, "up: durable nodes, each with a data directory ID.data in DIR");
  sub.add_flag("--key", o->key, "up: generate a cluster key (DIR/cluster.key) and seal the mesh with it");
  sub.add_option("--loss", o->loss, "up: every node drops this share (0..1) of the datagrams it sends")
      ->type_name("P")
      ->check(CLI::Range(0.0, 1.0));
  sub.add_option("--base-port", o->base_port,
                 "up: use ports PORT..PORT+N-1, which must be free (default: free ports from 7946 on)")
      ->type_name("PORT")
      ->check(CLI::Range(1, 65535));
  sub.add_option("--wait", o->wait_s, "up, restart: how long to wait for the mesh to form (default 15)")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 3600));
  return [o] { return run_cluster(*o); };
}

}  // namespace meshkv::cli
