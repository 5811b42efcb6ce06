// Protocol behaviour in the deterministic simulator, each scenario over many
// seeds. A failure names its seed; MESHKV_SIM_SEED=<seed> replays one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "sim/sim.h"
#include "sim_seeds.h"

using namespace meshkv;
using testing::kSec;
using testing::seeds;

namespace {

// Every write made through the simulator, and the per-key winner.
struct Workload {
  std::map<std::string, crdt::KeyedEntry> winner;
  size_t writes = 0;

  void record(const Result<crdt::KeyedEntry>& r) {
    REQUIRE(r.ok());
    ++writes;
    auto& w = winner[r->key];
    if (w.key.empty() || crdt::wins(r->entry, w.entry)) w = *r;
  }
  // Random writes and deletes on random running nodes over `span_us`.
  void run(sim::Sim& s, size_t count, uint64_t span_us, size_t keys) {
    for (size_t i = 0; i < count; ++i) {
      s.run_for(span_us / count);
      size_t n = s.rng()() % s.size();
      while (!s.up(n)) n = (n + 1) % s.size();
      const std::string key = "k" + std::to_string(s.rng()() % keys);
      if (s.rng()() % 5 == 0) {
        record(s.del(n, key));
      } else {
        record(s.set(n, key, "v" + std::to_string(writes) + "@n" + std::to_string(n)));
      }
    }
  }
  // Every running node holds every key's winner: no write was lost.
  std::string check(sim::Sim& s) const {
    for (size_t i = 0; i < s.size(); ++i) {
      if (!s.up(i)) continue;
      for (const auto& [k, w] : winner) {
        crdt::EntryPtr e = s.node(i).get(k);
        if (!e || !crdt::same_write(*e, w.entry)) return "node n" + std::to_string(i) + " lacks the winner of " + k;
      }
    }
    return {};
  }
};

sim::Options options(size_t n, uint64_t seed, double drop, double dup) {
  sim::Options o;
  o.nodes = n;
  o.seed = seed;
  o.faults.drop = drop;
  o.faults.dup = dup;
  o.max_clock_skew_ms = 50;
  return o;
}

// Runs until `goal` holds (bounded by `max_us`) and records how long it took
// and how many datagrams went over the network meanwhile. False on timeout.
struct Measured {
  std::vector<double> secs;
  std::vector<uint64_t> dgrams;
  bool until(sim::Sim& s, const std::function<bool()>& goal, uint64_t max_us, uint64_t step_us = 10'000) {
    const uint64_t t0 = s.now_us();
    const uint64_t d0 = s.stats().delivered + s.stats().dropped;
    if (!s.run_until(goal, max_us, step_us)) return false;
    secs.push_back(static_cast<double>(s.now_us() - t0) / kSec);
    dgrams.push_back(s.stats().delivered + s.stats().dropped - d0);
    return true;
  }
};

void report(const char* scenario, const std::vector<double>& secs, const std::vector<uint64_t>& dgrams) {
  double worst = 0, sum = 0;
  uint64_t dsum = 0;
  for (double x : secs) {
    worst = std::max(worst, x);
    sum += x;
  }
  for (auto d : dgrams) dsum += d;
  MESSAGE(std::string(scenario) << ": " << secs.size() << " seeds, time to the goal (convergence after the last write, or detection): mean "
                   << sum / static_cast<double>(secs.size()) << " s, worst " << worst
                   << " s (simulated); datagrams per run: mean " << dsum / dgrams.size());
}

// Runs a workload under faults, stops the writes, then measures how long the
// mesh takes to converge (faults still on).
void converge_under(const char* name, size_t n, double drop, double dup, uint64_t base, uint64_t count,
                    size_t writes) {
  Measured m;
  for (uint64_t seed : seeds(base, count)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(n, seed, drop, dup));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    Workload w;
    w.run(s, writes, 2 * kSec, 20);
    REQUIRE(m.until(s, [&] { return s.converged(); }, 60 * kSec));
    CHECK(w.check(s) == "");
    CHECK(s.stats().oversized == 0);
  }
  report(name, m.secs, m.dgrams);
}

}  // namespace

TEST_CASE("sim: 5 nodes at 30% loss with duplicates and reordering converge with every write") {
  converge_under("5 nodes, 30% loss, 10% dup", 5, 0.30, 0.10, 1000, 20, 200);
}

TEST_CASE("sim: 5 nodes at 50% loss converge") {
  converge_under("5 nodes, 50% loss", 5, 0.50, 0.05, 2000, 10, 100);
}

TEST_CASE("sim: a partition with writes on both sides heals to the last-writer-wins state") {
  Measured m;
  for (uint64_t seed : seeds(3000, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.05, 0.02));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    s.partition({3, 4});
    Workload w;
    w.run(s, 100, 8 * kSec, 10);  // long enough for each side to declare the other dead
    CHECK(s.node(0).member_state("n3") == "dead");
    CHECK(s.node(4).member_state("n1") == "dead");
    s.heal();
    REQUIRE(m.until(s, [&] { return s.converged() && s.membership_converged(); }, 60 * kSec));
    CHECK(w.check(s) == "");
  }
  report("partition heal (5 nodes, 2|3)", m.secs, m.dgrams);
}

TEST_CASE("sim: a crashed node is declared dead by all, and no live node is at 30% loss") {
  Measured m;
  for (uint64_t seed : seeds(4000, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.30, 0.05));
    size_t false_deaths = 0;
    size_t crashed = s.size();
    s.on_member = [&](size_t, const node::MemberEvent& e) {
      if (!e.notable() || e.to != wire::MemberState::kDead) return;
      if (crashed == s.size() || e.name != "n" + std::to_string(crashed)) ++false_deaths;
    };
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    s.run_for(60 * kSec);  // a minute of 30% loss: nobody may be declared dead
    CHECK(false_deaths == 0);
    crashed = 2;
    s.crash(crashed);
    auto all_see_dead = [&] {
      for (size_t i = 0; i < s.size(); ++i) {
        if (i != crashed && s.node(i).member_state("n2") != "dead") return false;
      }
      return true;
    };
    REQUIRE(m.until(s, all_see_dead, 30 * kSec, 1000));
    CHECK(false_deaths == 0);
  }
  report("failure detection at 30% loss (kill to all agree)", m.secs, m.dgrams);
}

TEST_CASE("sim: an idle mesh of 5 sends at most 4 datagrams a second per node, under 250 B/s on the wire") {
  // Two probes and two answers a second, the anti-entropy digest riding in a
  // probe: before, nine datagrams (four probes every 250 ms, their answers,
  // a digest of its own), 480 B/s with IP and UDP headers.
  for (uint64_t seed : seeds(4100, 4)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.0, 0.0));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    Workload w;
    w.run(s, 50, kSec, 10);  // every origin in the vectors, as in a mesh that was written to
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
    s.run_for(10 * kSec);
    const uint64_t d0 = s.stats().delivered + s.stats().dropped, b0 = s.stats().bytes;
    const uint64_t secs = 30;
    s.run_for(secs * kSec);
    const double per_node_s = static_cast<double>(s.size() * secs);
    const double dgrams = static_cast<double>(s.stats().delivered + s.stats().dropped - d0) / per_node_s;
    const double bytes = static_cast<double>(s.stats().bytes - b0) / per_node_s;
    MESSAGE("idle, per node: " << dgrams << " datagrams/s, " << bytes << " B/s of payload, "
                               << bytes + 28 * dgrams << " B/s with IPv4/UDP headers");
    CHECK(dgrams <= 4.1);
    CHECK(bytes + 28 * dgrams < 250);
    CHECK(w.check(s) == "");
  }
}

TEST_CASE("sim: a crashed node restarts as a new process, rejoins and catches up") {
  for (uint64_t seed : seeds(5000, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.10, 0.02));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    Workload w;
    w.run(s, 50, 1 * kSec, 10);
    s.crash(1);
    w.run(s, 50, 3 * kSec, 10);
    s.restart(1);
    w.run(s, 50, 1 * kSec, 10);
    REQUIRE(s.run_until([&] { return s.converged() && s.membership_converged(); }, 60 * kSec));
    CHECK(w.check(s) == "");
  }
}

TEST_CASE("sim: a 1 MiB value crosses a 30% lossy mesh in MTU-sized fragments") {
  for (uint64_t seed : seeds(6000, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(3, seed, 0.30, 0.05));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    std::string big(crdt::kMaxValueBytes, 'x');
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
    Workload w;
    w.record(s.set(0, "big", big));
    REQUIRE(s.run_until([&] { return s.converged(); }, 120 * kSec));
    CHECK(w.check(s) == "");
    CHECK(s.stats().oversized == 0);
  }
}

// A member learned from the seed's answer or from gossip was not pushed to
// until it had been heard from directly (a probe, or a digest): for up to a
// round of probes after every node showed every other alive, writes between
// such a pair waited for anti-entropy. Measured by the bench driver as a p99
// of 150-700 ms at 0 % loss; here, every write must reach every node by push.
TEST_CASE("sim: right after the mesh forms, a write reaches every node by push") {
  for (uint64_t seed : seeds(7100, 20)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(5, seed, 0, 0);
    o.max_clock_skew_ms = 0;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 10 * kSec, 1'000));
    for (size_t i = 0; i < s.size(); ++i) REQUIRE(s.set(i, "k" + std::to_string(i), "v").ok());
    // A push and its answer take a few simulated milliseconds; anti-entropy
    // runs once a second.
    const bool everywhere = s.run_until(
        [&] {
          for (size_t i = 0; i < s.size(); ++i) {
            for (size_t k = 0; k < s.size(); ++k) {
              if (!s.node(i).replica().map().find("k" + std::to_string(k))) return false;
            }
          }
          return true;
        },
        50'000, 1'000);
    CHECK(everywhere);
  }
}

// The same at 30 % loss with 16 members: a greeting or its answer is lost
// half the time, and a pair left unverified (not pushed to) waited for a
// probe between them, one a round of 16 probes: write-to-all p99 of
// 2.4-3.0 s with real processes (scripts/bench.sh, N=16 at 30 % loss).
// Members are now greeted until they answer, 10 times at most. With one
// greeting these seeds left 12-20 pairs unverified 1.5 s after the mesh
// formed; now none (of 240 pairs a seed, about 1 in 1,000 may be left to
// the probes).
TEST_CASE("sim: at 30% loss, every pair of 16 members has heard from each other 1.5 s after the mesh forms") {
  size_t unverified = 0;
  for (uint64_t seed : seeds(7300, 8)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(16, seed, 0.3, 0));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec, 1'000));
    s.run_for(1'500'000);
    for (size_t n = 0; n < s.size(); ++n) {
      const wire::Value peers = s.node(n).peers(s.now_of(n));
      for (const wire::Value& m : peers.get("members").as_list()) {
        if (!m.get("self").as_bool() && !m.get("verified").as_bool()) ++unverified;
      }
    }
  }
  MESSAGE("pairs not yet verified 1.5 s after the mesh formed, 8 seeds x 240: " << unverified);
  CHECK(unverified <= 2);
}

// A receiver that stops for a moment (descheduled, or behind on its socket
// buffer) with dozens of pushes queued to it got every one of them twice:
// each one's RTO expired while it waited there. The sender now waits (up to
// 100 ms) while no later push is acknowledged. A lost push among many is
// still resent at its first RTO: a later one's ack shows it missing.
TEST_CASE("sim: pushes queued at a receiver that stalls are not sent twice; a lost one still is") {
  for (uint64_t seed : seeds(7200, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(3, seed, 0, 0);
    o.max_clock_skew_ms = 0;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 10 * kSec, 1'000));
    s.run_for(2 * kSec);  // round trips measured, greetings answered
    // A write every 260 us is not load (replication.cc, kLoadedGapUs): one
    // push each, 38 in flight when the first RTO (10 ms) expires.
    auto write_burst = [&](const std::string& prefix) {
      for (int i = 0; i < 80; ++i) {
        REQUIRE(s.set(0, prefix + std::to_string(i), "v").ok());
        s.run_for(260);
      }
    };
    // A stall of 40 ms: past the first RTO, and the pushes wait it out.
    const uint64_t retransmits = s.node(0).counters().retransmits;
    const uint64_t duplicates = s.node(1).counters().duplicates;
    s.pause(1);
    write_burst("stalled");
    s.run_until(s.now_us() + 40'000 - 80 * 260);
    s.resume(1);
    REQUIRE(s.run_until([&] { return s.converged(); }, 5 * kSec, 1'000));
    CHECK(s.node(1).counters().duplicates == duplicates);
    CHECK(s.node(0).counters().retransmits == retransmits);
    CHECK(s.node(0).counters().retransmits_deferred > 0);
    // Lost pushes among many in flight (a 10 ms link) are still resent
    // promptly: the acks of later ones show the gap, and as the burst's acks
    // come back fewer than 32 are in flight. All is there within 90 ms.
    sim::Faults& f = s.faults();
    f.delay_us = 10'000;
    f.jitter_us = 0;
    s.run_for(2 * kSec);  // round trips measured at 20 ms
    f.drop = 0.05;
    write_burst("lossy");
    f.drop = 0;
    const uint64_t burst_end = s.now_us();
    REQUIRE(s.run_until([&] { return s.converged(); }, 5 * kSec, 1'000));
    MESSAGE("lossy burst: all everywhere " << (s.now_us() - burst_end) / 1000 << " ms after its end");
    CHECK(s.node(0).counters().retransmits > 0);
    CHECK(s.now_us() - burst_end < 90'000);
  }
}

TEST_CASE("sim: 100 nodes converge") {
  Measured m;
  for (uint64_t seed : seeds(7000, 2)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(100, seed, 0.05, 0.01));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 60 * kSec, 100'000));
    Workload w;
    w.run(s, 300, 3 * kSec, 50);
    REQUIRE(m.until(s, [&] { return s.converged(); }, 60 * kSec, 50'000));
    CHECK(w.check(s) == "");
    CHECK(s.stats().oversized == 0);
  }
  report("100 nodes, 5% loss", m.secs, m.dgrams);
}

TEST_CASE("sim: faults injected at the engine boundary (meshkv loss) behave as in a real node") {
  for (uint64_t seed : seeds(8000, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(4, seed, 0.0, 0.0));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    // What `meshkv loss --partition n3` on n0..n2 and `--partition n0,n1,n2`
    // on n3 do, plus 20% drop on n1's sends.
    node::Faults cut;
    cut.partition = {"n3"};
    for (size_t i = 0; i < 3; ++i) REQUIRE(s.node(i).set_faults(cut).ok());
    node::Faults lossy = cut;
    lossy.drop = 0.2;
    REQUIRE(s.node(1).set_faults(lossy).ok());
    node::Faults other;
    other.partition = {"n0", "n1", "n2"};
    REQUIRE(s.node(3).set_faults(other).ok());
    Workload w;
    w.run(s, 60, 1 * kSec, 8);
    s.run_for(1 * kSec);
    CHECK_FALSE(s.converged());
    CHECK(s.node(3).counters().injected_drops > 0);
    for (size_t i = 0; i < 4; ++i) REQUIRE(s.node(i).set_faults(node::Faults{}).ok());
    REQUIRE(s.run_until([&] { return s.converged() && s.membership_converged(); }, 30 * kSec));
    CHECK(w.check(s) == "");
  }
}

TEST_CASE("sim: tombstones are collected, and a node back from a long partition reconciles rather than resurrect") {
  Measured m;
  for (uint64_t seed : seeds(9000, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(3, seed, 0.05, 0.02);
    o.config.tombstone_grace_ms = 4000;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    for (size_t i = 0; i < 200; ++i) REQUIRE(s.set(i % 3, "k" + std::to_string(i), "v").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));

    s.partition({2});
    s.run_for(6 * kSec);  // each side declares the other dead
    CHECK(s.node(0).member_state("n2") == "dead");
    // On the cut-off side, before the deletes: a write of a key the others
    // delete (older than the delete: must never show again) and of a key
    // they keep (ordered against its live value: merged).
    REQUIRE(s.set(2, "k7", "older than its delete").ok());
    REQUIRE(s.set(2, "k190", "written on the cut-off side").ok());
    s.run_for(kSec / 10);
    for (size_t i = 0; i < 150; ++i) REQUIRE(s.del(i % 2, "k" + std::to_string(i)).ok());
    // The majority side collects every tombstone once the grace period has
    // passed, without waiting for the member that is gone.
    auto collected = [&] {
      for (size_t i = 0; i < 2; ++i) {
        const auto& map = s.node(i).replica().map();
        if (map.tombstones() != 0 || map.size() != 50) return false;
      }
      return true;
    };
    REQUIRE(s.run_until(collected, 30 * kSec));
    // After the collection, above the horizon: merged as usual.
    s.run_for(kSec / 10);
    REQUIRE(s.set(2, "fresh", "written on the cut-off side").ok());
    CHECK(s.node(2).replica().map().live() == 201);

    s.heal();
    REQUIRE(m.until(s, [&] { return s.converged() && s.membership_converged(); }, 60 * kSec));
    size_t quarantined = 0;
    for (size_t n = 0; n < 3; ++n) {
      INFO("node n" << n);
      for (size_t i = 0; i < 150; ++i) {
        crdt::EntryPtr e = s.node(n).get("k" + std::to_string(i));
        CHECK_MESSAGE((e == nullptr || e->tombstone), "deleted key k" << i << " came back");
      }
      crdt::EntryPtr fresh = s.node(n).get("fresh");
      CHECK((fresh != nullptr && !fresh->tombstone));  // the cut-off side's own write survives
      crdt::EntryPtr kept = s.node(n).get("k190");
      CHECK((kept != nullptr && kept->value == "written on the cut-off side"));
      CHECK(s.node(n).replica().map().live() == 51);
      // Not lost: kept aside where the majority judged it.
      const auto& q = s.node(n).replica().quarantine();
      if (auto it = q.find("k7"); it != q.end() && it->second.back().value == "older than its delete") ++quarantined;
    }
    CHECK(quarantined >= 2);
    CHECK(s.node(2).status(s.now_of(2)).get("gc").get("resyncs").as_int() == 1);
  }
  report("partition longer than the tombstone grace period, then heal (3 nodes)", m.secs, m.dgrams);
}

namespace {
crypto::ClusterKey test_key(uint8_t fill) {
  crypto::ClusterKey k;
  k.key.fill(fill);
  k.id = crypto::cluster_key_id(k.key);
  return k;
}
}  // namespace

TEST_CASE("sim: a sealed mesh of 5 nodes at 30% loss converges with every write") {
  Measured m;
  for (uint64_t seed : seeds(9100, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(5, seed, 0.30, 0.05);
    o.security = node::Security{{test_key(7)}, std::nullopt, {}};
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    Workload w;
    w.run(s, 100, 2 * kSec, 20);
    REQUIRE(m.until(s, [&] { return s.converged(); }, 60 * kSec));
    CHECK(w.check(s) == "");
    CHECK(s.stats().oversized == 0);
    for (size_t i = 0; i < s.size(); ++i) {
      const auto& c = s.node(i).counters();
      // Lost Hellos delay an introduction; nothing is ever forged or replayed.
      CHECK(c.auth_failed == 0);
      CHECK(c.unknown_key == 0);
    }
  }
  report("sealed, 5 nodes, 30% loss", m.secs, m.dgrams);
}

// ---- membership that forgets: reaping, forget, gone members ----------------

namespace {

// Whether every running node other than `name`'s own has no record of it.
bool nobody_lists(sim::Sim& s, const std::string& name) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!s.up(i) || "n" + std::to_string(i) == name) continue;
    if (!s.node(i).member_state(name).empty()) return false;
    const wire::Value peers = s.node(i).peers(s.now_of(i));
    for (const wire::Value& m : peers.get("members").as_list()) {
      if (m.get("name").as_string() == name) return false;
    }
  }
  return true;
}

bool all_see(sim::Sim& s, const std::vector<size_t>& observers, const std::vector<size_t>& members,
             const std::string& state) {
  for (size_t i : observers) {
    for (size_t j : members) {
      if (s.node(i).member_state("n" + std::to_string(j)) != state) return false;
    }
  }
  return true;
}

void report_times(const char* scenario, const std::vector<double>& secs) {
  double worst = 0, sum = 0;
  for (double x : secs) {
    worst = std::max(worst, x);
    sum += x;
  }
  MESSAGE(std::string(scenario) << ": " << secs.size() << " seeds, mean " << sum / static_cast<double>(secs.size())
                                << " s, worst " << worst << " s (simulated)");
}

struct LossOfThree {
  bool collected = false;      // within a minute after the deletes
  bool early = false;          // a tombstone was collected before any member was reaped
  double reap_to_collect_s = 0;  // from the first reap until both survivors collected
  double delete_to_collect_s = 0;
  std::string lost;  // a key that should be live and is not
  int64_t resyncs = 0;
};

// Five nodes; three crash for good; the two survivors delete 50 of 100 keys.
// With `reap_after_ms` the survivors reap the three and collect; n1 reaps
// `n1_later_ms` after n0 (their clocks and detection times differ).
LossOfThree lose_three(uint64_t seed, std::optional<uint64_t> reap_after_ms, uint64_t n1_later_ms) {
  sim::Options o = options(5, seed, 0.05, 0.02);
  o.config.tombstone_grace_ms = 4000;
  o.config.reap_after_ms = reap_after_ms;
  o.config_of = [&](size_t i, node::Config& c) {
    if (i == 1 && reap_after_ms) c.reap_after_ms = *reap_after_ms + n1_later_ms;
  };
  sim::Sim s(o);
  LossOfThree out;
  uint64_t first_reap_us = 0;
  size_t removed = 0;
  s.on_member = [&](size_t i, const node::MemberEvent& e) {
    if (e.kind != node::MemberEvent::Kind::kRemoved || i > 1) return;
    if (removed++ == 0) {  // the first reap, before it takes effect
      for (size_t n = 0; n < 2; ++n) out.early |= s.node(n).replica().map().tombstones() != 50;
      first_reap_us = s.now_us();
    }
  };
  REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
  for (size_t i = 0; i < 100; ++i) REQUIRE(s.set(i % 2, "k" + std::to_string(i), "v").ok());
  REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
  for (size_t n : {2, 3, 4}) s.crash(n);
  REQUIRE(s.run_until([&] { return all_see(s, {0, 1}, {2, 3, 4}, "dead"); }, 30 * kSec));
  const uint64_t deleted_at = s.now_us();
  for (size_t i = 0; i < 50; ++i) REQUIRE(s.del(i % 2, "k" + std::to_string(i)).ok());
  auto collected = [&] {
    for (size_t n = 0; n < 2; ++n) {
      const auto& map = s.node(n).replica().map();
      if (map.tombstones() != 0 || map.size() != 50) return false;
    }
    return s.converged();
  };
  out.collected = s.run_until(collected, 60 * kSec);
  if (out.collected) {
    out.delete_to_collect_s = static_cast<double>(s.now_us() - deleted_at) / kSec;
    out.reap_to_collect_s = static_cast<double>(s.now_us() - first_reap_us) / kSec;
  }
  if (!out.collected) CHECK(removed == 0);
  for (size_t n = 0; n < 2; ++n) out.resyncs += s.node(n).status(s.now_of(n)).get("gc").get("resyncs").as_int();
  if (out.collected) {
    CHECK(s.run_until([&] { return removed == 6; }, 5 * kSec));  // each survivor, each of the three
    for (size_t n = 0; n < 2; ++n) {
      CHECK(s.node(n).peers(s.now_of(n)).get("members").as_list().size() == 1);
      CHECK(s.node(n).status(s.now_of(n)).get("membership").get("removed").as_int() == 3);
    }
  }
  for (size_t n = 0; n < 2; ++n) {
    for (size_t i = 50; i < 100; ++i) {
      crdt::EntryPtr e = s.node(n).get("k" + std::to_string(i));
      if (e == nullptr || e->tombstone) out.lost = "n" + std::to_string(n) + " lost k" + std::to_string(i);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("sim: a mesh of five that loses three members for good collects tombstones again once they are reaped") {
  std::vector<double> after_reap, after_delete;
  for (uint64_t seed : seeds(9200, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    // Without reaping (the default, a day) the survivors are 2 of the 5
    // members they count: no majority, no collection, ever.
    const LossOfThree kept = lose_three(seed, std::nullopt, 0);
    CHECK_FALSE(kept.collected);
    CHECK(kept.lost == "");
    // Reaped after 10 s (the grace period is 4 s), by n1 a second after n0:
    // nothing is collected before, everything after. Neither survivor
    // starts over: both were in reach of each other all along, so neither
    // can have collected what the other lacks (a resync of one from the
    // other, half refilled, could lose data).
    const LossOfThree reaped = lose_three(seed, 10'000, 1000);
    CHECK(reaped.collected);
    CHECK_FALSE(reaped.early);
    CHECK(reaped.lost == "");
    CHECK(reaped.resyncs == 0);
    after_reap.push_back(reaped.reap_to_collect_s);
    after_delete.push_back(reaped.delete_to_collect_s);
  }
  report_times("5 nodes lose 3, grace 4 s, reap after 10 s: first reap to every tombstone collected", after_reap);
  report_times("5 nodes lose 3, grace 4 s, reap after 10 s: deletes to every tombstone collected", after_delete);
}

TEST_CASE("sim: two nodes cut off before they heard from every member they were told of collect nothing") {
  // Five nodes; n2 and n4 are cut off as soon as every node knows every
  // other, before each has heard from all of them directly. Counting only
  // the members they heard from, they took themselves for two of three and
  // collected their deletes on a minority's word (generated histories,
  // seeds 13314, 13389, 13873, brought writes older than an acknowledged
  // delete back). Now neither collects until the heal; then all do.
  size_t exercised = 0;
  for (uint64_t seed : seeds(9300, 8)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(5, seed, 0.0, 0.0);
    o.config.tombstone_grace_ms = 1000;
    sim::Sim s(o);
    // Checked every 100 us: a member told of is greeted at once (a ping),
    // so the partial view lasts about a round trip.
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec, 100));
    s.partition({2, 4});
    const auto mesh_size = [&](size_t n) { return s.node(n).status(s.now_of(n)).get("gc").get("mesh_size").as_int(); };
    if (mesh_size(2) < 5 || mesh_size(4) < 5) ++exercised;
    for (size_t i = 0; i < 6; ++i) REQUIRE(s.set(2, "k" + std::to_string(i), "v").ok());
    s.run_for(2 * kSec);
    for (size_t i = 0; i < 6; ++i) REQUIRE(s.del(i % 2 ? 2 : 4, "k" + std::to_string(i)).ok());
    s.run_for(10 * kSec);  // ten grace periods
    for (size_t n : {2, 4}) {
      INFO("node n" << n);
      const wire::Value gc = s.node(n).status(s.now_of(n)).get("gc");
      CHECK_FALSE(gc.get("quorum").as_bool());
      CHECK(gc.get("collected").as_int() == 0);
      CHECK(s.node(n).replica().map().tombstones() == 6);
    }
    s.heal();
    auto collected = [&] {
      for (size_t n = 0; n < 5; ++n) {
        if (s.node(n).replica().map().size() != 0) return false;
      }
      return true;
    };
    CHECK(s.run_until(collected, 60 * kSec));
    for (size_t n = 0; n < 5; ++n) CHECK(s.node(n).status(s.now_of(n)).get("gc").get("settled").as_bool());
  }
  MESSAGE("cut off with a partial view: " << exercised << " of 8 seeds");
  // Some seeds cut them off with a partial view (the case this is about).
  CHECK(exercised > 0);
}

TEST_CASE("sim: a reaped member that comes back is a member afresh") {
  std::vector<double> rejoin;
  for (uint64_t seed : seeds(9300, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(3, seed, 0.05, 0.02);
    o.config.tombstone_grace_ms = 2000;
    o.config.reap_after_ms = 4000;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));

    // Crashed, reaped, restarted as a new process: it joins and is added.
    s.crash(2);
    REQUIRE(s.run_until([&] { return nobody_lists(s, "n2"); }, 30 * kSec));
    s.restart(2);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    REQUIRE(s.set(2, "after-restart", "x").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));

    // The same process, cut off for longer than --reap-after: each side
    // reaps the other. Alone, it retries its seed; told that it was
    // declared dead, it refutes, and is added again on both sides.
    const uint64_t uid = s.node(2).uid();
    s.partition({2});
    REQUIRE(s.run_until([&] { return nobody_lists(s, "n2") && s.node(2).peers(s.now_of(2)).get("members").as_list().empty(); },
                        60 * kSec));
    s.heal();
    const uint64_t healed = s.now_us();
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    rejoin.push_back(static_cast<double>(s.now_us() - healed) / kSec);
    CHECK(s.node(2).uid() == uid);
    REQUIRE(s.set(0, "after-heal", "y").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
  }
  report_times("3 nodes, one cut off past --reap-after (4 s) then healed: heal to all alive everywhere", rejoin);
}

TEST_CASE("sim: forget removes a dead member on every node at once, and peers no longer shows it") {
  std::vector<double> spread;
  for (uint64_t seed : seeds(9400, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.10, 0.02));  // --reap-after: the default, a day
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    // n4 writes, and every node has its writes before it dies.
    const crdt::Origin n4 = s.node(4).replica().self();
    for (int i = 0; i < 5; ++i) REQUIRE(s.set(4, "from-n4-" + std::to_string(i), "v").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
    s.crash(4);
    REQUIRE(s.run_until([&] { return all_see(s, {0, 1, 2, 3}, {4}, "dead"); }, 30 * kSec));

    // Refused: an unknown name, this node, a live member.
    auto unknown = s.forget(0, "nobody");
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.status().code() == Code::kNotFound);
    auto self = s.forget(0, "n0");
    REQUIRE_FALSE(self.ok());
    CHECK(self.status().code() == Code::kInvalidArgument);
    auto alive = s.forget(0, "n1");
    REQUIRE_FALSE(alive.ok());
    CHECK(alive.status().code() == Code::kInvalidArgument);
    CHECK(alive.status().message().find("alive") != std::string::npos);
    CHECK(s.node(0).member_state("n1") == "alive");

    auto r = s.forget(0, "n4");
    REQUIRE(r.ok());
    CHECK(r->get("state").as_string() == "dead");
    CHECK(s.node(0).member_state("n4").empty());
    const uint64_t t0 = s.now_us();
    REQUIRE(s.run_until([&] { return nobody_lists(s, "n4"); }, 10 * kSec, 1000));
    spread.push_back(static_cast<double>(s.now_us() - t0) / kSec);
    // Its process ended: its origin is retired everywhere, its writes stay.
    auto retired_everywhere = [&] {
      for (size_t i = 0; i < 4; ++i) {
        if (s.node(i).replica().vv().get(n4) != 0 || s.node(i).replica().context().retired_at(n4) != 5) return false;
      }
      return true;
    };
    CHECK(s.run_until(retired_everywhere, 10 * kSec));
    for (size_t i = 0; i < 4; ++i) CHECK(s.node(i).get("from-n4-3") != nullptr);
    // And it stays gone while gossip goes on; a second forget says so.
    s.run_for(10 * kSec);
    CHECK(nobody_lists(s, "n4"));
    auto again = s.forget(1, "n4");
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().message().find("removed already") != std::string::npos);
    CHECK(s.membership_converged());
  }
  report_times("forget of a dead member (5 nodes, 10% loss): until no survivor lists it", spread);
}

TEST_CASE("sim: gossip that a reaped member is dead, or left, or a stale alive does not bring it back") {
  for (uint64_t seed : seeds(9500, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(4, seed, 0.0, 0.0);
    o.config.tombstone_grace_ms = 2000;
    o.config.reap_after_ms = 6000;
    // n3 keeps its dead members for a minute: it still gossips n2 as dead
    // after the others reaped it.
    o.config_of = [](size_t i, node::Config& c) {
      if (i == 3) c.reap_after_ms = 60'000;
    };
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    const uint64_t old_uid = s.node(2).uid();
    const uint64_t old_inc = s.node(2).status(s.now_of(2)).get("incarnation").as_int();
    const Endpoint old_addr = s.node(2).address();
    s.crash(2);
    REQUIRE(s.run_until([&] { return all_see(s, {0, 1, 3}, {2}, "dead"); }, 30 * kSec));
    REQUIRE(s.run_until([&] { return s.node(0).member_state("n2").empty() && s.node(1).member_state("n2").empty(); },
                        30 * kSec));
    CHECK(s.node(3).member_state("n2") == "dead");

    // n0 joins n3 by hand (meshkv join): n3 answers with its whole member
    // list, n2 dead included.
    s.join(0, 3);
    s.run_for(1 * kSec);
    CHECK(s.node(0).member_state("n2").empty());
    // The same, and worse, by hand: dead and left at a newer incarnation,
    // and the old process alive at the incarnation it was reaped at.
    for (auto st : {wire::MemberState::kDead, wire::MemberState::kLeft, wire::MemberState::kAlive}) {
      wire::Members m;
      m.updates.push_back({"n2", old_uid, old_addr, st == wire::MemberState::kAlive ? old_inc : old_inc + 5, st});
      s.inject(3, 0, m);
      s.inject(3, 1, m);
    }
    s.run_for(1 * kSec);
    CHECK(s.node(0).member_state("n2").empty());
    CHECK(s.node(1).member_state("n2").empty());
    CHECK(s.node(0).status(s.now_of(0)).get("membership").get("gone").as_int() == 1);

    // A new process of that name is a member again.
    s.restart(2);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
  }
}


TEST_CASE("sim: in a sealed mesh a forgotten member's identity is dropped; restarted, it proves itself and rejoins") {
  for (uint64_t seed : seeds(9600, 3)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(4, seed, 0.05, 0.0);
    o.security = node::Security{{test_key(9)}, std::nullopt, {}};
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    s.crash(3);
    REQUIRE(s.run_until([&] { return all_see(s, {0, 1, 2}, {3}, "dead"); }, 30 * kSec));
    REQUIRE(s.forget(1, "n3").ok());
    REQUIRE(s.run_until([&] { return nobody_lists(s, "n3"); }, 10 * kSec));
    s.restart(3);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    REQUIRE(s.set(3, "back", "sealed").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
    for (size_t i = 0; i < 4; ++i) CHECK(s.node(i).counters().auth_failed == 0);
  }
}

TEST_CASE("sim: a node whose clock runs an hour ahead writes until measured, then refuses until fixed") {
  sim::Options o;
  o.nodes = 3;
  o.seed = 14;
  sim::Sim s(o);
  std::vector<std::string> refusing_lines, back_lines;
  s.on_log = [&](size_t i, const node::LogLine& l) {
    if (i != 1 || l.level != node::LogLevel::kWarn) return;
    if (l.text.find("local writes are refused") != std::string::npos) refusing_lines.push_back(l.text);
    if (l.text.find("accepted again") != std::string::npos) back_lines.push_back(l.text);
  };
  s.step_clock(1, 3'600'000);
  auto guard = [&](size_t i) { return s.node(i).status(s.now_of(i)).get("clock").get("guard").as_string(); };
  // Not yet measured by anyone: it writes, and its write is merged everywhere.
  REQUIRE(s.set(1, "early", "from the future").ok());
  REQUIRE(s.run_until([&] { return s.membership_converged(); }, 10 * kSec));
  REQUIRE(s.run_until([&] { return guard(1) == "refusing"; }, 10 * kSec));
  INFO("refused after " << s.now_us() / 1000 << " ms");
  CHECK(s.now_us() < 5 * kSec);
  for (int i = 0; i < 3; ++i) {
    auto w = s.set(1, "k", "v");
    REQUIRE_FALSE(w.ok());
    CHECK(w.status().code() == Code::kUnavailable);
    CHECK(w.status().message().find("write refused: n1: this node's clock is 36000") == 0);
    CHECK(w.status().message().find("ahead of 2 of 2 peers (limit 500 ms)") != std::string::npos);
    auto d = s.del(1, "early");
    CHECK(d.status().code() == Code::kUnavailable);
  }
  CHECK(refusing_lines.size() == 1);  // once per change of state, not per write
  // The nodes that see it are not the ones that stop.
  CHECK(guard(0) == "ok");
  CHECK(guard(2) == "ok");
  REQUIRE(s.set(0, "k", "from n0").ok());
  REQUIRE(s.run_until([&] { return s.converged(); }, 10 * kSec));
  CHECK(s.node(2).get("early") != nullptr);
  CHECK(s.node(0).status(s.now_of(0)).get("clock").get("entries_ahead").as_int() > 0);
  CHECK(s.node(1).status(s.now_of(1)).get("clock").get("writes_refused").as_int() == 6);
  // Fixed: the next samples replace the estimate at once (a step, not noise).
  s.step_clock(1, -3'600'000);
  REQUIRE(s.run_until([&] { return guard(1) == "ok"; }, 10 * kSec));
  CHECK(back_lines.size() == 1);
  CHECK(s.set(1, "k", "from n1").ok());
}

TEST_CASE("sim: with fewer than two peers to judge by, a skewed node writes (and warns once)") {
  sim::Options o;
  o.nodes = 2;
  o.seed = 15;
  sim::Sim s(o);
  size_t unchecked = 0;
  s.on_log = [&](size_t i, const node::LogLine& l) {
    if (i == 1 && l.text.find("unchecked") != std::string::npos) ++unchecked;
  };
  s.step_clock(1, 3'600'000);
  REQUIRE(s.run_until([&] { return s.membership_converged(); }, 10 * kSec));
  s.run_for(5 * kSec);  // measured by then
  for (int i = 0; i < 5; ++i) CHECK(s.set(1, "k" + std::to_string(i), "v").ok());
  CHECK(unchecked == 1);
  CHECK(s.node(1).status(s.now_of(1)).get("clock").get("guard").as_string() == "unjudged");
  CHECK(s.node(1).status(s.now_of(1)).get("clock").get("judged_peers").as_int() == 1);
}

// Issue 15, item 4: on an unsealed mesh one forged Members datagram listed 50
// members that do not exist. Gossip spread them to every node; counted toward
// the majority, they took it away (3 of 53), and each was waited for, then
// excluded when reaped. A member counts only once it answers a probe of this
// node's directly (anti_entropy.cc, on_member).
TEST_CASE("sim: forged members do not count: tombstones are still collected, and no exclusion names them") {
  for (uint64_t seed : seeds(15000, 3)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(3, seed, 0.0, 0.0);
    o.config.tombstone_grace_ms = 2000;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    s.run_for(3 * kSec);  // every member probed, so counted, by every node
    for (size_t i = 0; i < 20; ++i) REQUIRE(s.set(i % 3, "k" + std::to_string(i), "v").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));

    // 50 alive members at addresses where nothing answers, in one datagram
    // that claims to come from n0, sent to n1.
    wire::Members forged;
    for (uint64_t i = 0; i < 50; ++i) {
      forged.updates.push_back({"f" + std::to_string(i), 777'000 + i, Endpoint::v4(10, 9, 0, static_cast<uint8_t>(i), 7000),
                                0, wire::MemberState::kAlive});
    }
    s.inject(0, 1, forged);
    REQUIRE(s.run_until([&] { return s.node(2).member_state("f49") != ""; }, 10 * kSec));  // gossip carried it on
    // A digest naming them as left out of a collection, "from" n0.
    wire::Digest d;
    d.reply = false;
    d.counter = true;
    d.origin_lo = d.origin_hi = 1;
    d.horizon = 0;
    for (int i = 0; i < 8; ++i) d.exclusions.emplace_back("f" + std::to_string(i), uint64_t{1} << 40);
    s.inject(0, 1, d);

    for (size_t i = 0; i < 20; ++i) REQUIRE(s.del(i % 3, "k" + std::to_string(i)).ok());
    auto collected = [&] {
      for (size_t n = 0; n < 3; ++n) {
        if (s.node(n).replica().map().tombstones() != 0 || s.node(n).replica().map().size() != 0) return false;
      }
      return true;
    };
    CHECK(s.run_until(collected, 20 * kSec));
    for (size_t n = 0; n < 3; ++n) {
      INFO("node n" << n);
      const wire::Value gc = s.node(n).status(s.now_of(n)).get("gc");
      CHECK(gc.get("quorum").as_bool());
      for (const auto& x : gc.get("excluded").as_list()) CHECK_MESSAGE(false, "excluded: " << x.as_string());
      CHECK(s.node(n).status(s.now_of(n)).get("membership").get("unverified").as_int() >= 50);
    }
    CHECK(s.node(1).status(s.now_of(1)).get("gc").get("exclusions_refused").as_int() >= 8);
  }
}

namespace {
// Every running node shows each key's last write: its value, or nothing
// for a delete (its tombstone, or collected).
std::string check_shown(sim::Sim& s, const Workload& w) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!s.up(i)) continue;
    for (const auto& [k, win] : w.winner) {
      crdt::EntryPtr e = s.node(i).get(k);
      if (win.entry.tombstone ? (e != nullptr && !e->tombstone) : (!e || !crdt::same_write(*e, win.entry))) {
        return "node n" + std::to_string(i) + " does not show the last write of " + k;
      }
    }
  }
  return {};
}
// The most rows any running node's vector has.
size_t max_rows(sim::Sim& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.up(i)) n = std::max(n, s.node(i).replica().vv().size());
  }
  return n;
}
}  // namespace

TEST_CASE("sim: nodes restarted many times under loss and partitions: vectors keep one row per live process, "
          "and every write and delete stands") {
  const uint64_t count = std::getenv("MESHKV_SIM_SEEDS") ? std::strtoull(std::getenv("MESHKV_SIM_SEEDS"), nullptr, 10) : 20;
  size_t worst_rows = 0, restarts = 0, collected = 0, retired = 0;
  std::vector<double> settle, converge;
  for (uint64_t seed : seeds(13000, count)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(5, seed, 0.15, 0.02);
    o.config.tombstone_grace_ms = 2000;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    Workload w;
    w.run(s, 40, 1 * kSec, 30);
    for (int r = 0; r < 8; ++r) {
      // A short partition of one or two nodes now and then (shorter than
      // the grace period: nobody is left out of a collection).
      const bool cut = s.rng()() % 3 == 0;
      if (cut) s.partition({s.rng()() % 5, s.rng()() % 5});
      const size_t victim = 1 + s.rng()() % 4;
      s.crash(victim);
      w.run(s, 10, kSec / 2, 30);
      s.restart_durable(victim);  // a new process, a new origin
      ++restarts;
      w.run(s, 20, 1 * kSec, 30);
      if (cut) s.heal();
      w.run(s, 10, kSec / 2, 30);
    }
    s.heal();
    // Converged, every process that ended retired everywhere: no vector
    // holds more rows than there are live processes.
    const uint64_t t0 = s.now_us();
    // First converged with every member alive (the rows may still lag), then the rows.
    const bool agreed = s.run_until([&] { return s.converged() && s.membership_converged(); }, 60 * kSec);
    if (agreed) converge.push_back(static_cast<double>(s.now_us() - t0) / kSec);
    const bool settled = agreed && s.run_until([&] { return s.converged() && s.membership_converged() && max_rows(s) <= 5; }, 60 * kSec);
    if (!settled) {
      std::string rows;
      for (size_t i = 0; i < s.size(); ++i) {
        rows += " n" + std::to_string(i) + ":" + std::to_string(s.node(i).replica().vv().size()) + "/" +
                std::to_string(s.node(i).replica().context().retired().size()) + "/" +
                std::to_string(s.node(i).replica().map().size());
      }
      MESSAGE("converged " << s.converged() << ", members " << s.membership_converged()
                           << ", rows/retired/entries:" << rows);
    }
    REQUIRE(settled);
    settle.push_back(static_cast<double>(s.now_us() - t0) / kSec);
    CHECK(check_shown(s, w) == "");
    // Deletes that won stay deleted, and tombstones are still collected.
    s.run_for(5 * kSec);
    CHECK(s.run_until([&] { return s.converged(); }, 30 * kSec));
    CHECK(check_shown(s, w) == "");
    for (size_t i = 0; i < s.size(); ++i) {
      worst_rows = std::max(worst_rows, s.node(i).replica().vv().size());
      collected += static_cast<size_t>(s.node(i).status(s.now_of(i)).get("gc").get("collected").as_int());
      retired += s.node(i).replica().context().retired().size();
    }
    CHECK(max_rows(s) <= 5);
  }
  MESSAGE("restarts: " << restarts << "; most rows on any node at the end: " << worst_rows
                       << "; origins retired (summed over nodes): " << retired << "; tombstones collected: " << collected);
  report_times("5 nodes, 8 restarts each run at 15% loss: heal to converged, every member alive", converge);
  report_times("5 nodes, 8 restarts each run at 15% loss: heal to that and one row per live process", settle);
}

// ---- tunable consistency (issue 17) ----------------------------------------------------

namespace {

wire::CtlRequest write_req(const std::string& key, const std::string& value, const std::string& wait,
                           int64_t timeout_ms) {
  wire::CtlRequest r = wire::make_request(wire::CtlOp::kSet);
  r.args.set("key", key);
  r.args.set("value", value);
  r.args.set("wait", wait);
  r.args.set("timeout_ms", timeout_ms);
  return r;
}

// Runs a request on node i and, if deferred, the simulation until its answer
// (at most `max_us`). nullopt if none came.
std::optional<wire::CtlResponse> answer(sim::Sim& s, size_t i, const wire::CtlRequest& req, uint64_t max_us) {
  uint64_t id = 0;
  wire::CtlResponse now = s.control(i, req, &id);
  if (id == 0) return now;
  std::optional<wire::CtlResponse> got;
  s.run_until([&] { return (got = s.reply(i, id)).has_value(); }, max_us, 1000);
  return got;
}

std::string names_of(const wire::Value& list) {
  std::string out;
  for (const auto& v : list.as_list()) out += (out.empty() ? "" : ",") + v.as_string();
  return out;
}

}  // namespace

TEST_CASE("sim: a write waiting for all returns under 30% loss once every member has it") {
  for (uint64_t seed : seeds(17000, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.30, 0.05));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    for (int w = 0; w < 5; ++w) {
      const size_t at = static_cast<size_t>(s.rng()() % s.size());
      const std::string key = "k" + std::to_string(w);
      // Checked the moment the answer leaves the engine, not later.
      std::string missing = "no answer";
      s.on_reply = [&](size_t i, const node::Reply& r) {
        if (i != at) return;
        missing.clear();
        for (size_t j = 0; j < s.size(); ++j) {
          crdt::EntryPtr e = s.node(j).get(key);
          if (e == nullptr || e->value != "v" + std::to_string(w)) missing += "n" + std::to_string(j) + " ";
        }
        if (r.resp.code != wire::kCtlOk) missing += "code " + std::to_string(r.resp.code) + ": " + r.resp.error;
      };
      auto r = answer(s, at, write_req(key, "v" + std::to_string(w), "all", 30'000), 40 * kSec);
      s.on_reply = nullptr;
      REQUIRE(r.has_value());
      CHECK(r->code == wire::kCtlOk);
      CHECK(missing == "");
      CHECK(names_of(r->body.get("wait").get("acked")).size() == std::string("n0,n1,n2,n3,n4").size());
    }
  }
}

TEST_CASE("sim: a cut-off member makes a wait for all time out, naming it; quorum holds on the majority side only") {
  for (uint64_t seed : seeds(17100, 8)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.02, 0.0));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    s.partition({4});
    auto all = answer(s, 0, write_req("a", "1", "all", 2000), 5 * kSec);
    REQUIRE(all.has_value());
    CHECK(all->code == wire::kCtlNotFound);
    CHECK(names_of(all->body.get("missing")) == "n4");
    CHECK(all->error.find("not acknowledged: n4") != std::string::npos);
    CHECK(s.node(1).get("a") != nullptr);  // the write stands
    auto q = answer(s, 0, write_req("b", "2", "quorum", 2000), 5 * kSec);
    REQUIRE(q.has_value());
    CHECK(q->code == wire::kCtlOk);
    // The cut-off node alone is 1 of 5: no quorum.
    auto lone = answer(s, 4, write_req("c", "3", "quorum", 2000), 5 * kSec);
    REQUIRE(lone.has_value());
    CHECK(lone->code == wire::kCtlNotFound);
    // A 2|3 split, long enough for each side to declare the other dead: the
    // dead still count toward the majority.
    s.heal();
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    s.partition({3, 4});
    s.run_for(8 * kSec);
    CHECK(s.node(3).member_state("n0") == "dead");
    auto minority = answer(s, 3, write_req("d", "4", "quorum", 2000), 5 * kSec);
    REQUIRE(minority.has_value());
    CHECK(minority->code == wire::kCtlNotFound);
    CHECK(names_of(minority->body.get("acked")) == "n3,n4");
    auto majority = answer(s, 1, write_req("e", "5", "quorum", 2000), 5 * kSec);
    REQUIRE(majority.has_value());
    CHECK(majority->code == wire::kCtlOk);
    // And a quorum read on the minority side cannot be answered.
    wire::CtlRequest rd = wire::make_request(wire::CtlOp::kGet);
    rd.args.set("key", "e");
    rd.args.set("read", "quorum");
    rd.args.set("timeout_ms", int64_t{1000});
    auto read = answer(s, 4, rd, 3 * kSec);
    REQUIRE(read.has_value());
    CHECK(read->code == wire::kCtlUnavailable);
  }
}

TEST_CASE("sim: a quorum read after a quorum write returns that write or a later one, and repairs") {
  for (uint64_t seed : seeds(17200, 10)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(5, seed, 0.10, 0.02);
    o.config.anti_entropy_interval_ms = 600'000;  // only pushes and read repair move data
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    for (int round = 0; round < 12; ++round) {
      INFO("round " << round);
      // A different minority (up to two nodes) is cut off for the write and
      // for the read: the two majorities share at least one member.
      auto minority = [&] {
        std::set<size_t> side;
        const size_t k = s.rng()() % 3;
        while (side.size() < k) side.insert(static_cast<size_t>(s.rng()() % s.size()));
        return side;
      };
      auto outside = [&](const std::set<size_t>& side) {
        size_t n = static_cast<size_t>(s.rng()() % s.size());
        while (side.count(n)) n = (n + 1) % s.size();
        return n;
      };
      const std::string key = "k" + std::to_string(round % 3);
      const std::string value = "v" + std::to_string(round);
      auto ws = minority();
      s.partition(ws);
      const size_t writer = outside(ws);
      auto w = answer(s, writer, write_req(key, value, "quorum", 10'000), 15 * kSec);
      REQUIRE(w.has_value());
      INFO(w->error);
      INFO("writer n" << writer << " cut off: " << ws.size() << " " << (ws.empty() ? 9 : *ws.begin()) << " "
                      << (ws.size() > 1 ? *ws.rbegin() : 9) << " states " << s.node(writer).member_state("n0")
                      << s.node(writer).member_state("n1") << s.node(writer).member_state("n2")
                      << s.node(writer).member_state("n3") << s.node(writer).member_state("n4") << " pending "
                      << s.node(writer).pending_pushes());
      REQUIRE(w->code == wire::kCtlOk);
      auto rs = minority();
      s.heal();
      s.partition(rs);
      wire::CtlRequest rd = wire::make_request(wire::CtlOp::kGet);
      rd.args.set("key", key);
      rd.args.set("read", "quorum");
      rd.args.set("timeout_ms", int64_t{10'000});
      const size_t reader = outside(rs);
      auto r = answer(s, reader, rd, 15 * kSec);
      s.heal();
      REQUIRE(r.has_value());
      REQUIRE(r->code == wire::kCtlOk);
      // No concurrent writer: "that write or a later one" is that write.
      CHECK(r->body.get("value").as_string() == value);
      CHECK(r->body.get("hlc") == w->body.get("hlc"));
      // The reader holds it now, repaired if it was behind.
      REQUIRE(s.node(reader).get(key) != nullptr);
      CHECK(s.node(reader).get(key)->value == value);
    }
  }
}

TEST_CASE("sim: staleness grows while no digest comes, and get --max-staleness refuses past the bound") {
  for (uint64_t seed : seeds(17300, 4)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(5, seed, 0.0, 0.0);
    sim::Sim healthy(o);
    REQUIRE(healthy.run_until([&] { return healthy.membership_converged(); }, 30 * kSec));
    healthy.run_for(30 * kSec);
    // A digest every second from each member, to one random member: a node
    // learns each peer's state every few seconds (4 peers here), so the
    // figure stays well below the 30 s run on most nodes. (On one node of
    // seed 17300 it stayed at 29 s: an overestimate, which errs on the safe
    // side for --max-staleness, not explained yet.)
    std::vector<uint64_t> figures;
    for (size_t i = 0; i < healthy.size(); ++i) {
      const auto st = healthy.node(i).staleness_ms(healthy.now_of(i));
      REQUIRE(st.has_value());
      figures.push_back(*st);
    }
    std::sort(figures.begin(), figures.end());
    CHECK(figures[figures.size() / 2] < 20'000);
    o.config.anti_entropy_interval_ms = 600'000;  // digests only when members appear
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    REQUIRE(s.set(1, "k", "v").ok());
    s.run_for(20 * kSec);
    const auto st = s.node(0).staleness_ms(s.now_of(0));
    REQUIRE(st.has_value());
    CHECK(*st >= 15'000);
    wire::CtlRequest get = wire::make_request(wire::CtlOp::kGet);
    get.args.set("key", "k");
    get.args.set("max_staleness_ms", int64_t{10'000});
    const wire::CtlResponse refused = s.control(0, get);
    CHECK(refused.code == wire::kCtlNotFound);
    CHECK(refused.body.get("stale").as_bool());
    CHECK(refused.error.find("(bound 10000 ms)") != std::string::npos);
    get.args.set("max_staleness_ms", int64_t{100'000});
    const wire::CtlResponse served = s.control(0, get);
    CHECK(served.code == wire::kCtlOk);
    CHECK(served.body.get("value").as_string() == "v");
    CHECK(served.body.get("staleness_ms").as_int() >= 15'000);
  }
}

TEST_CASE("sim: counters incremented on every node under 30% loss and a partition sum exactly after the heal") {
  for (uint64_t seed : seeds(18000, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(5, seed, 0.30, 0.10));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    std::map<std::string, int64_t> want;
    auto incr = [&](size_t n, const std::string& key, int64_t by) {
      wire::CtlRequest req = wire::make_request(wire::CtlOp::kIncr);
      req.args.set("key", key);
      req.args.set("by", by);
      const wire::CtlResponse r = s.control(n, req);
      REQUIRE(r.code == wire::kCtlOk);
      want[key] += by;
    };
    auto round = [&](size_t count) {
      for (size_t i = 0; i < count; ++i) {
        s.run_for(20'000);
        size_t n = s.rng()() % s.size();
        while (!s.up(n)) n = (n + 1) % s.size();
        const int64_t by = static_cast<int64_t>(s.rng()() % 7) - 2;
        incr(n, "c" + std::to_string(s.rng()() % 3), by == 0 ? 1 : by);
      }
    };
    round(100);
    s.partition({3, 4});
    round(200);  // both sides count meanwhile, each its own parts
    s.heal();
    round(50);
    // A node restarted from its data directory keeps counting where it was.
    s.crash(2);
    round(20);
    s.restart_durable(2);
    round(20);
    REQUIRE(s.run_until([&] { return s.converged(); }, 120 * kSec));
    for (size_t i = 0; i < s.size(); ++i) {
      for (const auto& [key, total] : want) {
        auto c = s.node(i).counter(key);
        REQUIRE(c.has_value());
        CHECK_MESSAGE(c->value == total, "n" << i << " reads " << key << " = " << c->value << ", want " << total);
      }
    }
  }
}

TEST_CASE("sim: a node that resyncs after a long partition keeps counting from its own totals") {
  // Resyncing (node/gc.cc) drops every entry the peer covers and takes them
  // back from it; a node's own counter parts must not be among them, or an
  // increment made before they come back starts its totals from zero and,
  // being newer, replaces everything the node had counted.
  for (uint64_t seed : seeds(18100, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(3, seed, 0.05, 0.02);
    o.config.tombstone_grace_ms = 4000;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    auto incr = [&](size_t n, int64_t by) {
      wire::CtlRequest req = wire::make_request(wire::CtlOp::kIncr);
      req.args.set("key", "hits");
      req.args.set("by", by);
      REQUIRE(s.control(n, req).code == wire::kCtlOk);
    };
    incr(2, 10);
    incr(0, 100);
    for (size_t i = 0; i < 20; ++i) REQUIRE(s.set(i % 3, "k" + std::to_string(i), "v").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
    s.partition({2});
    s.run_for(6 * kSec);
    for (size_t i = 0; i < 20; ++i) REQUIRE(s.del(i % 2, "k" + std::to_string(i)).ok());
    REQUIRE(s.run_until([&] { return s.node(0).replica().map().tombstones() == 0; }, 30 * kSec));
    s.heal();
    auto resyncs = [&] { return s.node(2).status(s.now_of(2)).get("gc").get("resyncs").as_int(); };
    REQUIRE(s.run_until([&] { return resyncs() == 1; }, 60 * kSec, 1000));
    incr(2, 1);  // at once, before the peer sent anything back
    REQUIRE(s.run_until([&] { return s.converged() && s.membership_converged(); }, 60 * kSec));
    for (size_t n = 0; n < 3; ++n) {
      auto c = s.node(n).counter("hits");
      REQUIRE(c.has_value());
      CHECK_MESSAGE(c->value == 111, "n" << n << " reads hits = " << c->value);
    }
  }
}

namespace {
// sadd or srem of `members` through node n's control port.
wire::CtlResponse set_op(sim::Sim& s, size_t n, wire::CtlOp op, const std::string& key,
                         const std::vector<std::string>& members) {
  wire::CtlRequest req = wire::make_request(op);
  req.args.set("key", key);
  wire::Value ms = wire::Value::list();
  for (const auto& m : members) ms.push(m);
  req.args.set("members", std::move(ms));
  return s.control(n, req);
}
std::vector<std::string> members_on(sim::Sim& s, size_t n, const std::string& key) {
  auto v = s.node(n).orset(key);
  return v ? v->present_members() : std::vector<std::string>{};
}
}  // namespace

TEST_CASE("sim: concurrent sadd/srem from 3 nodes across a partition end in the add-wins result") {
  using wire::CtlOp;
  for (uint64_t seed : seeds(18200, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Sim s(options(3, seed, 0.20, 0.10));
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    auto add = [&](size_t n, const std::string& m) { REQUIRE(set_op(s, n, CtlOp::kSadd, "f", {m}).code == wire::kCtlOk); };
    auto rem = [&](size_t n, const std::string& m) { REQUIRE(set_op(s, n, CtlOp::kSrem, "f", {m}).code == wire::kCtlOk); };
    auto holds = [&](size_t n, const std::string& m) {
      return s.run_until([&] { return s.node(n).sismember("f", m); }, 30 * kSec);
    };
    REQUIRE(set_op(s, 0, CtlOp::kSadd, "f", {"apple", "banana", "cherry", "date"}).code == wire::kCtlOk);
    REQUIRE(s.run_until([&] { return s.converged(); }, 60 * kSec));
    s.partition({2});  // {0, 1} | {2}
    rem(0, "apple");
    add(2, "apple");   // re-added concurrently: stays
    rem(1, "banana");
    rem(2, "banana");  // removed on both sides: goes
    rem(2, "cherry");  // removed on one side: goes
    rem(1, "date");
    add(1, "date");    // removed and re-added on one side: stays
    add(0, "elder");   // added on one side only: stays
    add(1, "fig");
    add(2, "fig");
    REQUIRE(holds(0, "fig"));
    rem(0, "fig");     // saw only node 1's add: node 2's stays
    add(1, "kiwi");
    add(2, "kiwi");
    REQUIRE(holds(0, "kiwi"));
    rem(0, "kiwi");
    rem(2, "kiwi");    // two removes that together saw both adds: goes
    s.run_for(5 * kSec);
    CHECK(members_on(s, 2, "f") == std::vector<std::string>{"apple", "date", "fig"});
    s.heal();
    REQUIRE(s.run_until([&] { return s.converged(); }, 120 * kSec));
    for (size_t n = 0; n < s.size(); ++n) {
      CHECK_MESSAGE(members_on(s, n, "f") == std::vector<std::string>({"apple", "date", "elder", "fig"}), "node " << n);
    }
  }
}

TEST_CASE("sim: a node that resyncs after a long partition adds from its own counts") {
  // As for counters: resyncing must keep the node's own add entries, or an
  // sadd made before the peer sends them back counts from one again and,
  // being newer, replaces the larger count a remove has already seen: the
  // fresh add would read as removed.
  using wire::CtlOp;
  for (uint64_t seed : seeds(18300, 5)) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o = options(3, seed, 0.05, 0.02);
    o.config.tombstone_grace_ms = 4000;
    sim::Sim s(o);
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    REQUIRE(set_op(s, 2, CtlOp::kSadd, "team", {"x"}).code == wire::kCtlOk);
    REQUIRE(s.run_until([&] { return s.node(0).sismember("team", "x"); }, 30 * kSec));
    REQUIRE(set_op(s, 0, CtlOp::kSrem, "team", {"x"}).code == wire::kCtlOk);
    for (size_t i = 0; i < 20; ++i) REQUIRE(s.set(i % 3, "k" + std::to_string(i), "v").ok());
    REQUIRE(s.run_until([&] { return s.converged(); }, 30 * kSec));
    CHECK_FALSE(s.node(2).sismember("team", "x"));
    s.partition({2});
    s.run_for(6 * kSec);
    for (size_t i = 0; i < 20; ++i) REQUIRE(s.del(i % 2, "k" + std::to_string(i)).ok());
    REQUIRE(s.run_until([&] { return s.node(0).replica().map().tombstones() == 0; }, 30 * kSec));
    s.heal();
    auto resyncs = [&] { return s.node(2).status(s.now_of(2)).get("gc").get("resyncs").as_int(); };
    REQUIRE(s.run_until([&] { return resyncs() == 1; }, 60 * kSec, 1000));
    REQUIRE(set_op(s, 2, CtlOp::kSadd, "team", {"x"}).code == wire::kCtlOk);  // before anything came back
    REQUIRE(s.run_until([&] { return s.converged() && s.membership_converged(); }, 60 * kSec));
    for (size_t n = 0; n < 3; ++n) CHECK_MESSAGE(s.node(n).sismember("team", "x"), "node " << n);
  }
}
