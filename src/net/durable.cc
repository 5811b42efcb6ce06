#include "net/durable.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cinttypes>
#include <cstdio>

namespace meshkv::net {

namespace {
// Segment numbers present in `dir`, ascending.
std::vector<uint64_t> list_segments(const std::string& dir) {
  std::vector<uint64_t> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      uint64_t n = 0;
      char tail[8] = {};
      if (std::sscanf(e->d_name, "wal-%" SCNu64 ".l%7s", &n, tail) == 2 && std::string(tail) == "og") {
        out.push_back(n);
      }
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::string Durable::segment_path(uint64_t n) const {
  char name[40];
  std::snprintf(name, sizeof name, "/wal-%08" PRIu64 ".log", n);
  return dir_ + name;
}

Result<std::unique_ptr<Durable>> Durable::open(const std::string& dir, bool repair, Opened& out) {
  auto d = std::unique_ptr<Durable>(new Durable());
  d->dir_ = dir;
  if (Status s = d->lock_.acquire(dir); !s.ok()) return s;
  const std::string snap_path = dir + "/snapshot";
  if (::access(snap_path.c_str(), F_OK) == 0) {
    auto recs = store::read_records(snap_path);
    if (!recs.ok()) return recs.status();
    if (recs->torn_tail) return Status::Corruption(snap_path + ": incomplete snapshot");
    auto snap = node::decode_snapshot(recs->records);
    if (!snap.ok()) return Status::Corruption(snap_path + ": " + snap.status().message());
    d->segment_ = snap->wal_segment;
    out.snapshot = std::move(*snap);
  }
  const std::vector<uint64_t> segments = list_segments(dir);
  uint64_t last_valid = 0;
  for (uint64_t n : segments) {
    if (out.snapshot && n < d->segment_) {
      ::unlink(d->segment_path(n).c_str());  // compacted into the snapshot already
      continue;
    }
    const std::string path = d->segment_path(n);
    auto r = store::read_records(path, repair);
    if (!r.ok()) {
      return Status::Corruption(r.status().message() +
                                "; refusing to start (start with --repair to keep what precedes the "
                                "damage and recover the rest from peers)");
    }
    if (r->torn_tail) {
      out.warnings.push_back(path + ": cut off " + std::to_string(r->file_bytes - r->valid_bytes) +
                             " bytes of a torn or damaged record at offset " + std::to_string(r->valid_bytes));
      if (Status s = store::truncate_file(path, r->valid_bytes); !s.ok()) return s;
    }
    for (const auto& rec : r->records) {
      auto op = node::decode_op(rec);
      if (!op.ok()) {
        if (!repair) return Status::Corruption(path + ": " + op.status().message());
        out.warnings.push_back(path + ": skipped an undecodable record");
        continue;
      }
      out.ops.push_back(std::move(*op));
    }
    d->segment_ = std::max(d->segment_, n);
    last_valid = r->valid_bytes;
    d->log_bytes_ += r->valid_bytes;
  }
  const bool continuing = !segments.empty() && segments.back() == d->segment_;
  if (Status s = d->wal_.open(d->segment_path(d->segment_), continuing ? last_valid : 0); !s.ok()) return s;
  return d;
}

bool Durable::append(const std::vector<node::LogOp>& ops) {
  if (ops.empty()) return false;
  bool local = false;
  for (const auto& op : ops) {
    const std::string rec = node::encode_op(op);
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
  if (Status s = wal_.sync(); !s.ok()) return s;
  dirty_ = false;
  ++syncs_;
  return Status::Ok();
}

Status Durable::snapshot(node::Snapshot s) {
  if (Status st = wal_.sync(); !st.ok()) return st;
  dirty_ = false;
  // The new segment exists before the snapshot names it; a crash in between
  // replays the old segment and the (empty) new one over the old snapshot.
  const uint64_t next = segment_ + 1;
  if (Status st = wal_.open(segment_path(next), 0); !st.ok()) return st;
  // From here on appends go to `next`, whatever happens to the snapshot: a
  // later attempt must never reopen (and truncate) the segment in use.
  segment_ = next;
  s.wal_segment = next;
  if (Status st = store::write_records_atomically(dir_ + "/snapshot", node::encode_snapshot(s)); !st.ok()) {
    return st;
  }
  for (uint64_t n : list_segments(dir_)) {
    if (n < next) ::unlink(segment_path(n).c_str());
  }
  log_bytes_ = 0;
  return store::sync_dir(dir_);
}

}  // namespace meshkv::net
