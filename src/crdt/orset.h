// Observed-remove sets with add-wins semantics, built from ordinary
// last-writer-wins entries (as counters are, crdt/counter.h).
//
// A set K is not one entry but two kinds, per member m, under internal keys
// no user key can have (they begin with a 0 byte):
//
//   add of origin o:     "\0s" + len(K) + K + h(m) + 'a' + o    value: a_o(m), m
//   remove of origin r:  "\0s" + len(K) + K + h(m) + 'r' + r    value: m, R_r(m)
//
// len(K) is two bytes big-endian, h(m) the 16-byte BLAKE2b hash of m and o
// eight bytes big-endian: every part has a fixed length or a length before
// it, so a key parses one way whatever bytes K and m hold, and one set's
// entries (one member's, adjacent) are a range of the map's ordered keys
// (LwwMap::scan_ordered). The member travels in the value, so it may be as
// long as any value; the hash only keeps the key short.
//
// a_o(m) is how many times o added m to K: o's sadd writes a_o + 1, and only
// o writes that entry, so its writes are in HLC order and last-writer-wins
// keeps the largest count (a duplicate, a stale copy or a re-sent chunk
// carries a count, never a delta, and cannot move it back).
//
// R_r(m) is what r's removes of m have seen: for each origin o, the largest
// a_o(m) r observed when it removed m. r's srem writes the pointwise max of
// its previous R_r(m) and the counts it holds now, so R_r only grows and
// last-writer-wins again keeps the largest.
//
// The rule: m is in K iff some origin o has
//
//     a_o(m) > R(m)[o],   where R(m)[o] = max over removers r of R_r(m)[o].
//
// Why this is the add-wins observed-remove set: name the k-th add of m by o
// the tag (o, k). A remove deletes the tags it has seen; since o's adds are
// seen in order (a count a_o seen means tags (o,1)..(o,a_o) seen), "the tags
// r's removes have seen" is exactly {(o, k) : k <= R_r(m)[o]}, and the tags
// all removes together have seen is {(o, k) : k <= R(m)[o]} -- the pointwise
// max, not the newest remove: two concurrent removes together remove
// everything either saw, and last-writer-wins between them would bring back
// the tags only the losing one saw. m has a surviving tag iff some o added
// beyond R(m)[o]. An add concurrent with a remove is not seen by it, so its
// tag survives (add wins). Each entry's merge is a max, so the state is a
// join-semilattice: replicas holding the same entries agree on K, in any
// order of delivery, with any duplication.
//
// Nothing is ever deleted: a removed member's entries stay (they are what
// makes the removal stick), like a counter's parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crdt/counter.h"
#include "crdt/entry.h"
#include "crdt/lww_map.h"

namespace meshkv::crdt {

// How much longer an internal key is than its set's key, and so the longest
// key a set may have (its entries must pass check_key everywhere).
inline constexpr size_t kSetKeyOverhead = 2 + 2 + 16 + 1 + 8;
inline constexpr size_t kMaxSetKeyBytes = kMaxKeyBytes - kSetKeyOverhead;
inline constexpr size_t kMemberHashBytes = 16;

// check_user_key, and short enough for its entries (kMaxSetKeyBytes).
Status check_set_key(std::string_view key);
// A member: any bytes, not empty, at most a value's size less a remove's
// header.
Status check_member(std::string_view m);

// The internal keys of member `m` of set `key`.
std::string set_add_key(std::string_view key, std::string_view m, Origin o);
std::string set_remove_key(std::string_view key, std::string_view m, Origin r);
// What every internal key of set `key` begins with.
std::string set_prefix(std::string_view key);
// Whether `k` is an internal key of some set.
inline bool set_key(std::string_view k) { return k.starts_with(kOrderedPrefix); }

// What a set's internal key stands for; nullopt for any other key.
struct SetKey {
  std::string_view set;  // points into the parsed key
  std::string_view hash;
  bool remove = false;
  Origin origin = 0;
};
std::optional<SetKey> parse_set_key(std::string_view k);

// An add's value: a_o (8 bytes little-endian), then the member.
std::string encode_add(uint64_t count, std::string_view m);
struct Add {
  uint64_t count = 0;
  std::string_view member;
};
std::optional<Add> decode_add(std::string_view v);
// A remove's value: the member's length (4 bytes), the member, then 16 bytes
// per origin (o, count), ascending o.
using Seen = std::map<Origin, uint64_t>;
std::string encode_remove(std::string_view m, const Seen& seen);
struct Remove {
  std::string_view member;
  Seen seen;
};
std::optional<Remove> decode_remove(std::string_view v);

// One member as a replica holds it.
struct MemberView {
  std::string member;
  bool present = false;
  Seen adds;     // a_o for each origin that added it
  Seen removed;  // R[o], the pointwise max over removers
  Seen own_remove;  // R_self, this replica's own remove (for its next srem)
  // The newest add with a surviving tag (its HLC decides against a register
  // or counter of the same key), or nullptr.
  EntryPtr newest = nullptr;
};

// A set as a replica holds it.
struct SetView {
  std::map<std::string, MemberView, std::less<>> members;  // every member ever added, by bytes
  size_t present = 0;
  EntryPtr newest = nullptr;  // the newest surviving add of any member
  bool live() const { return present > 0; }
  std::vector<std::string> present_members() const;
};

// Entries that do not decode (bad input from a peer) count as absent.
// `self` names whose remove is own_remove (0: none).
SetView read_set(const LwwMap& m, std::string_view key, Origin self = 0);
MemberView read_member(const LwwMap& m, std::string_view key, std::string_view member, Origin self = 0);
// Every set whose key starts with `prefix`, by key (live or not).
std::map<std::string, SetView, std::less<>> read_sets(const LwwMap& m, std::string_view prefix);
// Whether the map holds any set entry at all.
inline bool any_sets(const LwwMap& m) { return m.ordered_size() > 0; }

// The value `self` writes to its add entry of `member` to add it once more.
std::string add_step(const MemberView& v, Origin self);
// The value `self` writes to its remove entry of `member`: everything it has
// seen added, joined with its previous remove. Only meaningful when the
// member is present.
std::string remove_step(const MemberView& v);

}  // namespace meshkv::crdt
