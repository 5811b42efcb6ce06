// Splitting messages larger than the MTU into Fragment datagrams, and putting
// them back together.
//
// A fragmented message keeps its xfer_id across retransmissions (the id is a
// hash of the message bytes), so a receiver fills in missing pieces over
// several attempts instead of needing one attempt in which every piece
// arrives: at 30 % loss a 1 MiB value (~780 pieces) would otherwise never
// make it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "wire/bytes.h"

namespace meshkv::wire {

// Bytes a Fragment adds around its payload: header, xfer id, index, count and
// payload length (varints of at most 5 bytes each for 32-bit values).
inline constexpr size_t kFragmentOverhead = 12 + 8 + 5 + 5 + 5;
// The largest message the reassembler accepts (1 MiB value plus headroom).
inline constexpr size_t kMaxReassembledBytes = 2 * 1024 * 1024;
// Pieces per message: enough for kMaxReassembledBytes at the smallest MTU the
// configuration allows (576), small enough that a forged count cannot make
// the receiver allocate much.
inline constexpr uint32_t kMaxFragments = 4096;
inline constexpr size_t kMinMtu = 576;

uint64_t fnv1a64(const uint8_t* p, size_t n);

// Encoded Fragment datagrams, each at most `mtu` bytes, carrying `msg`.
// REQUIRES: mtu > kFragmentOverhead.
std::vector<Bytes> fragment(uint64_t sender, const Bytes& msg, size_t mtu);

class Reassembler {
 public:
  struct Limits {
    size_t max_partial = 64;            // messages being reassembled at once
    size_t max_bytes = 16 * 1024 * 1024;  // buffered bytes over all of them
    uint64_t timeout_ms = 30'000;       // a partial message untouched this long is dropped
  };
  Reassembler() = default;
  explicit Reassembler(Limits l) : limits_(l) {}

  // Adds one piece from `sender`. Returns the whole message once every piece
  // arrived. Inconsistent or oversized pieces are dropped (counted).
  //
  // No record of finished transfers is kept, on purpose: a retransmitted
  // push whose ack was lost must be reassembled again so that it can be
  // acknowledged again (the push's msg_seq suppresses the duplicate apply).
  // Stragglers of a finished transfer hold memory until they expire, within
  // the byte budget.
  std::optional<Bytes> add(uint64_t sender, uint64_t xfer_id, uint32_t index, uint32_t count,
                           const std::string& piece, uint64_t now_ms);
  // Drops partial messages that timed out.
  void expire(uint64_t now_ms);

  size_t partial() const { return parts_.size(); }
  size_t buffered_bytes() const { return bytes_; }  // payload only
  size_t overhead_bytes() const { return slot_bytes_; }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Partial {
    uint32_t count = 0;
    uint32_t have = 0;
    size_t bytes = 0;
    uint64_t touched_ms = 0;
    std::vector<std::optional<std::string>> pieces;
  };
  // Evicts the least recently touched partial message other than `keep`.
  void evict_oldest(std::pair<uint64_t, uint64_t> keep);
  using PartMap = std::map<std::pair<uint64_t, uint64_t>, Partial>;
  PartMap::iterator forget(PartMap::iterator it);
  // A partial message's empty slots cost memory before pieces fill them;
  // they count against the budget so forged piece counts cannot hide.
  static size_t slots(uint32_t count) { return count * sizeof(std::optional<std::string>); }
  Limits limits_;
  PartMap parts_;
  size_t bytes_ = 0;       // payload bytes buffered
  size_t slot_bytes_ = 0;  // slot overhead of all partial messages
  uint64_t dropped_ = 0;
};

}  // namespace meshkv::wire
