#include "node/durable.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

namespace meshkv::node {

namespace {
// The segment number of a file name "wal-N.log".
std::optional<uint64_t> segment_number(const std::string& name) {
  uint64_t n = 0;
  char tail[8] = {};
  if (std::sscanf(name.c_str(), "wal-%" SCNu64 ".l%7s", &n, tail) == 2 && std::string(tail) == "og") return n;
  return std::nullopt;
}
}  // namespace

std::string Durable::segment_path(uint64_t n) const {
  char name[40];
  std::snprintf(name, sizeof name, "/wal-%08" PRIu64 ".log", n);
  return dir_ + name;
}

// Segment numbers present in the directory, ascending.
Result<std::vector<uint64_t>> Durable::list_segments() const {
  auto names = env_.list_dir(dir_);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> out;
  for (const auto& name : *names) {
    if (auto n = segment_number(name)) out.push_back(*n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status Durable::lock_dir(bool& created) {
  const Status made = env_.create_dir(dir_);
  if (!made.ok() && made.code() != Code::kAlreadyExists) return made;
  created = made.ok();
  const std::string path = dir_ + "/LOCK";
  auto lock = env_.lock(path);
  if (!lock.ok()) {
    if (lock.status().code() != Code::kUnavailable) return lock.status();
    return Status::Unavailable("data directory " + dir_ + " is in use by another meshkv process (locked: " +
                               path + ")");
  }
  lock_ = std::move(*lock);
  return Status::Ok();
}

Status Durable::load_snapshot(Opened& out) {
  const std::string path = dir_ + "/snapshot";
  if (!env_.exists(path)) return Status::Ok();
  auto recs = store::read_records(path, false, env_);
  if (!recs.ok()) return recs.status();
  if (recs->torn_tail) return Status::Corruption(path + ": incomplete snapshot");
  auto snap = decode_snapshot(recs->records);
  if (!snap.ok()) return Status::Corruption(path + ": " + snap.status().message());
  segment_ = snap->wal_segment;
  out.snapshot = std::move(*snap);
  return Status::Ok();
}

Status Durable::replay_segments(const std::vector<uint64_t>& segments, bool repair, Opened& out,
                                uint64_t& last_valid) {
  for (uint64_t n : segments) {
    const std::string path = segment_path(n);
    if (out.snapshot && n < segment_) {
      (void)env_.remove(path);  // compacted into the snapshot already
      continue;
    }
    auto r = store::read_records(path, repair, env_);
    if (!r.ok()) {
      return Status::Corruption(r.status().message() +
                                "; refusing to start (start with --repair to keep what precedes the "
                                "damage and recover the rest from peers)");
    }
    if (r->torn_tail) {
      out.warnings.push_back(path + ": cut off " + std::to_string(r->file_bytes - r->valid_bytes) +
                             " bytes of a torn or damaged record at offset " + std::to_string(r->valid_bytes));
      if (Status s = env_.truncate(path, r->valid_bytes); !s.ok()) return s;
    }
    for (const auto& rec : r->records) {
      auto op = decode_op(rec);
      if (!op.ok()) {
        if (!repair) return Status::Corruption(path + ": " + op.status().message());
        out.warnings.push_back(path + ": skipped an undecodable record");
        continue;
      }
      out.ops.push_back(std::move(*op));
    }
    segment_ = std::max(segment_, n);
    last_valid = r->valid_bytes;
    log_bytes_ += r->valid_bytes;
  }
  return Status::Ok();
}

Result<std::unique_ptr<Durable>> Durable::open(const std::string& dir, bool repair, Opened& out, store::Env& env) {
  auto d = std::unique_ptr<Durable>(new Durable(env));
  d->dir_ = dir;
  bool created = false;
  if (Status s = d->lock_dir(created); !s.ok()) return s;
  if (Status s = d->load_snapshot(out); !s.ok()) return s;
  auto segments = d->list_segments();
  if (!segments.ok()) return segments.status();
  uint64_t last_valid = 0;
  if (Status s = d->replay_segments(*segments, repair, out, last_valid); !s.ok()) return s;
  const bool continuing = !segments->empty() && segments->back() == d->segment_;
  d->synced_bytes_ = continuing ? last_valid : 0;
  if (Status s = d->wal_.open(d->segment_path(d->segment_), d->synced_bytes_); !s.ok()) return s;
  // Names made here are durable only once their directories are synced:
  // those in the data directory by the first sync() (segment_named_ is
  // false), a new data directory's own name now. Not fatal: a parent that
  // cannot be opened for reading worked before this sync was added.
  if (created) {
    if (Status s = env.sync_dir(store::parent_dir(dir)); !s.ok()) {
      out.warnings.push_back(s.message() + "; the new data directory may not survive a power loss");
    }
  }
  return d;
}

bool Durable::append(const std::vector<LogOp>& ops) {
  if (ops.empty()) return false;
  bool local = false;
  for (const auto& op : ops) {
    const std::string rec = encode_op(op);
    wal_.append(rec);
    log_bytes_ += rec.size() + store::kRecordHeader;
    local |= op.local;
  }
  dirty_ = true;
  // Into the kernel at once (one write per event): a crash of the process
  // then loses nothing logged; only the fdatasync waits for its policy.
  if (Status s = wal_.flush(); !s.ok()) last_error_ = s;
  return local;
}

Status Durable::sync() {
  if (!last_error_.ok()) return std::exchange(last_error_, Status::Ok());
  if (!dirty_) return Status::Ok();
  if (Status s = sync_log(); !s.ok()) return s;
  ++syncs_;
  return Status::Ok();
}

Status Durable::sync_log() {
  if (Status s = wal_.sync(); !s.ok()) return s;
  // Synced records in a segment whose name a power loss could undo are not
  // durable: the directory is synced once per segment before they count.
  if (!segment_named_) {
    if (Status s = env_.sync_dir(dir_); !s.ok()) return s;
    segment_named_ = true;
  }
  dirty_ = false;
  synced_bytes_ = wal_.size();
  return Status::Ok();
}

Status Durable::abandon_unsynced() {
  wal_.discard();
  last_error_ = Status::Ok();
  dirty_ = false;
  const std::string path = segment_path(segment_);
  const uint64_t before = wal_.size();
  log_bytes_ -= std::min(log_bytes_, before - std::min(before, synced_bytes_));
  // Closed first: the writer must not flush anything into the cut file.
  wal_.close();
  if (Status s = env_.truncate(path, synced_bytes_); !s.ok()) return s;
  return wal_.open(path, synced_bytes_);
}

Status Durable::snapshot(Snapshot s) {
  // After this, sync() may report success without syncing (not dirty): what
  // it acknowledges must be durable here already. (A writer left closed by
  // abandon_unsynced() holds nothing to sync: the snapshot has it all.)
  if (wal_.is_open()) {
    if (Status st = sync_log(); !st.ok()) return st;
  }
  // The new segment exists before the snapshot names it; a crash in between
  // replays the old segment and the (empty) new one over the old snapshot.
  const uint64_t next = segment_ + 1;
  if (Status st = wal_.open(segment_path(next), 0); !st.ok()) return st;
  // From here on appends go to `next`, whatever happens to the snapshot: a
  // later attempt must never reopen (and truncate) the segment in use.
  segment_ = next;
  segment_named_ = false;
  synced_bytes_ = 0;
  s.wal_segment = next;
  if (Status st = store::write_records_atomically(dir_ + "/snapshot", encode_snapshot(s), env_); !st.ok()) {
    return st;
  }
  segment_named_ = true;  // the snapshot's directory sync named it too
  if (auto old = list_segments(); old.ok()) {
    for (uint64_t n : *old) {
      if (n < next) (void)env_.remove(segment_path(n));  // else the next open() removes it
    }
  }
  log_bytes_ = 0;
  return env_.sync_dir(dir_);
}

}  // namespace meshkv::node
