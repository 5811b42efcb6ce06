#include "net/storage.h"

#include <sstream>
#include <utility>

namespace meshkv::net {

using std::chrono::steady_clock;

Result<std::unique_ptr<Storage>> Storage::open(asio::io_context& io, node::Config& cfg, Log log) {
  const auto t0 = steady_clock::now();
  node::Durable::Opened opened;
  auto d = node::Durable::open(cfg.data_dir, cfg.repair, opened);
  if (!d.ok()) return d.status();
  // The name comes from the snapshot, or from a log segment's header when
  // --repair started without the snapshot.
  if (!opened.node.empty()) {
    if (cfg.id.empty()) {
      cfg.id = opened.node;
    } else if (cfg.id != opened.node) {
      return Status::Invalid("data directory " + cfg.data_dir + " belongs to node '" + opened.node +
                             "', not '" + cfg.id + "'");
    }
  }
  std::unique_ptr<Storage> s(new Storage(io, cfg, std::move(log), std::move(*d)));
  s->opened_ = std::move(opened);
  s->opened_at_ = t0;
  return s;
}

Storage::Storage(asio::io_context& io, const node::Config& cfg, Log log,
                 std::unique_ptr<node::Durable> durable)
    : io_(io), cfg_(cfg), log_(std::move(log)), durable_(std::move(durable)), sync_timer_(io) {}

Storage::~Storage() = default;

void Storage::load(node::Engine& engine, node::Now n) {
  engine_ = &engine;
  node::Durable::Opened opened = std::exchange(opened_, {});
  if (opened.snapshot) engine.load(*opened.snapshot, n);
  for (const auto& op : opened.ops) engine.replay(op, n);
  startup_ms_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - opened_at_).count());
  for (const auto& w : opened.warnings) log_(node::LogLevel::kWarn, w);
  log_(node::LogLevel::kInfo,
       "loaded " + cfg_.data_dir + ": " + std::to_string(engine.replica().map().size()) + " entries (" +
           std::to_string(opened.snapshot ? opened.snapshot->entries.size() : 0) + " from the snapshot, " +
           std::to_string(opened.ops.size()) + " log records) in " + std::to_string(startup_ms_) + " ms");
  // A new directory gets its identity on disk at once; a repaired one a
  // snapshot that the log continues, in place of the damaged or missing one.
  if (opened.repaired) {
    take_snapshot("after --repair");
  } else if (!opened.snapshot) {
    take_snapshot("new data directory");
  }
  update_storage_info();
}

void Storage::start() { arm_sync_timer(); }

// The batch's log records go first: its datagrams (and the responses to its
// requests) then wait for the sync their local writes need.
void Storage::append(std::vector<node::Effect>& effects) {
  std::vector<node::LogOp> ops;
  for (node::Effect& e : effects) {
    if (auto* op = std::get_if<node::LogOp>(&e)) ops.push_back(std::move(*op));
  }
  if (ops.empty()) return;
  const bool local = durable_->append(std::move(ops));
  if (local && cfg_.sync == "always") schedule_sync();  // local writes wait for it
}

void Storage::after_sync(std::function<void(bool synced)> fn) { after_sync_.push_back(std::move(fn)); }

void Storage::sync_now() {
  if (sync_pending_) complete_sync();
}

void Storage::schedule_sync() {
  sync_pending_ = true;
  if (sync_posted_) return;
  sync_posted_ = true;
  // Runs after every handler already queued: they all share this one sync.
  asio::post(io_, [this] { complete_sync(); });
}

// sync_posted_ only keeps one call queued; a queued call that finds nothing
// pending (sync_now() or shut_down() came first) does nothing.
void Storage::complete_sync() {
  sync_posted_ = false;
  if (!sync_pending_) return;
  const Status synced = timed_sync();
  if (!synced.ok()) log_(node::LogLevel::kError, "write-ahead log sync failed: " + synced.to_string());
  sync_pending_ = false;
  for (auto& fn : std::exchange(after_sync_, {})) fn(synced.ok());
  if (durable_->log_bytes() > cfg_.snapshot_log_bytes) take_snapshot("log size");
  update_storage_info();
}

void Storage::arm_sync_timer() {
  const uint64_t ms = cfg_.sync == "interval" ? cfg_.sync_interval_ms : 200;
  sync_timer_.expires_after(std::chrono::milliseconds(ms));
  sync_timer_.async_wait([this](std::error_code ec) {
    if (ec || shut_down_) return;
    // A pending group commit syncs on its own, and its closures must see it.
    if (durable_->dirty() && !sync_pending_) {
      const Status s = timed_sync();
      if (!s.ok()) log_(node::LogLevel::kError, "sync failed: " + s.to_string());
    }
    if (durable_->log_bytes() > cfg_.snapshot_log_bytes) take_snapshot("log size");
    update_storage_info();
    arm_sync_timer();
  });
}

Status Storage::timed_sync() {
  const auto t0 = steady_clock::now();
  Status s = durable_->sync();
  const double secs = std::chrono::duration<double>(steady_clock::now() - t0).count();
  ++sync_count_;
  sync_seconds_ += secs;
  for (size_t i = 0; i < std::size(kSyncBuckets); ++i) {
    if (secs <= kSyncBuckets[i]) ++sync_hist_[i];
  }
  return s;
}

void Storage::compact() { take_snapshot("compaction"); }

void Storage::shut_down() {
  shut_down_ = true;
  complete_sync();
  take_snapshot("clean shutdown");
}

void Storage::take_snapshot(const char* why) {
  const auto t0 = steady_clock::now();
  node::Snapshot snap = engine_->snapshot();
  const size_t keys = snap.entries.size();
  if (Status s = durable_->snapshot(std::move(snap)); !s.ok()) {
    log_(node::LogLevel::kError, "snapshot failed: " + s.to_string());
    return;
  }
  ++snapshots_;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t0).count();
  log_(node::LogLevel::kInfo, std::string("snapshot (") + why + "): " + std::to_string(keys) + " entries in " +
                                  std::to_string(ms) + " ms");
}

void Storage::update_storage_info() {
  wire::Value v = wire::Value::object();
  v.set("kind", "durable");
  v.set("data_dir", cfg_.data_dir);
  v.set("sync", cfg_.sync == "always" ? std::string("always")
                                       : "interval " + std::to_string(cfg_.sync_interval_ms) + "ms");
  v.set("startup_ms", startup_ms_);
  v.set("log_bytes", durable_->log_bytes());
  v.set("syncs", durable_->syncs());
  v.set("snapshots", snapshots_);
  engine_->set_storage_info(std::move(v));
}

std::string Storage::metrics() const {
  std::ostringstream w;
  w << "# HELP meshkv_wal_sync_seconds Write-ahead log syncs (fdatasync) and their latency.\n"
       "# TYPE meshkv_wal_sync_seconds histogram\n";
  for (size_t i = 0; i < std::size(kSyncBuckets); ++i) {
    w << "meshkv_wal_sync_seconds_bucket{le=\"" << kSyncBuckets[i] << "\"} " << sync_hist_[i] << "\n";
  }
  w << "meshkv_wal_sync_seconds_bucket{le=\"+Inf\"} " << sync_count_ << "\n"
    << "meshkv_wal_sync_seconds_sum " << sync_seconds_ << "\n"
    << "meshkv_wal_sync_seconds_count " << sync_count_ << "\n";
  w << "# HELP meshkv_wal_bytes Bytes in the write-ahead log since the last snapshot.\n"
       "# TYPE meshkv_wal_bytes gauge\n"
    << "meshkv_wal_bytes " << durable_->log_bytes() << "\n";
  w << "# HELP meshkv_snapshots_total Snapshots written by this process.\n"
       "# TYPE meshkv_snapshots_total counter\n"
    << "meshkv_snapshots_total " << snapshots_ << "\n";
  w << "# HELP meshkv_startup_seconds Time to load the snapshot and replay the log at start.\n"
       "# TYPE meshkv_startup_seconds gauge\n"
    << "meshkv_startup_seconds " << static_cast<double>(startup_ms_) / 1000.0 << "\n";
  return w.str();
}

}  // namespace meshkv::net
