// A node's data directory: the lock, the snapshot and the write-ahead log
// segments, tied to the engine's log operations. All file access goes
// through a store::Env, the real file system unless the caller passes
// another (tests pass a store::FaultEnv).
//
//   DIR/LOCK           locked while a node uses the directory
//   DIR/snapshot       the last snapshot (records, see node/persist.h)
//   DIR/wal-N.log      log segments; the snapshot names the first one after it,
//                      and each begins with a header naming the snapshot it
//                      continues (its uid and checksum) and the node
//
// Start-up: the snapshot, then every segment from the one it names, in
// order. A torn record at the end of a segment (a crash mid-append) is cut
// off with a warning. Damage before the end refuses the start, naming file
// and offset, unless `repair` keeps what precedes it (peers resend the rest).
//
// The snapshot is written whole (a rename), so it is never torn: any record
// that fails its checksum is damage, and so is a snapshot that is not the
// one the log continues, or is missing while the log continues one. Each
// refuses the start, naming the file and what is wrong, unless `repair`:
// then the records that verify are kept, the rest and the snapshot's version
// vector are dropped (with a warning saying what), and so are the log's range
// claims, which build on that vector. The node then claims only the dots of
// entries it holds, and anti-entropy brings back what it lost: a vector that
// claimed dropped entries would tell peers never to send them again.
//
// What is acknowledged survives a power loss: an operation appended before
// a sync() that returned ok is found again by the next open().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/persist.h"
#include "store/env.h"
#include "store/record_log.h"

namespace meshkv::node {

class Durable {
 public:
  struct Opened {
    std::optional<Snapshot> snapshot;
    std::vector<LogOp> ops;              // after the snapshot, in order
    std::vector<std::string> warnings;   // torn tails cut, damage skipped
    std::string node;  // the node's name as the directory knows it ("": unknown)
    bool repaired = false;  // `repair` dropped something: a new snapshot should follow
  };

  // Creates `dir` if needed, locks it (kUnavailable when another process
  // has it) and reads it into `out`. REQUIRES: `env` outlives the Durable.
  // What a refusal to start over a damaged snapshot or log adds: how to
  // start anyway.
  static const char* repair_hint();

  static Result<std::unique_ptr<Durable>> open(const std::string& dir, bool repair, Opened& out,
                                               store::Env& env = store::Env::posix());

  // Appends operations and hands them to the kernel (they survive a crash of
  // the process, not yet of the machine); returns whether any was a local
  // write. A write error is reported by the next sync().
  bool append(const std::vector<LogOp>& ops);
  // Makes everything appended so far durable. On error nothing appended
  // since the last successful sync may be counted as durable.
  Status sync();
  bool dirty() const { return dirty_; }
  // An append could not hand its records to the kernel (the next sync()
  // reports why).
  bool failed() const { return !last_error_.ok(); }
  // After a failed append or sync: forgets the records not yet durable, so
  // that no later sync, snapshot or restart finds them. The segment in use
  // is cut back to what the last successful sync made durable and appends
  // continue there. Under an interval policy that includes records already
  // acknowledged but not synced: a crash would have lost them too, and the
  // next snapshot writes the state they made.
  Status abandon_unsynced();
  uint64_t log_bytes() const { return log_bytes_; }
  uint64_t syncs() const { return syncs_; }
  // Writes `s` as the new snapshot, starts a new log segment after it and
  // removes the segments it replaces. Syncs what was appended first.
  Status snapshot(Snapshot s);
  const std::string& dir() const { return dir_; }

 private:
  explicit Durable(store::Env& env) : env_(env), wal_(env) {}
  Status lock_dir(bool& created);
  Status sync_log();  // the segment in use: its records and its name
  Status load_snapshot(bool repair, Opened& out);
  Status salvage_snapshot(const std::string& path, const std::vector<std::optional<std::string_view>>& records,
                          bool complete, Opened& out);
  Status check_header(const std::string& path, const SegmentHeader& h, bool repair, Opened& out);
  Status replay_segments(const std::vector<uint64_t>& segments, bool repair, Opened& out, uint64_t& last_valid);
  void write_header();  // as the first record of the segment in use
  Result<std::vector<uint64_t>> list_segments() const;
  std::string segment_path(uint64_t n) const;

  store::Env& env_;
  std::unique_ptr<store::FileLock> lock_;
  std::string dir_;
  uint64_t segment_ = 1;
  store::RecordWriter wal_;
  bool dirty_ = false;
  bool segment_named_ = false;  // the directory was synced since the segment in use was made
  uint64_t log_bytes_ = 0;  // appended since the snapshot
  uint64_t synced_bytes_ = 0;  // of the segment in use, durable
  uint64_t syncs_ = 0;
  Status last_error_;  // a failed write, reported by the next sync()
  // The snapshot that new segments continue (see SegmentHeader).
  bool have_snapshot_ = false;
  uint64_t snapshot_uid_ = 0;
  uint32_t snapshot_checksum_ = 0;
  std::string node_;
  // Set while opening: the snapshot's vector was dropped (or is missing), so
  // the log's range claims, which extend it, are not replayed.
  bool claims_untrusted_ = false;
};

}  // namespace meshkv::node
