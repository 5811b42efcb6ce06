#include "node/persist.h"

#include <algorithm>
#include <optional>

#include "wire/bytes.h"

namespace meshkv::node {

namespace {
constexpr std::string_view kSnapshotMagic = "meshkv-snapshot-1";
constexpr size_t kEntriesPerRecord = 1024;
constexpr uint8_t kSegmentHeaderTag = 9;  // after the last LogOp::Kind

std::string as_string(const wire::Bytes& b) { return std::string(b.begin(), b.end()); }

void put_entry(wire::Writer& w, const crdt::KeyedEntry& ke) {
  w.bytes(ke.key);
  // Flag 4: a time to live follows the seq (a log written before it never
  // has one).
  w.u8(static_cast<uint8_t>((ke.entry.tombstone ? 1 : 0) | (ke.entry.vouched ? 2 : 0) |
                            (ke.entry.ttl_ms != 0 ? 4 : 0)));
  w.varint(ke.entry.hlc.raw);
  w.u64(ke.entry.dot.origin);
  w.varint(ke.entry.dot.seq);
  if (ke.entry.ttl_ms != 0) w.varint(ke.entry.ttl_ms);
  if (!ke.entry.tombstone) w.bytes(ke.entry.value);
}

crdt::KeyedEntry get_entry(wire::Reader& r) {
  crdt::KeyedEntry ke;
  ke.key = r.bytes(crdt::kMaxKeyBytes);
  const uint8_t flags = r.u8();
  ke.entry.tombstone = flags & 1;
  ke.entry.vouched = flags & 2;
  ke.entry.hlc.raw = r.varint();
  ke.entry.dot.origin = r.u64();
  ke.entry.dot.seq = r.varint();
  if (flags & 4) ke.entry.ttl_ms = r.varint();
  if (!ke.entry.tombstone) ke.entry.value = r.bytes(crdt::kMaxValueBytes);
  return ke;
}

EntryRef get_entry_view(wire::Reader& r) {
  EntryRef ke;
  ke.key = r.bytes_view(crdt::kMaxKeyBytes);
  const uint8_t flags = r.u8();
  ke.entry.tombstone = flags & 1;
  ke.entry.vouched = flags & 2;
  ke.entry.hlc.raw = r.varint();
  ke.entry.dot.origin = r.u64();
  ke.entry.dot.seq = r.varint();
  if (flags & 4) ke.entry.ttl_ms = r.varint();
  if (!ke.entry.tombstone) ke.entry.value = r.bytes_view(crdt::kMaxValueBytes);
  return ke;
}

wire::Reader reader(std::string_view s) {
  return wire::Reader(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

std::string encode_op(const LogOp& op) {
  wire::Bytes b;
  wire::Writer w(b);
  w.u8(static_cast<uint8_t>(op.kind));
  switch (op.kind) {
    case LogOp::Kind::kEntry:
      w.u8(op.local ? 1 : 0);
      put_entry(w, op.ke);
      break;
    case LogOp::Kind::kRange:
      w.u64(op.origin);
      w.varint(op.from);
      w.varint(op.to);
      break;
    case LogOp::Kind::kQuorum:
      w.varint(op.to);
      break;
    case LogOp::Kind::kHorizon:
      w.varint(op.to);
      w.varint(op.from);
      break;
    case LogOp::Kind::kQuarantine:
      put_entry(w, op.ke);
      break;
    case LogOp::Kind::kRelease:
      w.bytes(op.ke.key);
      w.u64(op.ke.entry.dot.origin);
      w.varint(op.ke.entry.dot.seq);
      break;
    case LogOp::Kind::kExcluded:
    case LogOp::Kind::kRoster:
      w.bytes(op.ke.key);
      w.varint(op.to);
      break;
  }
  return as_string(b);
}

Result<LogOp> decode_op(std::string_view bytes) {
  wire::Reader r = reader(bytes);
  LogOp op;
  const uint8_t kind = r.u8();
  switch (kind) {
    case 1:
      op.kind = LogOp::Kind::kEntry;
      op.local = r.u8() & 1;
      op.ke = get_entry(r);
      if (r.ok()) {
        if (Status s = crdt::validate_entry(op.ke.key, op.ke.entry); !s.ok()) return s;
      }
      break;
    case 2:
      op.kind = LogOp::Kind::kRange;
      op.origin = r.u64();
      op.from = r.varint();
      op.to = r.varint();
      break;
    case 3:
      op.kind = LogOp::Kind::kQuorum;
      op.to = r.varint();
      break;
    case 4:
      op.kind = LogOp::Kind::kHorizon;
      op.to = r.varint();
      op.from = r.varint();
      break;
    case 5:
      op.kind = LogOp::Kind::kQuarantine;
      op.ke = get_entry(r);
      if (r.ok()) {
        if (Status s = crdt::validate_entry(op.ke.key, op.ke.entry); !s.ok()) return s;
      }
      break;
    case 6:
      op.kind = LogOp::Kind::kRelease;
      op.ke.key = r.bytes(crdt::kMaxKeyBytes);
      op.ke.entry.dot.origin = r.u64();
      op.ke.entry.dot.seq = r.varint();
      break;
    case 7:
    case 8:
      op.kind = kind == 7 ? LogOp::Kind::kExcluded : LogOp::Kind::kRoster;
      op.ke.key = r.bytes(255);
      op.to = r.varint();
      break;
    default:
      return Status::Corruption("unknown log operation " + std::to_string(kind));
  }
  if (!r.ok()) return Status::Corruption(std::string("log operation: ") + r.error());
  if (r.remaining() != 0) return Status::Corruption("log operation: trailing bytes");
  return op;
}

Status decode_pending(Snapshot& s) {
  const SnapshotCounts counts{s.pending_entries, s.pending_quarantined};
  s.entries.reserve(s.entries.size() + counts.entries);
  for (size_t i = 0; i < s.pending.size(); ++i) {
    if (Status st = decode_snapshot_entries(s.pending[i], i + 1, counts, s.entries, s.quarantine); !st.ok()) {
      return st;
    }
  }
  s.pending.clear();
  s.raw.reset();
  return Status::Ok();
}

std::vector<std::string> encode_snapshot(const Snapshot& snap) {
  // One read from disk and not loaded yet: written as the entries it holds.
  std::optional<Snapshot> decoded;
  if (!snap.pending.empty()) {
    decoded = snap;
    if (!decode_pending(*decoded).ok()) decoded->pending.clear();
  }
  const Snapshot& s = decoded ? *decoded : snap;
  std::vector<std::string> out;
  {
    wire::Bytes b;
    wire::Writer w(b);
    w.bytes(kSnapshotMagic);
    w.bytes(s.id);
    w.varint(s.hlc.raw);
    w.varint(s.wal_segment);
    w.varint(s.entries.size());
    w.varint(s.vv.items().size());
    for (const auto& [o, seq] : s.vv.items()) {
      w.u64(o);
      w.varint(seq);
    }
    w.varint(s.quorum_ms);  // added after the first release: optional when reading
    // Added with quarantine: optional when reading.
    w.varint(s.horizon);
    w.varint(s.reconciled);
    w.varint(s.quarantine.size());
    w.varint(s.excluded.size());
    for (const auto& [name, h] : s.excluded) {
      w.bytes(name);
      w.varint(h);
    }
    w.varint(s.roster.size());
    for (const auto& name : s.roster) w.bytes(name);
    w.u64(s.uid);  // added with segment headers: optional when reading
    out.push_back(as_string(b));
  }
  // Entries, then quarantined entries, in records of kEntriesPerRecord.
  const size_t total = s.entries.size() + s.quarantine.size();
  for (size_t i = 0; i < total; i += kEntriesPerRecord) {
    wire::Bytes b;
    wire::Writer w(b);
    const size_t end = std::min(total, i + kEntriesPerRecord);
    w.varint(end - i);
    for (size_t j = i; j < end; ++j) {
      put_entry(w, j < s.entries.size() ? s.entries[j] : s.quarantine[j - s.entries.size()]);
    }
    out.push_back(as_string(b));
  }
  return out;
}

Result<Snapshot> decode_snapshot_header(std::string_view record, SnapshotCounts& counts) {
  Snapshot s;
  wire::Reader r = reader(record);
  if (r.bytes(64) != kSnapshotMagic) return Status::Corruption("snapshot: not a meshkv snapshot");
  s.id = r.bytes(255);
  s.hlc.raw = r.varint();
  s.wal_segment = r.varint();
  counts = {};
  counts.entries = r.varint();
  const uint64_t vv_items = r.count(9);
  for (uint64_t i = 0; i < vv_items && r.ok(); ++i) {
    const uint64_t o = r.u64();
    s.vv.raise(o, r.varint());
  }
  if (r.ok() && r.remaining() > 0) s.quorum_ms = r.varint();
  if (r.ok() && r.remaining() > 0) {
    s.horizon = r.varint();
    s.reconciled = r.varint();
    counts.quarantined = r.varint();
    const uint64_t excluded = r.count(2);
    for (uint64_t i = 0; i < excluded && r.ok(); ++i) {
      std::string name = r.bytes(255);
      s.excluded.emplace_back(std::move(name), r.varint());
    }
    const uint64_t roster = r.count(1);
    for (uint64_t i = 0; i < roster && r.ok(); ++i) s.roster.push_back(r.bytes(255));
  }
  if (r.ok() && r.remaining() > 0) s.uid = r.u64();
  if (!r.ok()) return Status::Corruption(std::string("snapshot header: ") + r.error());
  return s;
}

uint64_t snapshot_record_entries(size_t i, const SnapshotCounts& counts) {
  const uint64_t total = counts.entries + counts.quarantined;
  const uint64_t first = static_cast<uint64_t>(i - 1) * kEntriesPerRecord;
  return i == 0 || first >= total ? 0 : std::min<uint64_t>(kEntriesPerRecord, total - first);
}

Status decode_snapshot_record(std::string_view record, size_t i, const SnapshotCounts& counts, Snapshot& s) {
  return decode_snapshot_entries(record, i, counts, s.entries, s.quarantine);
}

Status decode_snapshot_entries(std::string_view record, size_t i, const SnapshotCounts& counts,
                               std::vector<crdt::KeyedEntry>& entries, std::vector<crdt::KeyedEntry>& quarantine) {
  wire::Reader e = reader(record);
  const uint64_t n = e.count(5);
  if (e.ok() && n != snapshot_record_entries(i, counts)) {
    return Status::Corruption("snapshot record " + std::to_string(i) + ": " + std::to_string(n) +
                              " entries where " + std::to_string(snapshot_record_entries(i, counts)) +
                              " belong");
  }
  // Entries come first, then quarantined ones: a position says which.
  // Straight into place, no batch in between (a million entries: one copy
  // and 100 MB of fresh pages fewer); a record that does not decode adds
  // nothing (--repair keeps the others).
  uint64_t pos = static_cast<uint64_t>(i - 1) * kEntriesPerRecord;
  const size_t had_entries = entries.size(), had_quarantine = quarantine.size();
  for (uint64_t j = 0; j < n && e.ok(); ++j) {
    crdt::KeyedEntry ke = get_entry(e);
    if (e.ok()) (pos++ < counts.entries ? entries : quarantine).push_back(std::move(ke));
  }
  if (!e.ok()) {
    entries.resize(had_entries);
    quarantine.resize(had_quarantine);
    return Status::Corruption("snapshot record " + std::to_string(i) + ": " + e.error());
  }
  return Status::Ok();
}

Status decode_snapshot_views(std::string_view record, size_t i, const SnapshotCounts& counts,
                             std::vector<EntryRef>& entries, std::vector<EntryRef>& quarantine) {
  entries.clear();
  quarantine.clear();
  wire::Reader e = reader(record);
  const uint64_t n = e.count(5);
  if (e.ok() && n != snapshot_record_entries(i, counts)) {
    return Status::Corruption("snapshot record " + std::to_string(i) + ": " + std::to_string(n) +
                              " entries where " + std::to_string(snapshot_record_entries(i, counts)) +
                              " belong");
  }
  uint64_t pos = static_cast<uint64_t>(i - 1) * kEntriesPerRecord;
  for (uint64_t j = 0; j < n && e.ok(); ++j) {
    EntryRef ke = get_entry_view(e);
    if (e.ok()) (pos++ < counts.entries ? entries : quarantine).push_back(ke);
  }
  if (!e.ok()) {
    entries.clear();
    quarantine.clear();
    return Status::Corruption("snapshot record " + std::to_string(i) + ": " + e.error());
  }
  return Status::Ok();
}

Result<Snapshot> decode_snapshot(const std::vector<std::string>& records) {
  return decode_snapshot(std::vector<std::string_view>(records.begin(), records.end()));
}

Result<Snapshot> decode_snapshot(const std::vector<std::string_view>& records) {
  if (records.empty()) return Status::Corruption("snapshot: empty");
  SnapshotCounts counts;
  auto s = decode_snapshot_header(records[0], counts);
  if (!s.ok()) return s.status();
  // A count is only a hint until the records are read: no more than they hold.
  s->entries.reserve(std::min<uint64_t>(counts.entries, (records.size() - 1) * kEntriesPerRecord));
  for (size_t i = 1; i < records.size(); ++i) {
    if (Status st = decode_snapshot_record(records[i], i, counts, *s); !st.ok()) return st;
  }
  if (s->entries.size() != counts.entries || s->quarantine.size() != counts.quarantined) {
    return Status::Corruption("snapshot: " + std::to_string(s->entries.size() + s->quarantine.size()) +
                              " entries, header says " + std::to_string(counts.entries + counts.quarantined));
  }
  return s;
}

std::string encode_segment_header(const SegmentHeader& h) {
  wire::Bytes b;
  wire::Writer w(b);
  w.u8(kSegmentHeaderTag);
  w.u8(h.continues ? 1 : 0);
  w.u64(h.snapshot_uid);
  w.varint(h.snapshot_checksum);
  w.bytes(h.node);
  return as_string(b);
}

bool is_segment_header(std::string_view record) {
  return !record.empty() && static_cast<uint8_t>(record[0]) == kSegmentHeaderTag;
}

Result<SegmentHeader> decode_segment_header(std::string_view record) {
  wire::Reader r = reader(record);
  SegmentHeader h;
  if (r.u8() != kSegmentHeaderTag) return Status::Corruption("log segment header: not one");
  h.continues = r.u8() & 1;
  h.snapshot_uid = r.u64();
  h.snapshot_checksum = static_cast<uint32_t>(r.varint());
  h.node = r.bytes(255);
  if (!r.ok()) return Status::Corruption(std::string("log segment header: ") + r.error());
  return h;
}

}  // namespace meshkv::node
