// The processes and files behind `meshkv cluster`: free loopback ports,
// detached node processes, and the working directory's state file, so that
// a later `meshkv cluster down` (another process, maybe days later) signals
// exactly the nodes an earlier `up` started, and never a recycled pid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace meshkv::cli::cluster {

// One node of a local cluster as the state file records it.
struct NodeRecord {
  std::string id;       // "n1"
  std::string address;  // "127.0.0.1:7946"
  pid_t pid = 0;        // 0: not running (never started, stopped or killed)
  uint64_t start = 0;   // the process's start time (/proc/PID/stat field 22)
};

// The working directory's "state" file: the cluster's settings and nodes.
struct State {
  double loss = 0;          // --loss given to every node
  bool data = false;        // per-node data directories DIR/ID.data
  std::string key_file;     // the generated cluster key, "" when not sealed
  std::vector<std::string> partition;  // one side of the partition; empty: none
  std::vector<NodeRecord> nodes;

  NodeRecord* find(const std::string& id);
};

// Reads DIR/state; NotFound when no cluster was ever started in DIR,
// Corruption when the file is not one this tool wrote.
Result<State> load_state(const std::string& dir);
// Writes DIR/state atomically (a temporary file renamed over it), and
// DIR/ID.pid for each running node (removing the others'), for scripts.
Status save_state(const std::string& dir, const State& s);

// The path of the running binary, to start nodes with the same meshkv.
std::string self_exe();

// `count` ports on 127.0.0.1 where both a UDP socket and a TCP listener can
// bind now. From `base`, consecutive when `consecutive`, else the first free
// ones from `base` on (at most 2000 ports looked at). Empty when not found.
std::vector<uint16_t> free_ports(uint16_t base, size_t count, bool consecutive);

// Starts `argv` (argv[0] the binary) detached: in a new session, stdin from
// /dev/null, stdout and stderr appended to `log`, reparented away from this
// process (double fork), so it outlives the caller and its terminal.
// Returns the node's pid.
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::string& log);

// The process start time of `pid` (clock ticks since boot), 0 when there is
// no such live process (gone, or a zombie).
uint64_t start_time(pid_t pid);

// Whether `n.pid` is still the node this tool started: alive, started at
// n.start, and running `meshkv node --id ID --listen ADDRESS`.
bool is_our_node(const NodeRecord& n);

// SIGTERM each running node of `nodes`, then SIGKILL after `grace_ms` any
// that still runs, and waits (bounded) until they are gone. Only nodes that
// pass is_our_node() are signalled. Returns the ids still running at the end
// (empty on success); clears the pid of every node it saw stop.
std::vector<std::string> stop_nodes(std::vector<NodeRecord*> nodes, int sig, int grace_ms);

}  // namespace meshkv::cli::cluster
