// The data model: origins, dots and register entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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
// The longest time to live a write may carry (ten years): its expiry instant
// stays far inside the HLC's 48 physical bits.
inline constexpr uint64_t kMaxTtlMs = 10ull * 366 * 24 * 3600 * 1000;

// One register write: a value or a tombstone.
struct Entry {
  Hlc hlc;
  Dot dot;
  bool tombstone = false;
  std::string value;  // empty for tombstones
  // Time to live (ms; 0: forever). The write expires at its own HLC's
  // physical time plus ttl_ms (expires_at()): from that HLC instant on, a
  // node reads it as deleted, with no message needed. It keeps its place in
  // last-writer-wins as it is (an older write never shows again) until the
  // tombstone rules collect it (node/gc.cc). Never set on tombstones.
  uint64_t ttl_ms = 0;
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

// An entry read where it is stored (LwwMap keeps entries packed, not as
// Entry): the same fields, with the value a view of the stored bytes. A view
// from a map is valid until that map next changes. Entry converts to it
// implicitly, so the rules below take either; the other way is explicit
// (to_entry()), since it copies the value.
struct EntryView {
  Hlc hlc;
  Dot dot;
  bool tombstone = false;
  std::string_view value;
  uint64_t ttl_ms = 0;
  bool vouched = false;
  bool unordered = false;

  EntryView() = default;
  EntryView(const Entry& e)  // NOLINT(google-explicit-constructor): a view of it
      : hlc(e.hlc),
        dot(e.dot),
        tombstone(e.tombstone),
        value(e.value),
        ttl_ms(e.ttl_ms),
        vouched(e.vouched),
        unordered(e.unordered) {}
  Entry to_entry() const { return Entry{hlc, dot, tombstone, std::string(value), ttl_ms, vouched, unordered}; }
  explicit operator Entry() const { return to_entry(); }

  friend bool operator==(const EntryView&, const EntryView&) = default;
};

// What LwwMap::find() answers: an entry view, or nothing. Reads like the
// `const Entry*` it replaced (`if (e)`, `e->value`, `*e`, `e == nullptr`);
// an Entry's address converts to it.
class EntryPtr {
 public:
  EntryPtr() = default;
  EntryPtr(std::nullptr_t) {}  // NOLINT(google-explicit-constructor)
  EntryPtr(const Entry* e) : set_(e != nullptr) {  // NOLINT(google-explicit-constructor)
    if (e != nullptr) view_ = *e;
  }
  explicit EntryPtr(const EntryView& v) : view_(v), set_(true) {}
  explicit operator bool() const { return set_; }
  const EntryView& operator*() const { return view_; }
  const EntryView* operator->() const { return &view_; }
  friend bool operator==(const EntryPtr& p, std::nullptr_t) { return !p.set_; }

 private:
  EntryView view_;
  bool set_ = false;
};

// The same write (ordering marks aside).
inline bool same_write(const EntryView& a, const EntryView& b) {
  return a.hlc == b.hlc && a.dot == b.dot && a.tombstone == b.tombstone && a.value == b.value &&
         a.ttl_ms == b.ttl_ms;
}

// The HLC instant an expiring write stops being served (its logical part kept,
// so that every node orders it the same way against its own clock).
inline Hlc expires_at(const EntryView& e) {
  return Hlc::make(e.hlc.physical() + e.ttl_ms, e.hlc.logical());
}
// Whether `e` has expired by HLC `now` (a node's reading: its clock's last
// timestamp or its physical time, the later; Replica::reading()).
inline bool expired(const EntryView& e, Hlc now) { return e.ttl_ms != 0 && !(now < expires_at(e)); }
// A write that reads as deleted at `now`: a tombstone, or expired.
inline bool dead(const EntryView& e, Hlc now) { return e.tombstone || expired(e, now); }

// Last-writer-wins order: `a` beats `b` iff (a.hlc, a.origin) > (b.hlc,
// b.origin). Equal pairs denote the same write, since an origin never issues
// two writes with one timestamp.
inline bool wins(const EntryView& a, const EntryView& b) {
  if (a.hlc != b.hlc) return a.hlc > b.hlc;
  return a.dot.origin > b.dot.origin;
}

// An upper bound of the bytes an entry with this key takes in a delta chunk;
// the wire codec's tests hold it to that. Used to cut chunks without encoding.
inline size_t entry_size_bound(size_t key_bytes, size_t value_bytes) {
  // key length (<=2) + flags (1) + hlc (<=10) + seq (<=10) + value length (<=3)
  // + ttl (<=10)
  return 36 + key_bytes + value_bytes;
}

}  // namespace meshkv::crdt
