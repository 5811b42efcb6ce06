// Durable files as sequences of checksummed records, for the write-ahead log
// and snapshots. Knows nothing of what the records mean.
//
// Record layout (little-endian):
//   u32 length of payload | u32 CRC-32C of payload | payload
//
// Reading classifies damage: a record cut short by the end of the file, or
// a bad last record that reaches the end, is a torn tail (a crash during an
// append) and is reported for truncation; a bad record followed by more data
// is corruption, reported with the file and offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace meshkv::store {

inline constexpr size_t kRecordHeader = 8;
inline constexpr uint32_t kMaxRecord = 64 * 1024 * 1024;

// Appends records to a file. Writes are buffered until flush() or sync().
class RecordWriter {
 public:
  RecordWriter() = default;
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Opens `path` for appending (creating it), positioned at `size` bytes
  // (the end of its valid records: a torn tail beyond is cut off).
  Status open(const std::string& path, uint64_t size);
  void append(std::string_view payload);
  Status flush();  // hands buffered records to the kernel
  Status sync();   // flush, then fdatasync: durable on return
  void close();
  bool is_open() const { return fd_ >= 0; }
  uint64_t size() const { return size_ + buf_.size(); }  // valid bytes, buffered included
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
  uint64_t size_ = 0;
  std::string buf_;
};

struct ReadResult {
  std::vector<std::string> records;
  uint64_t valid_bytes = 0;   // offset just after the last good record
  bool torn_tail = false;     // bytes after valid_bytes were a torn append
  uint64_t file_bytes = 0;
};

// Reads every record of `path`. kCorruption names the file and offset of a
// damaged record that is not the last; with `discard_damaged` such damage
// is treated like a torn tail instead (everything after it is dropped).
Result<ReadResult> read_records(const std::string& path, bool discard_damaged = false);

// Writes `records` to `path` atomically: a temporary file, fsync, rename,
// fsync of the directory. Readers see the old file or the new one, whole.
Status write_records_atomically(const std::string& path, const std::vector<std::string>& records);

// Truncates `path` to `size` bytes and syncs it.
Status truncate_file(const std::string& path, uint64_t size);

// An exclusive lock on a data directory, held while the object lives.
class DirLock {
 public:
  DirLock() = default;
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  // Creates `dir` if needed and locks it; kUnavailable when another process holds it.
  Status acquire(const std::string& dir);

 private:
  int fd_ = -1;
};

Status sync_dir(const std::string& dir);

}  // namespace meshkv::store
