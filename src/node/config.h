// Config: everything a node can be told. TOML keys in a config file equal the
// field names; command-line flags use the same names with dashes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
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
  // Failure detection: one member is probed per interval (ms), and the
  // periodic anti-entropy digest rides in a probe. Detection time is the
  // wait until someone probes the dead member (each of N-1 members probes
  // it once a round of N-1 intervals, the least recently heard from first:
  // a dead member falls silent), plus the probe's failure
  // (min(probe_interval, 3 * probe_timeout)), plus the suspicion timeout.
  // 500: 4 datagrams a second per idle node (2 pings and 2 answers, 245-254
  // B/s on the wire at N = 5); at 30 % loss detection in 1.2-1.6 s (real
  // processes, three kills) and 1.41 s mean, 1.88 s worst in the simulator
  // (40 seeds), against 1.49 s and 1.96 s (10 seeds) with 250 and 9
  // datagrams.
  uint64_t probe_interval_ms = 500;
  // Wait for a direct ack before asking others to probe indirectly (ms).
  uint64_t probe_timeout_ms = 80;
  // Members asked to probe indirectly when a direct probe goes unanswered.
  unsigned indirect_probes = 3;
  // A suspect is declared dead after suspicion_mult * probe_interval *
  // max(1, log10(members + 1)) ms unless it refutes. Higher means fewer
  // false positives on lossy links and slower detection. 2 (with the 500 ms
  // interval): 1 s at N = 5, as before the interval doubled.
  unsigned suspicion_mult = 2;
  // Periodic anti-entropy with one random member (ms). It repairs whatever
  // eager pushes missed; traffic is proportional to what is missing.
  uint64_t anti_entropy_interval_ms = 1000;
  // Periodic anti-entropy with a member believed in sync sends a summary
  // (a hash of the causal context, the vector's sum, and the collection
  // fields horizon, reconciled and roster size) instead of the vector:
  // about 40 B/s less idle traffic per node at N = 5. It was off because a
  // 1,000-node simulation converged 1.3-3 s later after the last write. Two
  // causes: most of that figure was membership convergence after the mass
  // join, which moves by seconds either way with any change to the random
  // stream (200 nodes, 8 seeds: 0.2-2.8 s after the last write with full
  // digests, 0.4-3.2 s with summaries); the rest was a round trip more for
  // every repair a summary started, fixed by the vector's sum (on_digest in
  // anti_entropy.cc; data convergence at 200 nodes, seeds 1-4, mean after
  // the last write: 0.65 s with full digests and 0.77 s with summaries
  // before the fix, 0.69 s and 0.65 s after). It then stayed off because a
  // summary carried none of the collection fields: the simulated mesh of
  // five that loses three (sim_test.cc) never collected its tombstones
  // after the reap, each survivor holding the other's last full report of
  // five members. Summaries now state those fields (wire/messages.h), and
  // are sent only while there are no exclusions or quarantine asks to
  // tell. Nodes always answer summaries.
  bool ae_summaries = true;
  // Retransmissions of an unacknowledged push before anti-entropy is left to
  // repair it.
  unsigned max_retransmits = 12;
  // Remote HLC timestamps further ahead of the local clock than this (ms) are
  // not adopted by the local clock (and are counted).
  uint64_t max_clock_skew_ms = 60'000;
  // The clock-offset guard: a node whose wall clock is further than this
  // (ms) from more than half of its peers (at least two, each with a current
  // estimate from probes) refuses local writes until it is back within
  // bounds; its entries would otherwise win over acknowledged writes made
  // up to that long after them elsewhere. 0 turns the guard off. 500: NTP
  // keeps servers within a few ms and a laptop within tens, and an estimate
  // is off by at most half a round trip (under 150 ms across continents), so
  // only a clock that is really wrong trips it, while a write can overtake
  // by at most half a second. Laptops that sleep without NTP may want more.
  uint64_t max_clock_offset_ms = 500;
  // For testing only: added (signed) to the wall clock the engine sees, so a
  // node on one machine can run with a skewed physical clock. Monotonic time
  // (timers, failure detection) is unaffected. At most one day either way.
  int64_t clock_offset_ms = 0;
  // Fault injection from the start: the share (0..1) of datagrams this node
  // sends that it drops. For demos and tests; `meshkv loss` changes it live.
  double loss = 0;
  // Data directory: when set, every write is logged there and survives a
  // crash; empty means in-memory.
  std::string data_dir;
  // "always": a local write is synced to disk before it is acknowledged or
  // pushed (group commit: one sync for all writes of a loop iteration).
  // "interval": synced every sync_interval_ms; faster, but a crash may lose
  // the writes of the last interval even though they were acknowledged.
  std::string sync = "always";
  uint64_t sync_interval_ms = 50;
  // The log is compacted into a snapshot once it exceeds this many bytes.
  uint64_t snapshot_log_bytes = 64ull << 20;
  // Tombstone garbage collection: a deleted key's tombstone is dropped once
  // every member's version vector covers it and this long (ms) has passed
  // since the delete. A node cut off from a majority of its members for more
  // than half of this starts over from its peers when it returns, so that it
  // cannot bring deleted keys back. At least 2000; default one day.
  uint64_t tombstone_grace_ms = 86'400'000;
  // Membership that forgets: a member dead for longer than this (ms), or
  // gone this long since it left, is removed from the member table; it then
  // no longer counts toward the majority, and nobody knocks on its door any
  // more (it comes back only by joining again). Unset: reap_after(), the
  // greater of one day and tombstone_grace_ms. Never below
  // tombstone_grace_ms: a member reaped sooner could come back holding
  // values whose deletes the others have collected.
  std::optional<uint64_t> reap_after_ms;
  // Security. Cluster key files: the first seals, all open (key rotation).
  // None: the mesh is not sealed, and the node only listens on loopback
  // unless `insecure`.
  std::vector<std::string> key_files;
  // This node's identity (meshkv keygen); none: one is made per process.
  std::string identity;
  // Public keys ("mkpub:...") accepted as members; empty: any key holder.
  std::vector<std::string> allowed_peers;
  // Listen beyond loopback without a cluster key (said in the log and status).
  bool insecure = false;
  // Start even when the log or the snapshot is damaged, or the snapshot the
  // log continues is missing: keep what verifies, drop the rest (and with a
  // snapshot, its version vector) and let peers resend it. Off by default: a
  // node refuses to serve from a damaged directory unless told.
  bool repair = false;
  // Serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (empty:
  // off). Counters and gauges only: no key or value is exposed.
  std::string metrics;
  // debug, info, warn or error.
  std::string log_level = "info";

  // reap_after_ms, or its default.
  uint64_t reap_after() const;
  // The id, filled in from the listen address when empty.
  std::string effective_id() const;
  Status validate() const;
};

}  // namespace meshkv::node
