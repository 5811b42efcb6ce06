// The real file system: every POSIX file call of meshkv is in this file.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "store/env.h"

namespace meshkv::store {

namespace {

// REQUIRES: errno still holds the failed call's error.
Status os_error(const std::string& what, const std::string& path) {
  return Status::Io(what + " " + path + ": " + std::strerror(errno));
}

// Writes are retried until all of `n` is written, as a short count is no
// error; `written` says how much reached the file when one occurs.
Status write_all(int fd, const char* p, size_t n, const std::string& path, uint64_t& written) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return os_error("cannot write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
    written += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

class PosixWritable final : public WritableFile {
 public:
  PosixWritable(int fd, std::string path, uint64_t size, bool full_sync)
      : fd_(fd), path_(std::move(path)), size_(size), full_sync_(full_sync) {}
  ~PosixWritable() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status append(std::string_view data) override { return write_all(fd_, data.data(), data.size(), path_, size_); }
  Status sync() override {
    if ((full_sync_ ? ::fsync(fd_) : ::fdatasync(fd_)) != 0) return os_error("cannot sync", path_);
    return Status::Ok();
  }
  Status close() override {
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return os_error("cannot close", path_);
    return Status::Ok();
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  std::string path_;
  uint64_t size_;
  bool full_sync_;
};

class PosixReadable final : public ReadableFile {
 public:
  PosixReadable(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadable() override { ::close(fd_); }
  Result<FileInfo> stat() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return os_error("cannot stat", path_);
    return FileInfo{S_ISREG(st.st_mode), static_cast<uint32_t>(st.st_mode & 07777),
                    static_cast<uint64_t>(st.st_size)};
  }
  Result<size_t> read(char* buf, size_t n) override {
    for (;;) {
      const ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return os_error("cannot read", path_);
    }
  }

 private:
  int fd_;
  std::string path_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { ::close(fd_); }  // releases the flock

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path, const WriteOptions& o) override {
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o.exclusive ? O_EXCL : 0);
    const int fd = ::open(path.c_str(), flags, o.owner_only ? 0600 : 0644);
    if (fd < 0) {
      if (o.exclusive && errno == EEXIST) return Status::AlreadyExists(path + " already exists");
      return os_error("cannot open", path);
    }
    auto file = std::make_unique<PosixWritable>(fd, path, o.exclusive ? 0 : o.keep, o.owner_only);
    // The umask may only have narrowed the mode, but readers expect exactly 0600.
    if (o.owner_only && ::fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
      Status s = os_error("cannot set the mode of", path);
      if (o.exclusive) ::unlink(path.c_str());  // ours, just made: leave nothing behind
      return s;
    }
    if (!o.exclusive && (::ftruncate(fd, static_cast<off_t>(o.keep)) != 0 ||
                         ::lseek(fd, static_cast<off_t>(o.keep), SEEK_SET) < 0)) {
      return os_error("cannot position", path);
    }
    return std::unique_ptr<WritableFile>(std::move(file));
  }

  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return os_error("cannot open", path);
    return std::unique_ptr<ReadableFile>(std::make_unique<PosixReadable>(fd, path));
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return os_error("cannot rename " + from + " to", to);
    return Status::Ok();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return os_error("cannot remove", path);
    return Status::Ok();
  }

  Result<std::vector<std::string>> list_dir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return os_error("cannot list directory", dir);
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(d);
    return names;
  }

  Status create_dir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) == 0) return Status::Ok();
    if (errno == EEXIST) return Status::AlreadyExists(dir + " already exists");
    return os_error("cannot create directory", dir);
  }

  Status sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error("cannot open directory", dir);
    Status s;
    if (::fsync(fd) != 0) s = os_error("cannot sync directory", dir);
    ::close(fd);
    return s;
  }

  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return os_error("cannot open", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      Status s = errno == EWOULDBLOCK ? Status::Unavailable(path + " is locked by another process")
                                      : os_error("cannot lock", path);
      ::close(fd);
      return s;
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixLock>(fd));
  }

  Status truncate(const std::string& path, uint64_t size) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return os_error("cannot open", path);
    Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd) != 0) s = os_error("cannot truncate", path);
    ::close(fd);
    return s;
  }

  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

Env& Env::posix() {
  // Never destroyed, so that code running at exit may still use it.
  static PosixEnv* const env = new PosixEnv();
  return *env;
}

}  // namespace meshkv::store
