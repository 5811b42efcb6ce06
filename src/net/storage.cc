#include "net/storage.h"

#include <malloc.h>

#include <cctype>
#include <sstream>
#include <utility>

namespace meshkv::net {

using std::chrono::steady_clock;

Result<std::unique_ptr<Storage>> Storage::open(asio::io_context& io, node::Config& cfg, Log log, store::Env& env) {
  const auto t0 = steady_clock::now();
  node::Durable::Opened opened;
  auto d = node::Durable::open(cfg.data_dir, cfg.repair, opened, env);
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
    : io_(io),
      cfg_(cfg),
      log_(std::move(log)),
      durable_(std::move(durable)),
      sync_timer_(io),
      recovery_timer_(io) {}

Storage::~Storage() = default;

Status Storage::load(node::Engine& engine, node::Now n) {
  engine_ = &engine;
  node::Durable::Opened opened = std::exchange(opened_, {});
  const size_t from_snapshot =
      opened.snapshot ? opened.snapshot->entries.size() + opened.snapshot->pending_entries : 0;
  if (opened.snapshot) {
    if (Status s = engine.load(std::move(*opened.snapshot), n); !s.ok()) {
      return Status::Corruption(cfg_.data_dir + "/snapshot: " + s.message() + node::Durable::repair_hint());
    }
  }
  for (const auto& op : opened.ops) engine.replay(op, n);
  startup_ms_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - opened_at_).count());
  for (const auto& w : opened.warnings) log_(node::LogLevel::kWarn, w);
  log_(node::LogLevel::kInfo,
       "loaded " + cfg_.data_dir + ": " + std::to_string(engine.replica().map().size()) + " entries (" +
           std::to_string(from_snapshot) + " from the snapshot, " +
           std::to_string(opened.ops.size()) + " log records) in " + std::to_string(startup_ms_) + " ms");
  // A new directory gets its identity on disk at once; a repaired one a
  // snapshot that the log continues, in place of the damaged or missing one.
  if (opened.repaired || !opened.snapshot) {
    if (Status s = take_snapshot(opened.repaired ? "after --repair" : "new data directory"); !s.ok()) {
      log_(node::LogLevel::kError, "snapshot failed: " + s.to_string());
    }
  }
  update_storage_info();
  return Status::Ok();
}

void Storage::start(std::function<node::Now()> clock, std::function<void()> kick) {
  clock_ = std::move(clock);
  kick_ = std::move(kick);
  arm_sync_timer();
}

// The batch's log records go first: its datagrams (and the responses to its
// requests) then wait for the sync their local writes need.
void Storage::append(std::vector<node::Effect>& effects) {
  std::vector<node::LogOp> ops;
  for (node::Effect& e : effects) {
    if (auto* op = std::get_if<node::LogOp>(&e)) ops.push_back(std::move(*op));
  }
  if (ops.empty()) return;
  // While refusing, no local write happens and the replicated ones stay in
  // memory: the snapshot that ends the refusal writes what they made.
  if (refusing()) return;
  const bool local = durable_->append(std::move(ops));
  if (durable_->failed()) {
    schedule_sync();  // its failure withdraws the batch and answers what waits
  } else if (local && cfg_.sync == "always") {
    schedule_sync();  // local writes wait for it
  } else if (local) {
    engine_->writes_durable();  // "interval": in the kernel is what it promises
  }
}

void Storage::after_sync(std::function<void(const Status&)> fn) { after_sync_.push_back(std::move(fn)); }

Status Storage::sync_now() {
  if (!sync_pending_) return Status::Ok();
  complete_sync();  // a posted call, if any, then finds nothing pending
  return refusing() ? Status::Unavailable(refusal_) : Status::Ok();
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
  Status outcome = timed_sync();
  sync_pending_ = false;
  if (outcome.ok()) {
    engine_->writes_durable();
  } else {
    outcome = fail(outcome);
  }
  for (auto& fn : std::exchange(after_sync_, {})) fn(outcome);
  if (!refusing() && durable_->log_bytes() > cfg_.snapshot_log_bytes) {
    if (Status st = take_snapshot("log size"); !st.ok()) log_(node::LogLevel::kError, "snapshot failed: " + st.to_string());
  }
  update_storage_info();
}

namespace {
// "No space left on device" out of "cannot write /d/wal-1.log: No space
// left on device": the reason a client can act on.
std::string os_reason(const Status& s) {
  const std::string& m = s.message();
  const size_t colon = m.rfind(": ");
  std::string r = colon == std::string::npos ? m : m.substr(colon + 2);
  if (!r.empty()) r[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(r[0])));
  return r;
}
}  // namespace

Status Storage::fail(const Status& why) {
  ++failures_;
  const bool first = !refusing();
  const std::string reason = os_reason(why) + " (write-ahead log in " + cfg_.data_dir + ")";
  refusal_ = "write refused: " + cfg_.effective_id() + ": " + reason;
  if (Status s = durable_->abandon_unsynced(); !s.ok()) {
    log_(node::LogLevel::kError, "cannot cut the failed records from the log: " + s.to_string() +
                                     "; the next snapshot replaces the log");
  }
  const size_t withdrawn = engine_->storage_failed(reason, clock_ ? clock_() : node::Now{});
  withdrawn_ += withdrawn;
  log_(node::LogLevel::kError,
       "write-ahead log failed: " + why.to_string() + "; " + std::to_string(withdrawn) +
           " unacknowledged local " + (withdrawn == 1 ? "write" : "writes") + " withdrawn" +
           (first ? "; refusing writes until the log works again (reads go on)" : ""));
  if (first) {
    recovery_delay_ms_ = 500;
    arm_recovery();
  }
  if (kick_) asio::post(io_, kick_);  // the withdrawals' changes and log lines
  return Status::Unavailable(refusal_);
}

void Storage::arm_recovery() {
  recovery_timer_.expires_after(std::chrono::milliseconds(recovery_delay_ms_));
  recovery_timer_.async_wait([this](std::error_code ec) {
    if (!ec && !shut_down_) try_recovery();
  });
}

// A snapshot that succeeds holds every entry in memory, replicated ones
// merged while refusing included, and replaces the log: from then on the
// log is whole again.
void Storage::try_recovery() {
  if (!refusing()) return;
  if (Status s = take_snapshot("the log works again"); !s.ok()) {
    recovery_delay_ms_ = std::min<uint64_t>(recovery_delay_ms_ * 2, 8000);
    arm_recovery();
    update_storage_info();
    return;
  }
  refusal_.clear();
  engine_->storage_recovered(clock_ ? clock_() : node::Now{});
  log_(node::LogLevel::kInfo, "the write-ahead log works again: accepting writes (" +
                                  std::to_string(engine_->writes_refused()) + " refused so far)");
  update_storage_info();
  if (kick_) kick_();
}

void Storage::arm_sync_timer() {
  const uint64_t ms = cfg_.sync == "interval" ? cfg_.sync_interval_ms : 200;
  sync_timer_.expires_after(std::chrono::milliseconds(ms));
  sync_timer_.async_wait([this](std::error_code ec) {
    if (ec || shut_down_) return;
    // A pending group commit syncs on its own, and its closures must see it.
    if (durable_->dirty() && !sync_pending_ && !refusing()) {
      if (const Status s = timed_sync(); !s.ok()) (void)fail(s);
    }
    if (!refusing() && durable_->log_bytes() > cfg_.snapshot_log_bytes) {
      if (Status st = take_snapshot("log size"); !st.ok()) log_(node::LogLevel::kError, "snapshot failed: " + st.to_string());
    }
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

void Storage::compact() {
  if (refusing()) return;  // recovery takes one
  if (Status s = take_snapshot("compaction"); !s.ok()) log_(node::LogLevel::kError, "snapshot failed: " + s.to_string());
}

void Storage::shut_down() {
  shut_down_ = true;
  recovery_timer_.cancel();
  complete_sync();
  if (Status s = take_snapshot("clean shutdown"); !s.ok()) {
    log_(node::LogLevel::kError, "snapshot failed: " + s.to_string());
  }
}

Status Storage::take_snapshot(const char* why) {
  const auto t0 = steady_clock::now();
  node::Snapshot snap = engine_->snapshot();
  const size_t keys = snap.entries.size();
  Status written = durable_->snapshot(std::move(snap));
  // The snapshot was a copy of every entry (about 180 bytes a key in small
  // blocks) and its encoded records: freed now, but glibc keeps freed small
  // blocks mapped. Handing them back took a node that had just loaded 1M
  // keys from 163 MB resident to 113 MB (scripts/bench_mem.sh).
  ::malloc_trim(0);
  if (!written.ok()) return written;
  ++snapshots_;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t0).count();
  log_(node::LogLevel::kInfo, std::string("snapshot (") + why + "): " + std::to_string(keys) + " entries in " +
                                  std::to_string(ms) + " ms");
  return Status::Ok();
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
  v.set("writes", refusing() ? "refused" : "accepted");
  if (refusing()) v.set("refusal", refusal_);
  v.set("log_failures", failures_);
  v.set("writes_refused", engine_->writes_refused());
  v.set("writes_withdrawn", withdrawn_);
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
  w << "# HELP meshkv_storage_refusing_writes 1 while the write-ahead log fails and local writes are refused.\n"
       "# TYPE meshkv_storage_refusing_writes gauge\n"
    << "meshkv_storage_refusing_writes " << (refusing() ? 1 : 0) << "\n";
  w << "# HELP meshkv_storage_failures_total Failed appends or syncs of the write-ahead log.\n"
       "# TYPE meshkv_storage_failures_total counter\n"
    << "meshkv_storage_failures_total " << failures_ << "\n";
  w << "# HELP meshkv_writes_refused_total Local writes refused while the log failed.\n"
       "# TYPE meshkv_writes_refused_total counter\n"
    << "meshkv_writes_refused_total " << engine_->writes_refused() << "\n";
  w << "# HELP meshkv_writes_withdrawn_total Local writes withdrawn because their log record failed.\n"
       "# TYPE meshkv_writes_withdrawn_total counter\n"
    << "meshkv_writes_withdrawn_total " << withdrawn_ << "\n";
  return w.str();
}

}  // namespace meshkv::net
