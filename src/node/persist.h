// What a durable node writes down, as bytes: log operations for the
// write-ahead log and the records of a snapshot. Pure encoding; the files
// themselves are src/store's, the orchestration the shell's.
//
// Replaying the log operations of a node, in order, over its last snapshot
// rebuilds its map exactly and its version vector up to what it claimed
// (dots of entries that lost a merge are not logged, so a replayed vector
// may claim less than before the crash, never more: anti-entropy refills).
//
// Every start of a node begins a new origin (a fresh uid), durable or not.
// That is how a restarted node never reuses a dot, with no write counter to
// persist: the previous process's writes stay in the vector under its own
// origin, and any the crash lost locally come back from peers. What persists
// is the node's name (its membership identity), its state and its HLC.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crdt/replica.h"

namespace meshkv::node {

struct LogOp {
  enum class Kind : uint8_t {
    kEntry = 1,       // an entry that became a key's winner (local or replicated)
    kRange = 2,       // the vector claimed (from, to] of an origin from a chunk
    kQuorum = 3,      // `to`: wall ms at which the node last saw a majority of members
    // Tombstone collection (node/gc.cc, crdt/replica.h):
    kHorizon = 4,     // `to`: the horizon rose to this HLC; `from`: the reconciled horizon
    kQuarantine = 5,  // `ke` was put in quarantine
    kRelease = 6,     // the entry of `ke.key` with dot `ke.entry.dot` left quarantine
                      // (seq 0: every entry of the key)
    kExcluded = 7,    // member `ke.key` was left out of collections up to horizon `to`
                      // (0: it reconciled)
    kRoster = 8,      // member `ke.key` counts toward the majority (`to` 1) or no longer (0)
    // 9 is a segment's first record, a SegmentHeader, never a LogOp.
  };
  Kind kind = Kind::kEntry;
  bool local = false;  // kEntry: a local write, durable before it is acknowledged
  crdt::KeyedEntry ke;
  crdt::Origin origin = 0;
  uint64_t from = 0, to = 0;
};

std::string encode_op(const LogOp& op);
Result<LogOp> decode_op(std::string_view bytes);

// A node's durable identity and state.
struct Snapshot {
  std::string id;  // the node's name
  uint64_t uid = 0;  // random, named by the log segments after it (0: written before uids)
  crdt::Hlc hlc;
  uint64_t wal_segment = 0;  // the log segment that continues this snapshot
  uint64_t quorum_ms = 0;    // see LogOp::Kind::kQuorum (0: unknown)
  crdt::VersionVector vv;
  std::vector<crdt::KeyedEntry> entries;
  // Tombstone collection (see LogOp::Kind::kHorizon and what follows).
  uint64_t horizon = 0, reconciled = 0;
  std::vector<crdt::KeyedEntry> quarantine;
  std::vector<std::pair<std::string, uint64_t>> excluded;
  std::vector<std::string> roster;  // see LogOp::Kind::kRoster
  // Entries still encoded: the records after the header, read from disk
  // (views into `raw`), for Engine::load to decode as it loads them, on a
  // second thread (a million keys: decoding and loading take about as
  // long as each other). `pending_entries` and `pending_quarantined` are the
  // header's counts. Empty when `entries` and `quarantine` hold everything.
  std::shared_ptr<const std::string> raw;
  std::vector<std::string_view> pending;
  uint64_t pending_entries = 0, pending_quarantined = 0;
};

// Records of a snapshot: a header, the vector, then entries in batches.
std::vector<std::string> encode_snapshot(const Snapshot& s);
Result<Snapshot> decode_snapshot(const std::vector<std::string_view>& records);
Result<Snapshot> decode_snapshot(const std::vector<std::string>& records);

// decode_snapshot in pieces, for --repair to keep the records that verify
// when others do not. The header record gives everything but the entries,
// and how many entries and quarantined entries follow; record `i` (from 1)
// adds its entries to `s` by their position in the snapshot.
struct SnapshotCounts {
  uint64_t entries = 0, quarantined = 0;
};
Result<Snapshot> decode_snapshot_header(std::string_view record, SnapshotCounts& counts);
Status decode_snapshot_record(std::string_view record, size_t i, const SnapshotCounts& counts, Snapshot& s);
// How many entries (of both kinds) record `i` of such a snapshot holds.
uint64_t snapshot_record_entries(size_t i, const SnapshotCounts& counts);
// Decodes a snapshot's pending records into its entries and quarantine
// (for readers other than Engine::load).
Status decode_pending(Snapshot& s);
// Decodes record `i` (from 1) into entries and quarantined entries (by
// their positions), appending to the two vectors; adds nothing on error.
Status decode_snapshot_entries(std::string_view record, size_t i, const SnapshotCounts& counts,
                               std::vector<crdt::KeyedEntry>& entries, std::vector<crdt::KeyedEntry>& quarantine);
// An entry decoded in place: its key and value are views of the record.
struct EntryRef {
  std::string_view key;
  crdt::EntryView entry;
};
// The same as views of `record`: no string is allocated (a restart copies
// each key and value once, into the map's arena). Replaces the vectors'
// contents; leaves them empty on error.
Status decode_snapshot_views(std::string_view record, size_t i, const SnapshotCounts& counts,
                             std::vector<EntryRef>& entries, std::vector<EntryRef>& quarantine);

// The first record of every log segment: the snapshot that the segment
// continues, so that a start notices a snapshot that is missing or not the
// one the log was written after, instead of replaying the log over nothing.
// Segments written before headers have none: they continue "unknown".
struct SegmentHeader {
  bool continues = false;     // false: the log starts from an empty state
  uint64_t snapshot_uid = 0;  // Snapshot::uid (0: a snapshot written before uids)
  uint32_t snapshot_checksum = 0;  // store::records_checksum of its records
  std::string node;           // the node's name ("": not known yet)
};
std::string encode_segment_header(const SegmentHeader& h);
bool is_segment_header(std::string_view record);
Result<SegmentHeader> decode_segment_header(std::string_view record);

}  // namespace meshkv::node
