// Protocol behaviour in the deterministic simulator, each scenario over many
// seeds. A failure names its seed; MESHKV_SIM_SEED=<seed> replays one.
#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "sim/sim.h"

using namespace meshkv;

namespace {

constexpr uint64_t kSec = 1'000'000;

std::vector<uint64_t> seeds(uint64_t base, uint64_t count) {
  if (const char* s = std::getenv("MESHKV_SIM_SEED")) return {std::strtoull(s, nullptr, 10)};
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < count; ++i) out.push_back(base + i);
  return out;
}

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
        const crdt::Entry* e = s.node(i).get(k);
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
        const crdt::Entry* e = s.node(n).get("k" + std::to_string(i));
        CHECK_MESSAGE((e == nullptr || e->tombstone), "deleted key k" << i << " came back");
      }
      const crdt::Entry* fresh = s.node(n).get("fresh");
      CHECK((fresh != nullptr && !fresh->tombstone));  // the cut-off side's own write survives
      const crdt::Entry* kept = s.node(n).get("k190");
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
