// A node's data directory: the lock, the snapshot and the write-ahead log
// segments, tied to the engine's log operations.
//
//   DIR/LOCK           flock()ed while a node uses the directory
//   DIR/snapshot       the last snapshot (records, see node/persist.h)
//   DIR/wal-N.log      log segments; the snapshot names the first one after it
//
// Start-up: the snapshot, then every segment from the one it names, in
// order. A torn record at the end of a segment (a crash mid-append) is cut
// off with a warning. Damage before the end refuses the start, naming file
// and offset, unless `repair` keeps what precedes it (peers resend the rest).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/persist.h"
#include "store/record_log.h"

namespace meshkv::net {

class Durable {
 public:
  struct Opened {
    std::optional<node::Snapshot> snapshot;
    std::vector<node::LogOp> ops;        // after the snapshot, in order
    std::vector<std::string> warnings;   // torn tails cut, damage skipped
  };

  static Result<std::unique_ptr<Durable>> open(const std::string& dir, bool repair, Opened& out);

  // Appends operations and hands them to the kernel (they survive a crash of
  // the process, not yet of the machine); returns whether any was a local
  // write. A write error is reported by the next sync().
  bool append(const std::vector<node::LogOp>& ops);
  // Makes everything appended so far durable.
  Status sync();
  bool dirty() const { return dirty_; }
  uint64_t log_bytes() const { return log_bytes_; }
  uint64_t syncs() const { return syncs_; }
  // Writes `s` as the new snapshot and starts a new log segment after it.
  Status snapshot(node::Snapshot s);
  const std::string& dir() const { return dir_; }

 private:
  std::string segment_path(uint64_t n) const;
  store::DirLock lock_;
  std::string dir_;
  uint64_t segment_ = 1;
  store::RecordWriter wal_;
  bool dirty_ = false;
  uint64_t log_bytes_ = 0;  // appended since the snapshot
  uint64_t syncs_ = 0;
  Status last_error_;  // a failed write, reported by the next sync()
};

}  // namespace meshkv::net
