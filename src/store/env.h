// Every file-system operation of meshkv's storage, behind one interface (as
// leveldb's Env), so that a test can swap in a file system that fails and
// loses power on demand (store/fault_env.h) and the real one stays in one
// file (store/posix_env.cc).
//
// Errors are Status values naming the path and carrying the operating
// system's reason ("cannot write /d/wal-00000001.log: No space left on
// device"); code kIo unless stated otherwise. Nothing here throws.
//
// Durability is POSIX's, and FaultEnv holds callers to it:
//   - bytes appended to a file survive a power loss once the file is synced;
//   - a name (a file or directory created, renamed onto, removed) survives a
//     power loss once the directory holding it is synced.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace meshkv::store {

// A file as open_readable found it.
struct FileInfo {
  bool regular = false;  // not a directory, device, FIFO or socket
  uint32_t mode = 0;     // permission bits, & 07777
  uint64_t size = 0;
};

// A file open for appending. Single owner, not thread-safe. The destructor
// closes without syncing and ignores errors.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at the end. On failure a prefix of it may be in the
  // file: size() counts the bytes that are.
  virtual Status append(std::string_view data) = 0;
  // Makes the file's bytes and length durable (fdatasync; fsync for an
  // owner-only file, whose mode is part of what it promises).
  virtual Status sync() = 0;
  // REQUIRES: the last call on this object.
  virtual Status close() = 0;
  // Bytes in the file: those kept at open, plus those appended since.
  virtual uint64_t size() const = 0;
};

// A file open for reading, from its start.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Of the opened file, not of its name: a rename in between swaps nothing.
  virtual Result<FileInfo> stat() = 0;
  // Reads up to `n` bytes into `buf`; 0 at the end of the file.
  virtual Result<size_t> read(char* buf, size_t n) = 0;
};

// An exclusive lock, released when the object is destroyed or its holder
// process dies (flock: never stale after a crash).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

struct WriteOptions {
  // An existing file is cut to this many bytes (or extended with zeros) and
  // appends continue after them.
  uint64_t keep = 0;
  // Refuse a name that exists (a dangling symlink included) with
  // kAlreadyExists, so that nothing is written through a planted link. An
  // exclusive open that fails leaves no file behind.
  bool exclusive = false;
  // Mode exactly 0600 whatever the umask; otherwise 0644 less the umask.
  bool owner_only = false;
};

class Env {
 public:
  virtual ~Env() = default;

  // The real file system. Lives as long as the process.
  static Env& posix();

  // Opens `path` for appending, creating it if absent.
  virtual Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                              const WriteOptions& opts) = 0;
  // Never blocks on a FIFO or terminal found at `path`.
  virtual Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) = 0;
  // Atomically replaces `to` (if it exists) by `from`.
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove(const std::string& path) = 0;
  // Names in `dir` (not paths), without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  // kAlreadyExists when `dir` exists (as anything).
  virtual Status create_dir(const std::string& dir) = 0;
  virtual Status sync_dir(const std::string& dir) = 0;
  // Locks `path` (created if absent); kUnavailable while another holder has it.
  virtual Result<std::unique_ptr<FileLock>> lock(const std::string& path) = 0;
  // Cuts `path` to `size` bytes and makes the new length durable.
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
  virtual bool exists(const std::string& path) = 0;
};

// The whole of `path`.
Result<std::string> read_file(Env& env, const std::string& path);

// The directory holding `path`: "/a/b" for "/a/b/c" and "/a/b/c/", "/" for
// "/c", "." for "c".
std::string parent_dir(const std::string& path);

}  // namespace meshkv::store
