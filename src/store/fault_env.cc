#include "store/fault_env.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace meshkv::store {

// Files and directories are shared between the two trees: a name is what a
// directory sync makes durable, the bytes are what a file sync does.
struct FaultEnv::Node {
  bool dir = false;
  uint32_t mode = 0644;
  std::string data;    // what the running process reads
  std::string synced;  // what a power loss leaves (files only)
};

namespace {

Status os_like(const std::string& what, const std::string& path, int err, bool injected = false) {
  return Status::Io(what + " " + path + ": " + std::strerror(err) + (injected ? " (injected)" : ""));
}

class FaultReadable final : public ReadableFile {
 public:
  FaultReadable(std::string data, FileInfo info, std::string path)
      : data_(std::move(data)), info_(info), path_(std::move(path)) {}
  Result<FileInfo> stat() override { return info_; }
  Result<size_t> read(char* buf, size_t n) override {
    if (!info_.regular) return os_like("cannot read", path_, EISDIR);
    n = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;  // as of the open: enough for every reader in meshkv
  FileInfo info_;
  std::string path_;
  size_t pos_ = 0;
};

}  // namespace

class FaultWritable final : public WritableFile {
 public:
  FaultWritable(FaultEnv& env, std::shared_ptr<FaultEnv::Node> node, std::string path)
      : env_(env), node_(std::move(node)), path_(std::move(path)), gen_(env.generation_) {}
  Status append(std::string_view data) override { return env_.file_append(*node_, data, path_, gen_); }
  Status sync() override { return env_.file_sync(*node_, path_, gen_); }
  Status close() override {
    if (gen_ != env_.generation_ || !env_.powered_) return os_like("cannot close", path_, EIO, true);
    return Status::Ok();
  }
  uint64_t size() const override { return node_->data.size(); }

 private:
  FaultEnv& env_;
  std::shared_ptr<FaultEnv::Node> node_;
  std::string path_;
  uint64_t gen_;  // the boot that opened it
};

class FaultLock final : public FileLock {
 public:
  FaultLock(FaultEnv& env, std::string path) : env_(env), path_(std::move(path)), gen_(env.generation_) {}
  // A crash released it already, and someone else may hold it now.
  ~FaultLock() override {
    if (gen_ == env_.generation_) env_.locked_.erase(path_);
  }

 private:
  FaultEnv& env_;
  std::string path_;
  uint64_t gen_;
};

FaultEnv::FaultEnv() = default;
FaultEnv::~FaultEnv() = default;

bool FaultEnv::fire(Armed& a) { return a.countdown != 0 && --a.countdown == 0; }

Status FaultEnv::step(uint64_t gen, const std::string& path) {
  if (gen != generation_) return os_like("handle from before a crash:", path, EIO, true);
  if (powered_ && power_budget_) {
    if (*power_budget_ == 0) {
      powered_ = false;
    } else {
      --*power_budget_;
    }
  }
  if (!powered_) return os_like("power is off:", path, EIO, true);
  ++ops_;
  return Status::Ok();
}

bool FaultEnv::is_dir(const std::string& path) const {
  if (path == "/" || path == ".") return true;
  const auto it = live_.find(path);
  return it != live_.end() && it->second->dir;
}

Status FaultEnv::need_parent(const std::string& path) const {
  if (is_dir(parent_dir(path))) return Status::Ok();
  return os_like("cannot create", path, ENOENT);
}

Status FaultEnv::file_append(Node& n, std::string_view data, const std::string& path, uint64_t gen) {
  if (Status s = step(gen, path); !s.ok()) return s;
  if (fire(tear_fault_)) {
    n.data.append(data.substr(0, std::min(tear_fault_.bytes, data.size())));
    n.synced = n.data;  // the disk wrote in order up to the tear
    powered_ = false;
    return os_like("power lost while writing", path, EIO, true);
  }
  if (fire(space_fault_)) {
    n.data.append(data.substr(0, std::min(space_fault_.bytes, data.size())));
    return os_like("cannot write", path, ENOSPC, true);
  }
  n.data.append(data);
  return Status::Ok();
}

Status FaultEnv::file_sync(Node& n, const std::string& path, uint64_t gen) {
  if (Status s = step(gen, path); !s.ok()) return s;
  if (fire(sync_fault_)) return os_like("cannot sync", path, EIO, true);
  n.synced = n.data;
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultEnv::open_writable(const std::string& path, const WriteOptions& o) {
  if (Status s = step(generation_, path); !s.ok()) return s;
  if (Status s = need_parent(path); !s.ok()) return s;
  std::shared_ptr<Node>& node = live_[path];
  if (node && o.exclusive) return Status::AlreadyExists(path + " already exists");
  if (node && node->dir) return os_like("cannot open", path, EISDIR);
  if (!node) node = std::make_shared<Node>();
  if (o.owner_only) node->mode = 0600;
  node->data.resize(o.exclusive ? 0 : o.keep, '\0');
  return std::unique_ptr<WritableFile>(std::make_unique<FaultWritable>(*this, node, path));
}

Result<std::unique_ptr<ReadableFile>> FaultEnv::open_readable(const std::string& path) {
  if (!powered_) return os_like("power is off:", path, EIO, true);
  std::string data;
  FileInfo info{false, 0755, 0};  // "/" and "."
  if (path != "/" && path != ".") {
    const auto it = live_.find(path);
    if (it == live_.end()) return os_like("cannot open", path, ENOENT);
    const Node& n = *it->second;
    data = n.data;
    info = FileInfo{!n.dir, n.mode, n.data.size()};
  }
  return std::unique_ptr<ReadableFile>(std::make_unique<FaultReadable>(std::move(data), info, path));
}

Status FaultEnv::rename(const std::string& from, const std::string& to) {
  if (Status s = step(generation_, to); !s.ok()) return s;
  const auto it = live_.find(from);
  if (it == live_.end()) return os_like("cannot rename " + from + " to", to, ENOENT);
  // meshkv renames files only; moving a directory's subtree is not modelled.
  if (it->second->dir || is_dir(to)) return os_like("cannot rename " + from + " to", to, EISDIR);
  if (Status s = need_parent(to); !s.ok()) return s;
  std::shared_ptr<Node> node = it->second;
  live_.erase(it);
  live_[to] = std::move(node);
  return Status::Ok();
}

Status FaultEnv::remove(const std::string& path) {
  if (Status s = step(generation_, path); !s.ok()) return s;
  const auto it = live_.find(path);
  if (it == live_.end()) return os_like("cannot remove", path, ENOENT);
  if (it->second->dir) return os_like("cannot remove", path, EISDIR);
  live_.erase(it);
  return Status::Ok();
}

Result<std::vector<std::string>> FaultEnv::list_dir(const std::string& dir) {
  if (!powered_) return os_like("power is off:", dir, EIO, true);
  if (!is_dir(dir)) return os_like("cannot list directory", dir, ENOENT);
  std::vector<std::string> names;
  for (const auto& [path, node] : live_) {
    if (parent_dir(path) == dir) names.push_back(path.substr(path.rfind('/') + 1));
  }
  return names;
}

Status FaultEnv::create_dir(const std::string& dir) {
  if (Status s = step(generation_, dir); !s.ok()) return s;
  if (Status s = need_parent(dir); !s.ok()) return s;
  if (is_dir(dir) || live_.count(dir) != 0) return Status::AlreadyExists(dir + " already exists");
  auto node = std::make_shared<Node>();
  node->dir = true;
  node->mode = 0755;
  live_[dir] = std::move(node);
  return Status::Ok();
}

Status FaultEnv::sync_dir(const std::string& dir) {
  if (Status s = step(generation_, dir); !s.ok()) return s;
  if (!is_dir(dir)) return os_like("cannot open directory", dir, ENOENT);
  if (fire(sync_fault_)) return os_like("cannot sync directory", dir, EIO, true);
  std::erase_if(durable_, [&](const auto& e) { return parent_dir(e.first) == dir; });
  for (const auto& [path, node] : live_) {
    if (parent_dir(path) == dir) durable_[path] = node;
  }
  return Status::Ok();
}

Result<std::unique_ptr<FileLock>> FaultEnv::lock(const std::string& path) {
  if (Status s = step(generation_, path); !s.ok()) return s;
  if (Status s = need_parent(path); !s.ok()) return s;
  std::shared_ptr<Node>& node = live_[path];
  if (!node) node = std::make_shared<Node>();
  if (!locked_.insert(path).second) return Status::Unavailable(path + " is locked by another process");
  return std::unique_ptr<FileLock>(std::make_unique<FaultLock>(*this, path));
}

Status FaultEnv::truncate(const std::string& path, uint64_t size) {
  if (Status s = step(generation_, path); !s.ok()) return s;
  const auto it = live_.find(path);
  if (it == live_.end()) return os_like("cannot truncate", path, ENOENT);
  if (it->second->dir) return os_like("cannot truncate", path, EISDIR);
  Node& n = *it->second;
  n.data.resize(size, '\0');
  n.synced = n.data;
  return Status::Ok();
}

bool FaultEnv::exists(const std::string& path) { return is_dir(path) || live_.count(path) != 0; }

void FaultEnv::fail_sync(uint64_t n) { sync_fault_ = {n, 0}; }
void FaultEnv::no_space(uint64_t n, size_t part) { space_fault_ = {n, part}; }
void FaultEnv::tear_write(uint64_t n, size_t keep) { tear_fault_ = {n, keep}; }
void FaultEnv::power_off_after(uint64_t k) { power_budget_ = k; }

void FaultEnv::crash() {
  // A durable name whose directory's own name is not durable is gone too.
  // Parents sort before their children, so one pass in order decides each.
  Tree kept;
  for (const auto& [path, node] : durable_) {
    const std::string parent = parent_dir(path);
    const bool parent_kept = parent == "/" || parent == "." || (kept.count(parent) != 0 && kept[parent]->dir);
    if (parent_kept) kept[path] = node;
  }
  for (auto& [path, node] : kept) node->data = node->synced;
  live_ = kept;
  durable_ = std::move(kept);
  locked_.clear();
  ++generation_;
  powered_ = true;
  power_budget_.reset();
  sync_fault_ = space_fault_ = tear_fault_ = Armed{};
}

}  // namespace meshkv::store
