// Internal to src/node: the queue of effects the engine hands its driver
// (node/effects.h), with the bounds the engine promises when a driver falls
// behind: at most 4096 log lines pending (later ones are dropped), at most
// 65536 changes (the oldest are dropped, and counted), and one compaction
// request.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "node/effects.h"

namespace meshkv::node {

class Outbox {
 public:
  void send(Datagram d) { queue_.emplace_back(std::move(d)); }
  void log(LogLevel level, std::string text);
  void change(Change c);
  void journal(LogOp op) { queue_.emplace_back(std::move(op)); }
  void compact();
  void member(MemberEvent e) { queue_.emplace_back(std::move(e)); }
  void reply(Reply r) { queue_.emplace_back(std::move(r)); }
  // Everything queued since the last call, in order, then `timer`.
  std::vector<Effect> take(Timer timer);
  uint64_t changes_dropped() const { return changes_dropped_; }

 private:
  std::vector<Effect> queue_;
  std::deque<size_t> changes_;  // where pending changes are in queue_, oldest first
  std::vector<size_t> dropped_;  // where changes dropped since the last take are
  size_t logs_ = 0;
  bool compaction_ = false;
  uint64_t changes_dropped_ = 0;
};

}  // namespace meshkv::node
