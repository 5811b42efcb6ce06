// What the membership component tells the rest of the engine, and the
// engine's drivers, about the members it knows.
#pragma once

#include <cstdint>
#include <string>

#include "common/endpoint.h"
#include "wire/messages.h"

namespace meshkv::node {

// A change in what this node believes about a member, or about itself.
struct MemberEvent {
  enum class Kind : uint8_t {
    kAdded,    // first heard of, in state `to` (`from` equals `to`)
    kChanged,  // a newer statement applied: state, incarnation, address or process
    kRefuted,  // about this node: it denied a rumour; `incarnation` is its new one
    kRemoved,  // no longer a member: reaped (dead or left for --reap-after) or forgotten
               // (meshkv forget, here or on another node); `from` equals `to`, its state
               // when removed. A process of that name that comes back is kAdded afresh.
  };
  Kind kind = Kind::kChanged;
  std::string name;
  uint64_t uid = 0;  // the member's process (after the change)
  Endpoint addr;
  wire::MemberState from = wire::MemberState::kAlive, to = wire::MemberState::kAlive;
  uint64_t incarnation = 0;
  bool new_process = false;  // kChanged: `uid` replaced another process of that name
  // Whether this node had heard from the member directly (a datagram from
  // its process, from its address) before and after the event (a kChanged
  // may change only this). Only such a member counts toward the majority
  // (anti_entropy.cc): a member named only in others' datagrams never has.
  bool verified_before = false, verified_after = false;

  bool reachable_before() const { return kind != Kind::kAdded && reachable(from); }
  bool reachable_after() const { return kind != Kind::kRemoved && reachable(to); }
  bool counted_before() const { return reachable_before() && verified_before; }
  bool counted_after() const { return reachable_after() && verified_after; }
  // Worth telling an operator: a member appeared or changed state, or this
  // node refuted a rumour. (Incarnation or address changes alone are not.)
  bool notable() const { return kind != Kind::kChanged || from != to; }

  static bool reachable(wire::MemberState s) {
    return s == wire::MemberState::kAlive || s == wire::MemberState::kSuspect;
  }
};

// The event as the node's log and `meshkv sim` print it, e.g. "member b
// (127.0.0.1:7002) is dead". REQUIRES: e.notable().
std::string describe(const MemberEvent& e);

}  // namespace meshkv::node
