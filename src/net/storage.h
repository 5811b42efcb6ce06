// Internal to src/net: the data directory (cfg.data_dir) as the Asio shell
// drives it — start-up load, group commit, the periodic sync, snapshots, and
// the figures the shell reports about them.
//
// Group commit: appending a local write under sync "always" makes a sync
// pending. It runs once the handlers already queued on the io_context have
// run, so one fdatasync serves every request of a loop iteration. Whatever
// may not leave before that sync (datagrams, responses to writes) is handed
// to after_sync() as a closure, run after the sync with its outcome. The
// storage knows nothing of sockets or connections: what a closure does when
// the sync failed is the caller's rule.
//
// Under "interval" a timer syncs every cfg.sync_interval_ms; under "always"
// the same timer syncs replicated writes every 200 ms. A snapshot replaces
// the log once the log passes cfg.snapshot_log_bytes.
//
// A log that cannot take writes (a full disk, an I/O error) refuses them
// rather than lose them. When an append or a sync fails:
//   - the records not yet durable are cut from the log (Durable::
//     abandon_unsynced), and the local writes they carried are withdrawn
//     from the engine (Engine::storage_failed): under "always" every write
//     of the failed sync, under "interval" those of the failed append (the
//     others were acknowledged already, as that policy allows);
//   - what waited for the sync learns it failed: the requests get "write
//     refused: NODE: why" and the datagrams are not sent, so no refused
//     write reaches a peer;
//   - the engine refuses local writes, reads go on, replicated writes are
//     merged in memory but not logged;
//   - a snapshot is tried after 0.5 s, then with backoff up to 8 s; the
//     first that succeeds makes everything in memory durable again, and
//     writes are accepted again, without a restart.
//
// Everything runs on the io_context's one thread.
#pragma once

#include <array>
#include <asio.hpp>
#include <chrono>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/config.h"
#include "node/durable.h"
#include "node/engine.h"

namespace meshkv::net {

class Storage {
 public:
  using Log = std::function<void(node::LogLevel, std::string)>;

  // Creates, locks and reads cfg.data_dir. A directory holding a snapshot
  // names its node: an empty cfg.id takes that name, a different one is
  // refused (kInvalid); hence `cfg` is in-out.
  // REQUIRES: !cfg.data_dir.empty(); `io` and `env` outlive the Storage.
  static Result<std::unique_ptr<Storage>> open(asio::io_context& io, node::Config& cfg, Log log,
                                               store::Env& env = store::Env::posix());
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Rebuilds `engine` from what open() read (snapshot, then log records),
  // logs the tally, writes the first snapshot of a new directory and gives
  // the engine its storage info. Start-up time counts from open(); `now` is
  // the engine's clock.
  // REQUIRES: called once, before any call below; `engine` was built from
  // the cfg open() returned and outlives the Storage.
  // Fails when the snapshot's entries do not decode (the start is refused).
  Status load(node::Engine& engine, node::Now now);

  // Starts the periodic sync. `clock` is the engine's; `kick` asks the
  // driver to take the engine's effects (after a failure withdrew writes,
  // or once writes are accepted again).
  void start(std::function<node::Now()> clock, std::function<void()> kick);

  // Appends the log records among `effects`, moving them out (the other
  // effects are untouched). A local write under "always" makes a sync
  // pending.
  void append(std::vector<node::Effect>& effects);

  // Whether something appended waits for a sync; while it does, whatever
  // depends on the appended writes goes through after_sync().
  bool sync_pending() const { return sync_pending_; }
  // Runs `fn(outcome)` after the pending sync, in the order given; when it
  // failed, `outcome` is the refusal to give ("write refused: NODE: why").
  // REQUIRES: sync_pending().
  void after_sync(std::function<void(const Status& outcome)> fn);
  // Performs the pending sync now, with its closures; its outcome (ok if
  // none was pending).
  Status sync_now();
  // Whether local writes are refused because the log failed.
  bool refusing() const { return !refusal_.empty(); }

  // The engine dropped or collected state: a snapshot replaces the log.
  void compact();

  // Syncs what is pending, writes a snapshot ("clean shutdown") and ends
  // the periodic sync. REQUIRES: called at most once.
  void shut_down();

  // Prometheus text: WAL sync latency histogram, log bytes, snapshots,
  // start-up time.
  std::string metrics() const;

 private:
  Storage(asio::io_context& io, const node::Config& cfg, Log log, std::unique_ptr<node::Durable> durable);
  void schedule_sync();
  void complete_sync();
  void arm_sync_timer();
  Status timed_sync();
  Status take_snapshot(const char* why);
  void update_storage_info();
  // The log failed with `why`: see above. Returns the refusal.
  Status fail(const Status& why);
  void arm_recovery();
  void try_recovery();

  asio::io_context& io_;
  const node::Config cfg_;
  const Log log_;
  std::unique_ptr<node::Durable> durable_;
  node::Engine* engine_ = nullptr;  // set by load()
  node::Durable::Opened opened_;    // read by open(), consumed by load()
  std::chrono::steady_clock::time_point opened_at_;
  asio::steady_timer sync_timer_;
  bool sync_pending_ = false, sync_posted_ = false, shut_down_ = false;
  std::vector<std::function<void(const Status&)>> after_sync_;
  uint64_t startup_ms_ = 0, snapshots_ = 0;
  std::function<node::Now()> clock_;
  std::function<void()> kick_;
  // While the log fails: the refusal ("write refused: NODE: why"), the next
  // recovery attempt's delay.
  std::string refusal_;
  asio::steady_timer recovery_timer_;
  uint64_t recovery_delay_ms_ = 0;
  uint64_t failures_ = 0, withdrawn_ = 0;

  // WAL sync latency histogram: counts per bucket (upper bounds in seconds).
  static constexpr double kSyncBuckets[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5};
  std::array<uint64_t, std::size(kSyncBuckets)> sync_hist_{};
  uint64_t sync_count_ = 0;
  double sync_seconds_ = 0;
};

}  // namespace meshkv::net
