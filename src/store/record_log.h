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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/env.h"

namespace meshkv::store {

inline constexpr size_t kRecordHeader = 8;
inline constexpr uint32_t kMaxRecord = 64 * 1024 * 1024;

// Appends records to a file. Writes are buffered until flush() or sync().
// A failed flush keeps the records buffered for the next one, and never
// leaves part of a record in the file for later records to follow.
class RecordWriter {
 public:
  // REQUIRES: `env` outlives the writer.
  explicit RecordWriter(Env& env = Env::posix()) : env_(&env) {}
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Opens `path` for appending (creating it), positioned at `size` bytes
  // (the end of its valid records: a torn tail beyond is cut off).
  // A writer already open is closed first.
  Status open(const std::string& path, uint64_t size);
  void append(std::string_view payload);
  Status flush();  // hands buffered records to the kernel
  Status sync();   // flush, then fdatasync: durable on return
  void close();    // flushes what it can; errors are dropped
  // Forgets the records not yet handed to the kernel (their writes were
  // refused); nothing is written.
  void discard() { buf_.clear(); }
  bool is_open() const { return file_ != nullptr; }
  uint64_t size() const { return size_ + buf_.size(); }  // valid bytes, buffered included
  const std::string& path() const { return path_; }

 private:
  Status rewind_after_failed_write();

  Env* env_;
  std::unique_ptr<WritableFile> file_;
  std::string path_;
  uint64_t size_ = 0;  // bytes of whole records in the file
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
Result<ReadResult> read_records(const std::string& path, bool discard_damaged = false, Env& env = Env::posix());

// A reading for files written atomically (snapshots), where nothing can be
// torn: every bad record is damage, the last one included. A record whose
// checksum fails is reported and skipped (its length still leads to the
// next); a length that leads past the end of the file stops the reading.
struct ScanResult {
  struct Damage {
    size_t record = 0;    // its index in the file, from 0
    uint64_t offset = 0;  // of its header
    std::string what;     // "checksum mismatch", "record of N bytes runs past the end", ...
  };
  // The file's bytes, which `records` point into (not copied: a snapshot of
  // a million keys is tens of MB, and fresh pages are dear).
  std::shared_ptr<const std::string> data;
  std::vector<std::optional<std::string_view>> records;  // in file order; nullopt: damaged
  std::vector<Damage> damage;
  bool complete = true;     // read to the end (else records after the last one are unknown)
  uint32_t checksum = 0;    // records_checksum() of what was read, from the stored checksums
  uint64_t file_bytes = 0;
};
Result<ScanResult> scan_records(const std::string& path, Env& env = Env::posix());

// One checksum for a whole file of records: CRC-32C over their CRC-32Cs in
// order. Cheap (the records' own checksums are computed anyway) and differs
// when any record is changed, missing, added or moved.
uint32_t records_checksum(const std::vector<std::string>& records);

// Writes `records` to `path` atomically: `path`.tmp, sync, rename, sync of
// the directory. Readers, and a power loss at any moment, see the old file or
// the new one, whole; the new one for certain once this returns ok.
Status write_records_atomically(const std::string& path, const std::vector<std::string>& records,
                                Env& env = Env::posix());

}  // namespace meshkv::store
