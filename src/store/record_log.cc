#include "store/record_log.h"

#include "common/crc32c.h"

namespace meshkv::store {

namespace {
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

uint32_t get_u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
}  // namespace

RecordWriter::~RecordWriter() { close(); }

Status RecordWriter::open(const std::string& path, uint64_t size) {
  close();
  auto f = env_->open_writable(path, WriteOptions{.keep = size});
  if (!f.ok()) return f.status();
  file_ = std::move(*f);
  path_ = path;
  size_ = size;
  return Status::Ok();
}

void RecordWriter::append(std::string_view payload) {
  put_u32(buf_, static_cast<uint32_t>(payload.size()));
  put_u32(buf_, crc32c(payload.data(), payload.size()));
  buf_.append(payload);
}

// Invariant: the file holds exactly size_ bytes of whole records between
// flushes. A write that failed part-way (ENOSPC) is cut off before the next
// one, which would otherwise leave a torn record in the middle of the log,
// behind records that may be acknowledged: damage that refuses a start.
Status RecordWriter::rewind_after_failed_write() {
  if (file_->size() == size_) return Status::Ok();
  file_.reset();
  auto f = env_->open_writable(path_, WriteOptions{.keep = size_});
  if (!f.ok()) return f.status();
  file_ = std::move(*f);
  return Status::Ok();
}

Status RecordWriter::flush() {
  if (!file_) return Status::Io("cannot write " + path_ + ": not open (an earlier error closed it)");
  if (buf_.empty()) return Status::Ok();
  if (Status s = file_->append(buf_); !s.ok()) {
    // The records stay buffered for the next flush. If the file cannot be
    // cut back, the writer stays closed rather than append after garbage.
    (void)rewind_after_failed_write();
    return s;
  }
  size_ += buf_.size();
  buf_.clear();
  return Status::Ok();
}

Status RecordWriter::sync() {
  if (Status s = flush(); !s.ok()) return s;
  return file_->sync();
}

void RecordWriter::close() {
  if (file_) {
    (void)flush();
    if (file_) (void)file_->close();
  }
  file_.reset();
  buf_.clear();
}

Result<ReadResult> read_records(const std::string& path, bool discard_damaged, Env& env) {
  auto contents = read_file(env, path);
  if (!contents.ok()) return contents.status();
  const std::string& data = *contents;
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

Result<ScanResult> scan_records(const std::string& path, Env& env) {
  auto contents = read_file(env, path);
  if (!contents.ok()) return contents.status();
  ScanResult out;
  out.data = std::make_shared<const std::string>(std::move(*contents));
  const std::string& data = *out.data;
  out.file_bytes = data.size();
  std::string crcs;  // the stored checksums, for records_checksum()
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t off = 0;
  while (off < data.size()) {
    const size_t left = data.size() - off;
    const size_t index = out.records.size();
    if (left < kRecordHeader) {
      out.damage.push_back({index, off, std::to_string(left) + " stray bytes after the last record"});
      out.complete = false;
      break;
    }
    const uint32_t len = get_u32(p + off);
    if (len > left - kRecordHeader) {
      out.damage.push_back({index, off, "record length " + std::to_string(len) + " runs past the end of the file (" +
                                            std::to_string(data.size()) + " bytes)"});
      out.complete = false;
      break;
    }
    crcs.append(data, off + 4, 4);
    if (crc32c(p + off + kRecordHeader, len) != get_u32(p + off + 4)) {
      out.damage.push_back({index, off, "checksum mismatch"});
      out.records.emplace_back(std::nullopt);
    } else {
      out.records.emplace_back(std::string_view(data.data() + off + kRecordHeader, len));
    }
    off += kRecordHeader + len;
  }
  out.checksum = crc32c(crcs.data(), crcs.size());
  return out;
}

uint32_t records_checksum(const std::vector<std::string>& records) {
  std::string crcs;
  for (const auto& r : records) put_u32(crcs, crc32c(r.data(), r.size()));
  return crc32c(crcs.data(), crcs.size());
}

Status write_records_atomically(const std::string& path, const std::vector<std::string>& records, Env& env) {
  const std::string tmp = path + ".tmp";
  RecordWriter w(env);
  if (Status s = w.open(tmp, 0); !s.ok()) return s;
  for (const auto& r : records) {
    w.append(r);
    if (w.size() > (1u << 20)) {
      if (Status s = w.flush(); !s.ok()) return s;
    }
  }
  // Synced before the rename: otherwise a power loss could leave the new
  // name on an empty or partial file, and the old one gone.
  if (Status s = w.sync(); !s.ok()) return s;
  w.close();
  if (Status s = env.rename(tmp, path); !s.ok()) return s;
  return env.sync_dir(parent_dir(path));
}

}  // namespace meshkv::store
