// The data directory in the shell: start-up replay, group commit, periodic
// sync and snapshots.
#include <malloc.h>

#include "net/server_impl.h"
#include "node/control.h"

namespace meshkv::net {

using namespace detail;

// ---- durability --------------------------------------------------------------

Status Server::Impl::open_durable() {
  const auto t0 = steady_clock::now();
  node::Durable::Opened opened;
  auto d = node::Durable::open(cfg.data_dir, cfg.repair, opened);
  if (!d.ok()) return d.status();
  durable = std::move(*d);
  if (opened.snapshot) {
    if (cfg.id.empty()) {
      cfg.id = opened.snapshot->id;
    } else if (cfg.id != opened.snapshot->id) {
      return Status::Invalid("data directory " + cfg.data_dir + " belongs to node '" +
                             opened.snapshot->id + "', not '" + cfg.id + "'");
    }
  }
  engine = std::make_unique<node::Engine>(cfg, engine_uid, cfg.listen, engine_seed, clock());
  engine->secure(std::exchange(security, {}));
  const node::Now n = clock();
  if (opened.snapshot) engine->load(*opened.snapshot, n);
  for (const auto& op : opened.ops) engine->replay(op, n);
  startup_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t0).count());
  for (const auto& w : opened.warnings) log(node::LogLevel::kWarn, w);
  log(node::LogLevel::kInfo,
      "loaded " + cfg.data_dir + ": " + std::to_string(engine->replica().map().size()) +
          " entries (" + std::to_string(opened.snapshot ? opened.snapshot->entries.size() : 0) +
          " from the snapshot, " + std::to_string(opened.ops.size()) + " log records) in " +
          std::to_string(startup_ms) + " ms");
  // A new directory gets its identity on disk at once.
  if (!opened.snapshot) take_snapshot("new data directory");
  update_storage_info();
  return Status::Ok();
}

void Server::Impl::schedule_sync() {
  sync_pending = true;
  if (sync_posted) return;
  sync_posted = true;
  // Runs after every handler already queued: they all share this one sync.
  asio::post(io, [this] { complete_sync(); });
}

void Server::Impl::complete_sync() {
  sync_posted = false;
  if (!sync_pending) return;
  const auto t0 = steady_clock::now();
  const Status synced = durable->sync();
  note_sync(steady_clock::now() - t0);
  if (!synced.ok()) log(node::LogLevel::kError, "write-ahead log sync failed: " + synced.to_string());
  sync_pending = false;
  for (const node::Datagram& d : held) send(d);
  held.clear();
  for (auto& [c, close_after] : std::exchange(held_responses, {})) {
    // Never acknowledge a write that is not on disk: without a response the
    // client reports the node unreachable and knows the write is uncertain.
    if (synced.ok()) {
      write_response(c, close_after);
    } else {
      close_conn(*c);
    }
  }
  if (durable->log_bytes() > cfg.snapshot_log_bytes) take_snapshot("log size");
  update_storage_info();
}

void Server::Impl::arm_sync_timer() {
  // "interval" syncs on this timer; "always" syncs local writes at once and
  // replicated ones here.
  const uint64_t ms = cfg.sync == "interval" ? cfg.sync_interval_ms : 200;
  sync_timer.expires_after(std::chrono::milliseconds(ms));
  sync_timer.async_wait([this](std::error_code ec) {
    if (ec || stopping) return;
    if (durable->dirty() && !sync_pending) {
      const auto t0 = steady_clock::now();
      const Status s = durable->sync();
      note_sync(steady_clock::now() - t0);
      if (!s.ok()) log(node::LogLevel::kError, "sync failed: " + s.to_string());
    }
    if (durable->log_bytes() > cfg.snapshot_log_bytes) take_snapshot("log size");
    update_storage_info();
    arm_sync_timer();
  });
}

void Server::Impl::take_snapshot(const char* why) {
  const auto t0 = steady_clock::now();
  node::Snapshot snap = engine->snapshot();
  const size_t keys = snap.entries.size();
  if (Status s = durable->snapshot(std::move(snap)); !s.ok()) {
    log(node::LogLevel::kError, "snapshot failed: " + s.to_string());
    return;
  }
  ++snapshots;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t0).count();
  log(node::LogLevel::kInfo, std::string("snapshot (") + why + "): " + std::to_string(keys) +
                                 " entries in " + std::to_string(ms) + " ms");
}

void Server::Impl::compact() {
  // The log still holds what was collected or dropped: a snapshot replaces
  // it. Then the allocator returns freed pages to the system.
  if (durable) take_snapshot("compaction");
  ::malloc_trim(0);
}

void Server::Impl::update_storage_info() {
  wire::Value v = wire::Value::object();
  v.set("kind", "durable");
  v.set("data_dir", cfg.data_dir);
  v.set("sync", cfg.sync == "always" ? std::string("always")
                                      : "interval " + std::to_string(cfg.sync_interval_ms) + "ms");
  v.set("startup_ms", startup_ms);
  v.set("log_bytes", durable->log_bytes());
  v.set("syncs", durable->syncs());
  v.set("snapshots", snapshots);
  engine->set_storage_info(std::move(v));
}

}  // namespace meshkv::net
