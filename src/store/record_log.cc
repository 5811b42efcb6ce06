#include "store/record_log.h"

#include "common/crc32c.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace meshkv::store {

namespace {
Status io_error(const std::string& what, const std::string& path) {
  return Status::Io(what + " " + path + ": " + std::strerror(errno));
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

uint32_t get_u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

Status write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}
}  // namespace

RecordWriter::~RecordWriter() { close(); }

Status RecordWriter::open(const std::string& path, uint64_t size) {
  close();
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return io_error("cannot open", path);
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0 ||
      ::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0) {
    Status s = io_error("cannot position", path);
    close();
    return s;
  }
  path_ = path;
  size_ = size;
  return Status::Ok();
}

void RecordWriter::append(std::string_view payload) {
  put_u32(buf_, static_cast<uint32_t>(payload.size()));
  put_u32(buf_, crc32c(payload.data(), payload.size()));
  buf_.append(payload);
}

Status RecordWriter::flush() {
  if (buf_.empty()) return Status::Ok();
  if (Status s = write_all(fd_, buf_.data(), buf_.size(), path_); !s.ok()) return s;
  size_ += buf_.size();
  buf_.clear();
  return Status::Ok();
}

Status RecordWriter::sync() {
  if (Status s = flush(); !s.ok()) return s;
  if (::fdatasync(fd_) != 0) return io_error("cannot sync", path_);
  return Status::Ok();
}

void RecordWriter::close() {
  if (fd_ >= 0) {
    (void)flush();
    ::close(fd_);
  }
  fd_ = -1;
  buf_.clear();
}

Result<ReadResult> read_records(const std::string& path, bool discard_damaged) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", path);
  std::string data;
  char chunk[1 << 16];
  for (;;) {
    const ssize_t r = ::read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      Status s = io_error("cannot read", path);
      ::close(fd);
      return s;
    }
    if (r == 0) break;
    data.append(chunk, static_cast<size_t>(r));
  }
  ::close(fd);
  ReadResult out;
  out.file_bytes = data.size();
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t off = 0;
  while (off < data.size()) {
    const size_t left = data.size() - off;
    if (left < kRecordHeader) {
      out.torn_tail = true;
      break;
    }
    const uint32_t len = get_u32(p + off);
    const uint32_t crc = get_u32(p + off + 4);
    const bool reaches_end = len > left - kRecordHeader;
    if (reaches_end && len <= kMaxRecord) {
      out.torn_tail = true;  // cut short by the end of the file
      break;
    }
    const bool bad = len > kMaxRecord || crc32c(p + off + kRecordHeader, len) != crc;
    if (bad) {
      const bool last = !reaches_end && off + kRecordHeader + len == data.size();
      if (last || discard_damaged) {
        out.torn_tail = true;
        break;
      }
      return Status::Corruption(path + ": damaged record at offset " + std::to_string(off) +
                                " of " + std::to_string(data.size()) + " bytes");
    }
    out.records.emplace_back(data.data() + off + kRecordHeader, len);
    off += kRecordHeader + len;
  }
  out.valid_bytes = off;
  return out;
}

Status write_records_atomically(const std::string& path, const std::vector<std::string>& records) {
  const std::string tmp = path + ".tmp";
  RecordWriter w;
  if (Status s = w.open(tmp, 0); !s.ok()) return s;
  for (const auto& r : records) {
    w.append(r);
    if (w.size() > (1u << 20)) {
      if (Status s = w.flush(); !s.ok()) return s;
    }
  }
  if (Status s = w.sync(); !s.ok()) return s;
  w.close();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return io_error("cannot rename to", path);
  return sync_dir(parent_of(path));
}

Status truncate_file(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", path);
  Status s;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd) != 0) s = io_error("cannot truncate", path);
  ::close(fd);
  return s;
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory", dir);
  Status s;
  if (::fsync(fd) != 0) s = io_error("cannot sync directory", dir);
  ::close(fd);
  return s;
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

Status DirLock::acquire(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return io_error("cannot create", dir);
  const std::string path = dir + "/LOCK";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return io_error("cannot open", path);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    return Status::Unavailable("data directory " + dir +
                               " is in use by another meshkv process (locked: " + path + ")");
  }
  return Status::Ok();
}

}  // namespace meshkv::store
