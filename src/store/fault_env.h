// An in-memory file system that fails and loses power on demand, for unit
// tests of everything built on Env.
//
// It keeps two views: what the running process sees, and what a disk would
// hold after a power loss. Per file, the bytes as of its last sync; per
// directory, the entries (creates, renames, removes) as of its last sync.
// crash() throws away everything else, as a power loss would, and reboots.
//
// Faults, each armed once and counted from the call that arms it:
//   fail_sync(n)         the nth sync (file or directory) fails with EIO and
//                        makes nothing durable;
//   no_space(n, part)    the nth append writes `part` bytes of its data, then
//                        fails with ENOSPC;
//   tear_write(n, keep)  power fails during the nth append once `keep` bytes
//                        of it reached the disk (they, and everything before
//                        them in that file, survive the crash);
//   power_off_after(k)   power fails after k more operations.
// Once power has failed every call returns EIO until crash().
//
// ops() counts the operations that change state (open for writing, append,
// sync, rename, remove, create, lock, truncate; not reads or close), so a
// test can run a workload once, read ops(), and then crash it after each k.
//
// Paths are plain: absolute or relative, no "..", no trailing or double
// slash. "/" and "." always exist. Not thread-safe. REQUIRES: the FaultEnv
// outlives every file and lock it hands out; handles from before a crash
// fail with EIO afterwards, as their process would be gone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "store/env.h"

namespace meshkv::store {

class FaultEnv final : public Env {
 public:
  FaultEnv();
  ~FaultEnv() override;
  FaultEnv(const FaultEnv&) = delete;
  FaultEnv& operator=(const FaultEnv&) = delete;

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path, const WriteOptions& opts) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& dir) override;
  Status create_dir(const std::string& dir) override;
  Status sync_dir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override;
  Status truncate(const std::string& path, uint64_t size) override;
  bool exists(const std::string& path) override;

  // n counts from 1; arming a fault again replaces it.
  void fail_sync(uint64_t n);
  void no_space(uint64_t n, size_t part = 0);
  void tear_write(uint64_t n, size_t keep);
  void power_off_after(uint64_t k);

  // Power loss now (if not already) and reboot: unsynced bytes and
  // directory entries are gone, locks released, faults disarmed.
  void crash();

  uint64_t ops() const { return ops_; }
  bool powered() const { return powered_; }

 private:
  friend class FaultWritable;
  friend class FaultLock;
  struct Node;
  struct Armed {
    uint64_t countdown = 0;  // 0: disarmed
    size_t bytes = 0;
  };
  using Tree = std::map<std::string, std::shared_ptr<Node>>;
  bool is_dir(const std::string& path) const;
  Status need_parent(const std::string& path) const;
  static bool fire(Armed& a);
  // Counts one operation; EIO when power is (or now goes) off, or when the
  // caller's handle is from boot `gen`, before a crash.
  Status step(uint64_t gen, const std::string& path);
  Status file_append(Node& n, std::string_view data, const std::string& path, uint64_t gen);
  Status file_sync(Node& n, const std::string& path, uint64_t gen);

  Tree live_;     // what the running process sees
  Tree durable_;  // what survives a power loss
  std::set<std::string> locked_;
  bool powered_ = true;
  uint64_t generation_ = 0;
  uint64_t ops_ = 0;
  std::optional<uint64_t> power_budget_;
  Armed sync_fault_, space_fault_, tear_fault_;
};

}  // namespace meshkv::store
