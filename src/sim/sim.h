// A deterministic simulated network that drives many engines: virtual time,
// one seeded random generator, per-link loss, duplication, delay with jitter
// (which reorders), partitions, crashes and restarts. The same seed gives the
// same run, datagram for datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/engine.h"

namespace meshkv::sim {

struct Faults {
  double drop = 0;          // probability a datagram is lost
  double dup = 0;           // probability it is delivered twice
  uint64_t delay_us = 200;  // one-way base delay
  uint64_t jitter_us = 300; // plus uniform [0, jitter): reorders datagrams
};

struct Options {
  size_t nodes = 5;
  uint64_t seed = 1;
  Faults faults;
  node::Config config;        // base config for every node (id and listen are set per node)
  int64_t max_clock_skew_ms = 0;  // each node's wall clock is offset by up to +-this
  // Seals every node with this security (identities are made per process
  // unless given); `security_of` may adjust it per node (allowlists, keys).
  std::optional<node::Security> security;
  std::function<void(size_t node, node::Security&)> security_of;
  // Adjusts node i's config (after id and listen are set), e.g. one node
  // with another --reap-after.
  std::function<void(size_t node, node::Config&)> config_of;
};

struct Stats {
  uint64_t delivered = 0, dropped = 0, duplicated = 0, bytes = 0;
  uint64_t oversized = 0;  // datagrams above the MTU: must stay 0
};

class Sim {
 public:
  explicit Sim(Options opts);
  ~Sim();

  size_t size() const { return nodes_.size(); }
  node::Engine& node(size_t i) { return *nodes_[i].engine; }
  bool up(size_t i) const { return nodes_[i].up; }
  uint64_t now_us() const { return now_us_; }
  node::Now now_of(size_t i) const;
  const Stats& stats() const { return stats_; }
  Faults& faults() { return opts_.faults; }
  std::mt19937_64& rng() { return rng_; }
  // Receive every log line and every member event of every node (default:
  // discarded).
  std::function<void(size_t node, const node::LogLine&)> on_log;
  std::function<void(size_t node, const node::MemberEvent&)> on_member;
  // Called with every deferred answer (a wait, a quorum read) the moment
  // node i's engine gives it, before reply() can take it.
  std::function<void(size_t node, const node::Reply&)> on_reply;

  // Advances virtual time, processing every event up to `t_us`.
  void run_until(uint64_t t_us);
  void run_for(uint64_t us) { run_until(now_us_ + us); }
  // Runs until `pred` holds (checked every `step_us`) or `max_us` passes.
  // Returns whether it held.
  bool run_until(const std::function<bool()>& pred, uint64_t max_us, uint64_t step_us = 10'000);

  // Local operations on node i, as a client would issue them.
  Result<crdt::KeyedEntry> set(size_t i, const std::string& key, const std::string& value);
  Result<crdt::KeyedEntry> del(size_t i, const std::string& key);
  // A control request on node i, as its control port takes it
  // (node/control.h). A wait or quorum read sets *deferred to its id (else
  // 0): its answer is then reply(i, id) once it came.
  wire::CtlResponse control(size_t i, const wire::CtlRequest& req, uint64_t* deferred = nullptr);
  // The deferred answer `id` of node i, taken once it arrived.
  std::optional<wire::CtlResponse> reply(size_t i, uint64_t id);
  // `meshkv forget NAME` on node i.
  Result<wire::Value> forget(size_t i, const std::string& name);
  // `meshkv join` on node i, with node j as the peer.
  void join(size_t i, size_t j);
  // Delivers `msg` to node `to` as a datagram from node `from` (unsealed
  // meshes): what a peer could have said, sent by hand.
  void inject(size_t from, size_t to, wire::Message msg);

  void crash(size_t i);
  // Starts node i again as a new process (new uid, empty state) that joins node 0
  // (or node 1 when i == 0).
  void restart(size_t i);
  // The same, from the state it had when it crashed, as from a data
  // directory whose every write was synced (snapshot at the crash).
  void restart_durable(size_t i);
  // SIGSTOP and SIGCONT: a paused node runs no timer and reads nothing; what
  // arrives meanwhile waits in its socket buffer (the last kHeldMax
  // datagrams) and is read on resume, with the clock far ahead.
  void pause(size_t i);
  void resume(size_t i);
  static constexpr size_t kHeldMax = 256;
  // Steps node i's wall clock by `delta_ms` (forward or back).
  void step_clock(size_t i, int64_t delta_ms) { nodes_[i].skew_ms += delta_ms; }
  // Cuts every link between `side` and the rest.
  void partition(const std::set<size_t>& side);
  void heal();

  // All running nodes hold the same entries (the same writes: ordering marks
  // aside) and the same version vector.
  bool converged() const;
  // Every running node considers every other running node alive.
  bool membership_converged() const;

 private:
  struct Slot {
    std::unique_ptr<node::Engine> engine;
    Endpoint addr;
    bool up = true;
    bool paused = false;
    int64_t skew_ms = 0;
    uint64_t tick_at = 0;
    std::deque<std::pair<Endpoint, wire::Bytes>> held;  // arrived while paused
    std::optional<node::Snapshot> disk;                 // restart_durable's state
    std::map<uint64_t, wire::CtlResponse> replies;      // deferred answers not taken yet
  };
  struct Event {
    uint64_t at;
    uint64_t order;  // FIFO among equal times: determinism
    size_t to;
    Endpoint from;
    wire::Bytes bytes;  // empty: a tick
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  void start(size_t i, const node::Snapshot* state = nullptr);
  // Carries out what node i's engine asked for: routes its datagrams through
  // the simulated network and schedules its next tick.
  void after_input(size_t i);
  void deliver(size_t from, node::Datagram& d);
  void schedule_tick(size_t i, uint64_t at_us);
  bool linked(size_t a, size_t b) const;
  size_t index_of(const Endpoint& e) const;

  Options opts_;
  std::mt19937_64 rng_;
  uint64_t now_us_ = 1'000'000;
  uint64_t order_ = 0;
  std::vector<Slot> nodes_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::set<size_t> partition_;
  Stats stats_;
};

}  // namespace meshkv::sim
