// Config: everything a node can be told. TOML keys in a config file equal the
// field names; command-line flags use the same names with dashes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/endpoint.h"
#include "common/status.h"

namespace meshkv::node {

struct Config {
  // Node name shown to operators and used as the membership key. Default
  // (empty): derived from the listen address, "host-port".
  std::string id;
  // UDP mesh port, and TCP control port with the same number.
  Endpoint listen = Endpoint::v4(127, 0, 0, 1, 7946);
  // Whether `listen` was given explicitly. When not, a taken default port
  // moves on to the next free one.
  bool listen_explicit = false;
  // Seeds to contact at start (and again while no member is reachable).
  std::vector<Endpoint> join;
  // Largest datagram ever sent, bytes. 1400 fits Ethernet with room for
  // IP/UDP headers and tunnels; larger messages are fragmented. Minimum 576.
  size_t mtu = 1400;
  // How often membership updates are gossiped to random members (ms). Lower
  // spreads news faster at the cost of idle traffic.
  uint64_t gossip_interval_ms = 200;
  // Failure detection: one member is probed per interval (ms). Detection time
  // is about probe_interval + suspicion timeout.
  uint64_t probe_interval_ms = 250;
  // Wait for a direct ack before asking others to probe indirectly (ms).
  uint64_t probe_timeout_ms = 80;
  // Members asked to probe indirectly when a direct probe goes unanswered.
  unsigned indirect_probes = 3;
  // A suspect is declared dead after suspicion_mult * probe_interval *
  // max(1, log10(members + 1)) ms unless it refutes. Higher means fewer
  // false positives on lossy links and slower detection.
  unsigned suspicion_mult = 4;
  // Periodic anti-entropy with one random member (ms). It repairs whatever
  // eager pushes missed; traffic is proportional to what is missing.
  uint64_t anti_entropy_interval_ms = 1000;
  // Retransmissions of an unacknowledged push before anti-entropy is left to
  // repair it.
  unsigned max_retransmits = 12;
  // Remote HLC timestamps further ahead of the local clock than this (ms) are
  // not adopted by the local clock (and are counted).
  uint64_t max_clock_skew_ms = 60'000;
  // Fault injection from the start: the share (0..1) of datagrams this node
  // sends that it drops. For demos and tests; `meshkv loss` changes it live.
  double loss = 0;
  // debug, info, warn or error.
  std::string log_level = "info";

  // The id, filled in from the listen address when empty.
  std::string effective_id() const;
  Status validate() const;
};

}  // namespace meshkv::node
