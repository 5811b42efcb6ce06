// Fault injection at the engine's boundary, so that `meshkv loss` behaves the
// same in a real node and in the simulator. Randomness comes from the
// engine's seeded generator.
//
// drop, dup, corrupt and delay apply to datagrams in `direction` ("out": those
// this node sends, the default, so that P on every node loses a share P of
// all datagrams; "in": those it receives, a duplicate or delayed one handled
// again or later; or "both"), restricted to traffic with `peers` when that is
// not empty. `partition` cuts members off entirely, both ways.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "wire/value.h"

namespace meshkv::node {

struct Faults {
  double drop = 0;          // probability, 0..1
  double dup = 0;           // probability a datagram is sent twice
  double corrupt = 0;       // probability one bit of it is flipped
  uint64_t delay_ms = 0;    // added latency
  uint64_t jitter_ms = 0;   // plus uniform [0, jitter): reorders
  std::string direction = "out";
  std::vector<std::string> peers;
  std::vector<std::string> partition;

  bool active() const {
    return drop > 0 || dup > 0 || corrupt > 0 || delay_ms > 0 || jitter_ms > 0 || !partition.empty();
  }
  bool applies_out() const { return direction != "in"; }
  bool applies_in() const { return direction != "out"; }
  Status validate() const;
  wire::Value to_value() const;
  // Reads the fields present in `v` (as sent by `meshkv loss`) over *this.
  Status merge_from(const wire::Value& v);
};

}  // namespace meshkv::node
