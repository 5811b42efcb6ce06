#include "wire/fragment.h"

#include <algorithm>
#include <string>

#include "wire/codec.h"

namespace meshkv::wire {

uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::vector<Bytes> fragment(uint64_t sender, const Bytes& msg, size_t mtu) {
  const size_t payload = mtu - kFragmentOverhead;
  const size_t count = (msg.size() + payload - 1) / payload;
  const uint64_t xfer = fnv1a64(msg.data(), msg.size()) | 1;  // never 0
  std::vector<Bytes> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const size_t off = i * payload;
    const size_t len = std::min(payload, msg.size() - off);
    Fragment f;
    f.xfer_id = xfer;
    f.index = static_cast<uint32_t>(i);
    f.count = static_cast<uint32_t>(count);
    f.bytes.assign(reinterpret_cast<const char*>(msg.data() + off), len);
    out.push_back(encode(Envelope{kVersion, sender, std::move(f)}));
  }
  return out;
}

std::optional<Bytes> Reassembler::add(uint64_t sender, uint64_t xfer_id, uint32_t index,
                                      uint32_t count, const std::string& piece,
                                      uint64_t now_ms) {
  if (count == 0 || count > kMaxFragments || index >= count || piece.empty() ||
      piece.size() > kMaxReassembledBytes) {
    ++dropped_;
    return std::nullopt;
  }
  const auto key = std::make_pair(sender, xfer_id);
  auto it = parts_.find(key);
  if (it == parts_.end()) {
    while (!parts_.empty() && parts_.size() >= std::max<size_t>(limits_.max_partial, 1)) {
      evict_oldest(key);
    }
    Partial fresh;
    fresh.count = count;
    fresh.pieces.resize(count);
    slot_bytes_ += slots(count);
    it = parts_.emplace(key, std::move(fresh)).first;
  }
  Partial& p = it->second;
  if (p.count != count) {
    ++dropped_;
    return std::nullopt;
  }
  p.touched_ms = now_ms;
  if (p.pieces[index]) return std::nullopt;  // duplicate
  // Make room by evicting other messages, never this one; a message that
  // cannot fit the budget at all is given up.
  auto over = [&] { return bytes_ + slot_bytes_ + piece.size() > limits_.max_bytes; };
  while (over() && parts_.size() > 1) evict_oldest(key);
  if (over() || p.bytes + piece.size() > kMaxReassembledBytes) {
    forget(it);
    ++dropped_;
    return std::nullopt;
  }
  p.pieces[index] = piece;
  p.bytes += piece.size();
  bytes_ += piece.size();
  if (++p.have < p.count) return std::nullopt;
  Bytes whole;
  whole.reserve(p.bytes);
  for (const auto& s : p.pieces) whole.insert(whole.end(), s->begin(), s->end());
  forget(it);
  return whole;
}

void Reassembler::expire(uint64_t now_ms) {
  for (auto it = parts_.begin(); it != parts_.end();) {
    const uint64_t touched = it->second.touched_ms;
    if (now_ms > touched && now_ms - touched > limits_.timeout_ms) {
      it = forget(it);
      ++dropped_;
    } else {
      ++it;
    }
  }
}

void Reassembler::evict_oldest(std::pair<uint64_t, uint64_t> keep) {
  auto oldest = parts_.end();
  for (auto it = parts_.begin(); it != parts_.end(); ++it) {
    if (it->first == keep) continue;
    if (oldest == parts_.end() || it->second.touched_ms < oldest->second.touched_ms) oldest = it;
  }
  if (oldest == parts_.end()) return;
  forget(oldest);
  ++dropped_;
}

Reassembler::PartMap::iterator Reassembler::forget(PartMap::iterator it) {
  bytes_ -= it->second.bytes;
  slot_bytes_ -= slots(it->second.count);
  return parts_.erase(it);
}

}  // namespace meshkv::wire
