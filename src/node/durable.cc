#include "node/durable.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <random>
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

namespace {
std::string hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// A snapshot's uid: random, so that a snapshot from elsewhere (another
// node's, an old backup) is not taken for the one a log continues.
uint64_t new_snapshot_uid() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t{rd()} << 32) ^ rd();
  return v;
}

std::string counted(size_t n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

const char* const kRepairHint =
    "; refusing to start (start with --repair to keep what verifies, drop the rest and the snapshot's "
    "version vector, and recover what is missing from peers)";
}  // namespace

const char* Durable::repair_hint() { return kRepairHint; }

Status Durable::load_snapshot(bool repair, Opened& out) {
  const std::string path = dir_ + "/snapshot";
  if (!env_.exists(path)) return Status::Ok();
  auto scan = store::scan_records(path, env_);
  if (!scan.ok()) return scan.status();
  // The first thing wrong, for the refusal: damage the checksums show, else
  // records that verify but do not decode (a bug, or another format).
  std::string wrong;
  // A snapshot that verifies becomes the one this directory continues.
  auto adopt = [&](Snapshot snap) {
    segment_ = snap.wal_segment;
    have_snapshot_ = true;
    snapshot_uid_ = snap.uid;
    snapshot_checksum_ = scan->checksum;
    node_ = snap.id;
    out.snapshot = std::move(snap);
    return Status::Ok();
  };
  if (!scan->damage.empty()) {
    const auto& d = scan->damage.front();
    wrong = d.what + " at offset " + std::to_string(d.offset) + " (record " + std::to_string(d.record) +
            ", of " + std::to_string(scan->file_bytes) + " bytes)";
  } else if (!repair && !scan->records.empty()) {
    // The header now; the entries as the engine loads them (Snapshot::pending),
    // which refuses the start the same way if one does not decode.
    SnapshotCounts counts;
    auto snap = decode_snapshot_header(*scan->records[0], counts);
    const size_t n = scan->records.size() - 1;
    if (snap.ok() && snapshot_record_entries(n + 1, counts) == 0 &&
        (n == 0 ? counts.entries + counts.quarantined == 0 : snapshot_record_entries(n, counts) > 0)) {
      snap->raw = scan->data;
      snap->pending.reserve(n);
      for (size_t i = 1; i <= n; ++i) snap->pending.push_back(*scan->records[i]);
      snap->pending_entries = counts.entries;
      snap->pending_quarantined = counts.quarantined;
      return adopt(std::move(*snap));
    }
    wrong = snap.ok() ? "snapshot: " + std::to_string(n) + " entry records where the header counts " +
                            std::to_string(counts.entries + counts.quarantined) + " entries"
                      : snap.status().message();
  } else {
    std::vector<std::string_view> recs;
    recs.reserve(scan->records.size());
    for (const auto& r : scan->records) recs.push_back(*r);
    auto snap = decode_snapshot(recs);
    if (snap.ok()) return adopt(std::move(*snap));
    wrong = snap.status().message();
  }
  if (!repair) return Status::Corruption(path + ": " + wrong + kRepairHint);
  for (const auto& d : scan->damage) {
    out.warnings.push_back(path + ": " + d.what + " at offset " + std::to_string(d.offset) + " (record " +
                           std::to_string(d.record) + ")");
  }
  if (scan->damage.empty()) out.warnings.push_back(path + ": " + wrong);
  return salvage_snapshot(path, scan->records, scan->complete, out);
}

// --repair of a damaged snapshot: keeps the header and the entry records
// that verify and decode, drops the rest and the version vector.
Status Durable::salvage_snapshot(const std::string& path, const std::vector<std::optional<std::string_view>>& records,
                                 bool complete, Opened& out) {
  out.repaired = true;
  claims_untrusted_ = true;
  SnapshotCounts counts;
  Result<Snapshot> snap = Status::Corruption("no header record");
  if (!records.empty() && records[0]) snap = decode_snapshot_header(*records[0], counts);
  if (!snap.ok()) {
    // Without the header nothing tells entries from quarantined ones (which
    // must never show): every entry goes, and the log and peers refill.
    out.warnings.push_back(path + ": --repair dropped the whole snapshot (" + std::to_string(records.size()) +
                           " records; its header is damaged: " + snap.status().message() +
                           "); starting from the log alone, without its range claims; anti-entropy "
                           "refills the rest from peers");
    return Status::Ok();
  }
  std::string dropped_records;
  for (size_t i = 1; i < records.size(); ++i) {
    Status st = Status::Corruption("damaged");
    if (records[i]) st = decode_snapshot_record(*records[i], i, counts, *snap);
    if (!st.ok()) dropped_records += (dropped_records.empty() ? "" : ", ") + std::to_string(i);
  }
  if (!complete) dropped_records += std::string(dropped_records.empty() ? "" : ", ") + "all after the damage";
  const uint64_t total = counts.entries + counts.quarantined;
  const uint64_t kept = snap->entries.size() + snap->quarantine.size();
  const size_t origins = snap->vv.items().size();
  out.warnings.push_back(path + ": --repair dropped " + std::to_string(total > kept ? total - kept : 0) + " of " +
                         std::to_string(total) + " entries (records " +
                         (dropped_records.empty() ? std::string("none") : dropped_records) +
                         ") and the snapshot's version vector (" + counted(origins, "origin") +
                         "); kept " + std::to_string(kept) +
                         " entries; the log is replayed without its range claims, and anti-entropy "
                         "refills the rest from peers");
  snap->vv = {};
  segment_ = snap->wal_segment;
  node_ = snap->id;
  out.snapshot = std::move(*snap);
  return Status::Ok();
}

// The header of the first segment replayed: it must continue the snapshot
// loaded, or none if none was.
Status Durable::check_header(const std::string& path, const SegmentHeader& h, bool repair, Opened& out) {
  if (!h.node.empty() && node_.empty()) node_ = h.node;
  if (claims_untrusted_) return Status::Ok();  // the snapshot is being repaired already
  const std::string snap_path = dir_ + "/snapshot";
  std::string wrong;
  if (!have_snapshot_) {
    if (!h.continues) return Status::Ok();
    wrong = "snapshot " + hex(h.snapshot_uid) + " missing: " + path + " continues it";
    if (!repair) {
      return Status::Corruption(wrong +
                                "; refusing to start (start with --repair to start from the log alone and "
                                "recover what the snapshot held from peers)");
    }
    out.warnings.push_back(wrong + "; --repair dropped every entry it held and starts from the log alone, "
                                   "without its range claims; anti-entropy refills the rest from peers");
    out.repaired = true;
    claims_untrusted_ = true;
    return Status::Ok();
  }
  if (!h.continues) {
    wrong = snap_path + " is not the snapshot that " + path + " continues (it continues none)";
  } else if (h.snapshot_uid != 0 && snapshot_uid_ != 0 && h.snapshot_uid != snapshot_uid_) {
    wrong = snap_path + " is snapshot " + hex(snapshot_uid_) + ", but " + path + " continues snapshot " +
            hex(h.snapshot_uid);
  } else if (h.snapshot_checksum != snapshot_checksum_) {
    wrong = snap_path + ": checksum mismatch: its records sum to " + hex(snapshot_checksum_).substr(8) +
            ", the snapshot " + path + " continues to " + hex(h.snapshot_checksum).substr(8);
  } else {
    return Status::Ok();
  }
  if (!repair) return Status::Corruption(wrong + kRepairHint);
  out.warnings.push_back(wrong + "; --repair keeps its entries but dropped its version vector (" +
                         counted(out.snapshot->vv.items().size(), "origin") +
                         ") and the log's range claims; anti-entropy refills the rest from peers");
  out.snapshot->vv = {};
  out.repaired = true;
  claims_untrusted_ = true;
  return Status::Ok();
}

Status Durable::replay_segments(const std::vector<uint64_t>& segments, bool repair, Opened& out,
                                uint64_t& last_valid) {
  bool first = true;
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
    // Only the first segment replayed is checked against the snapshot: the
    // one the snapshot names, or the oldest. A later one may continue a
    // snapshot whose writing a crash cut short (the segment is made first).
    const bool check = first && (!out.snapshot || n == segment_);
    first = false;
    for (size_t i = 0; i < r->records.size(); ++i) {
      const std::string& rec = r->records[i];
      if (i == 0 && is_segment_header(rec)) {
        auto h = decode_segment_header(rec);
        if (!h.ok()) {
          if (!repair) return Status::Corruption(path + ": " + h.status().message());
          out.warnings.push_back(path + ": skipped an undecodable segment header");
          continue;
        }
        if (check) {
          if (Status s = check_header(path, *h, repair, out); !s.ok()) return s;
        } else if (!h->node.empty() && node_.empty()) {
          node_ = h->node;
        }
        continue;
      }
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
  if (claims_untrusted_) {
    const auto claims = std::erase_if(out.ops, [](const LogOp& op) { return op.kind == LogOp::Kind::kRange; });
    if (claims > 0) {
      out.warnings.push_back("--repair skipped " + counted(claims, "range claim") +
                             " of the log: they extend the dropped version vector");
    }
  }
  return Status::Ok();
}

void Durable::write_header() {
  SegmentHeader h;
  h.continues = have_snapshot_;
  h.snapshot_uid = snapshot_uid_;
  h.snapshot_checksum = snapshot_checksum_;
  h.node = node_;
  const std::string rec = encode_segment_header(h);
  wal_.append(rec);
  log_bytes_ += rec.size() + store::kRecordHeader;
}

Result<std::unique_ptr<Durable>> Durable::open(const std::string& dir, bool repair, Opened& out, store::Env& env) {
  auto d = std::unique_ptr<Durable>(new Durable(env));
  d->dir_ = dir;
  bool created = false;
  if (Status s = d->lock_dir(created); !s.ok()) return s;
  if (Status s = d->load_snapshot(repair, out); !s.ok()) return s;
  auto segments = d->list_segments();
  if (!segments.ok()) return segments.status();
  uint64_t last_valid = 0;
  if (Status s = d->replay_segments(*segments, repair, out, last_valid); !s.ok()) return s;
  const bool continuing = !segments->empty() && segments->back() == d->segment_;
  d->synced_bytes_ = continuing ? last_valid : 0;
  if (Status s = d->wal_.open(d->segment_path(d->segment_), d->synced_bytes_); !s.ok()) return s;
  // A new (or emptied) segment starts with its header; durable with the
  // first sync, like the records after it.
  if (d->wal_.size() == 0) {
    d->write_header();
    if (Status s = d->wal_.flush(); !s.ok()) d->last_error_ = s;
  }
  if (out.repaired && d->node_.empty()) {
    out.warnings.push_back(dir + ": the node's name was lost with the snapshot: give it with --id");
  }
  out.node = d->node_;
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
  if (Status s = wal_.open(path, synced_bytes_); !s.ok()) return s;
  if (wal_.size() == 0) write_header();  // cut back to nothing: the segment starts over
  return Status::Ok();
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
  s.wal_segment = next;
  s.uid = new_snapshot_uid();
  const std::vector<std::string> records = encode_snapshot(s);
  if (Status st = wal_.open(segment_path(next), 0); !st.ok()) return st;
  // From here on appends go to `next`, whatever happens to the snapshot: a
  // later attempt must never reopen (and truncate) the segment in use.
  segment_ = next;
  segment_named_ = false;
  synced_bytes_ = 0;
  // The segment names the snapshot it continues before the snapshot exists;
  // synced, so that the header is there once the snapshot is (the rename
  // below syncs the directory, which names the segment).
  have_snapshot_ = true;
  snapshot_uid_ = s.uid;
  snapshot_checksum_ = store::records_checksum(records);
  node_ = s.id;
  write_header();
  if (Status st = wal_.sync(); !st.ok()) return st;
  synced_bytes_ = wal_.size();
  if (Status st = store::write_records_atomically(dir_ + "/snapshot", records, env_); !st.ok()) {
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
