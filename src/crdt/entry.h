// The data model: origins, dots and register entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "crdt/hlc.h"

namespace meshkv::crdt {

// A replica's identity in dots and version vectors: a random 64-bit number
// chosen when a replica's write history begins (each start of an in-memory
// node; once per data directory). Fresh ids make dot reuse after a restart
// impossible without any coordination. 0 is reserved for "none".
using Origin = uint64_t;

// The `seq`-th write made by `origin` (seqs start at 1).
struct Dot {
  Origin origin = 0;
  uint64_t seq = 0;
  friend constexpr bool operator==(Dot, Dot) = default;
};

inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxValueBytes = 1024 * 1024;

// One register write: a value or a tombstone.
struct Entry {
  Hlc hlc;
  Dot dot;
  bool tombstone = false;
  std::string value;  // empty for tombstones
  // Ordering marks for the tombstone-collection rule (crdt/replica.h). They
  // travel with the entry and take no part in last-writer-wins:
  //   vouched:   a node ordered this write against a live value of its key
  //              that is newer than every delete of the key ever collected;
  //              it may be shown wherever it wins.
  //   unordered: its writer was cut off while deletes were collected and
  //              could not order it: the receiver judges it (in transit
  //              only, never stored).
  bool vouched = false;
  bool unordered = false;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// The same write (ordering marks aside).
inline bool same_write(const Entry& a, const Entry& b) {
  return a.hlc == b.hlc && a.dot == b.dot && a.tombstone == b.tombstone && a.value == b.value;
}

// Last-writer-wins order: `a` beats `b` iff (a.hlc, a.origin) > (b.hlc,
// b.origin). Equal pairs denote the same write, since an origin never issues
// two writes with one timestamp.
inline bool wins(const Entry& a, const Entry& b) {
  if (a.hlc != b.hlc) return a.hlc > b.hlc;
  return a.dot.origin > b.dot.origin;
}

// An upper bound of the bytes an entry with this key takes in a delta chunk;
// the wire codec's tests hold it to that. Used to cut chunks without encoding.
inline size_t entry_size_bound(size_t key_bytes, size_t value_bytes) {
  // key length (<=2) + flags (1) + hlc (<=10) + seq (<=10) + value length (<=3)
  return 26 + key_bytes + value_bytes;
}

}  // namespace meshkv::crdt
