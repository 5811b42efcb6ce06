// Drains an engine as every driver does (node/effects.h), sorted by kind, for
// tests that look at one or two kinds.
#pragma once

#include <variant>
#include <vector>

#include "node/engine.h"

namespace meshkv::testing {

struct Drained {
  std::vector<node::Datagram> datagrams;
  std::vector<node::LogOp> log_ops;
  size_t compactions = 0;
  std::vector<node::Change> changes;
  std::vector<node::MemberEvent> members;
  std::vector<node::LogLine> logs;
  std::vector<node::Reply> replies;
  uint64_t wake_us = 0;  // the Timer's
};

inline Drained drain(node::Engine& e) {
  Drained d;
  for (auto& effect : e.take_effects()) {
    std::visit(node::Overloaded{
                   [&](node::Datagram& x) { d.datagrams.push_back(std::move(x)); },
                   [&](node::LogOp& x) { d.log_ops.push_back(std::move(x)); },
                   [&](node::CompactionRequest) { ++d.compactions; },
                   [&](node::Change& x) { d.changes.push_back(std::move(x)); },
                   [&](node::MemberEvent& x) { d.members.push_back(std::move(x)); },
                   [&](node::LogLine& x) { d.logs.push_back(std::move(x)); },
                   [&](node::Timer t) { d.wake_us = t.at_us; },
                   [&](node::Reply& x) { d.replies.push_back(std::move(x)); },
               },
               effect);
  }
  return d;
}

// The datagrams an engine wants sent (its other effects are dropped).
inline std::vector<node::Datagram> datagrams(node::Engine& e) { return drain(e).datagrams; }

}  // namespace meshkv::testing
