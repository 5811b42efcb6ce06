// Tunable consistency (issue 17): how many members a write waits for, and
// how many a quorum read asks. The waits and reads themselves are engine
// state with deadlines (Engine::await_writes, Engine::quorum_read, in
// node/consistency.cc); this header holds what their callers share.
//
// What "a member has a write" means: it acknowledged a push that carried
// the write (a push is acknowledged after the receiver applied it and, with
// a data directory, appended it to its write-ahead log: the append precedes
// the acknowledgement's datagram, net/server.cc; the fdatasync of replicated
// writes follows the sync policy, within 200 ms under "always"), or its
// version vector, learnt from its anti-entropy digests, covers the write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace meshkv::node {

// A level: `count` members (this node included), a majority of the members
// that have not left, or every one of them.
struct Level {
  enum class Kind : uint8_t { kCount, kQuorum, kAll };
  Kind kind = Kind::kCount;
  uint32_t count = 1;

  // How many of `members` (this node included) must have it.
  size_t need(size_t members) const {
    switch (kind) {
      case Kind::kQuorum: return members / 2 + 1;
      case Kind::kAll: return members;
      case Kind::kCount: break;
    }
    return count;
  }
  // "quorum", "all" or the count.
  std::string to_string() const;
};

// "quorum", "all", or a count 1..1000. Invalid otherwise, with the message
// for the user.
Result<Level> parse_level(std::string_view text, bool counts_allowed = true);

// The deadline of a wait or read: the client's --timeout, in ms.
inline constexpr uint64_t kDefaultWaitMs = 3000;
inline constexpr uint64_t kMaxWaitMs = 3'600'000;
// At most this many waits and quorum reads at once; more are refused
// (Unavailable), never queued without bound.
inline constexpr size_t kMaxWaits = 4096;
inline constexpr size_t kMaxReads = 1024;

}  // namespace meshkv::node
