// Tombstone collection against a reference model, in the deterministic
// simulator: generated histories of writes and deletes interleaved with
// partitions of any length, paused processes (SIGSTOP), crashes with restarts
// from the data directory, and clock steps forward and back, with a grace
// period short enough that collection happens many times in a history.
//
// What must hold (the rule is argued in crdt/replica.h and node/gc.cc):
//   - no resurrection: a node never shows a value older than an entry it
//     already showed for the key (tombstones included), and once every node
//     is back and the mesh is quiet, no key shows a value older than any
//     acknowledged delete of it;
//   - no silent loss: the last acknowledged write of each key (by
//     last-writer-wins over every acknowledged operation) is the key's value
//     everywhere, or, if it could not be ordered against what was collected,
//     it is in some node's quarantine;
//   - convergence: every node ends with the same entries and vector.
// A failure names its seed; MESHKV_SIM_SEED=<seed> replays one.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sim/sim.h"
#include "sim_seeds.h"

using namespace meshkv;
using testing::kSec;
using testing::seeds;

namespace {

constexpr uint64_t kMsUs = 1000;

bool below(const crdt::EntryView& a, const crdt::EntryView& b) { return crdt::wins(b, a); }

std::string show(const crdt::EntryView& e) {
  std::ostringstream o;
  o << (e.tombstone ? std::string("<deleted>") : "'" + std::string(e.value) + "'") << " (hlc " << e.hlc.physical() << "."
    << e.hlc.logical() << ", origin " << (e.dot.origin % 100000) << ")";
  return o.str();
}

struct History {
  sim::Sim& s;
  std::mt19937_64& rng;
  size_t keys;
  // Every acknowledged operation, by key.
  std::map<std::string, std::vector<crdt::Entry>> acked;
  // Per node, per key: the newest entry it has shown (while its state lasts).
  std::vector<std::map<std::string, crdt::Entry>> floor;
  std::vector<bool> paused, crashed;
  std::set<size_t> side;  // partitioned away, or empty
  std::string violation;
  uint64_t steps = 0, collections = 0, pauses = 0, restarts = 0, clock_steps = 0, partitions = 0;

  History(sim::Sim& sim, size_t k)
      : s(sim), rng(sim.rng()), keys(k), floor(sim.size()), paused(sim.size()), crashed(sim.size()) {}

  bool usable(size_t n) const { return s.up(n) && !paused[n] && !crashed[n]; }
  void note(const std::string& what) const {
    if (std::getenv("MESHKV_SIM_LOG")) {
      std::fprintf(stderr, "%llu ms: %s\n", static_cast<unsigned long long>(s.now_us() / 1000), what.c_str());
    }
  }

  void write() {
    size_t n = rng() % s.size();
    for (size_t i = 0; i < s.size() && !usable(n); ++i) n = (n + 1) % s.size();
    if (!usable(n)) return;
    const std::string key = "k" + std::to_string(rng() % keys);
    auto r = rng() % 3 == 0 ? s.del(n, key) : s.set(n, key, "v" + std::to_string(steps) + "@n" + std::to_string(n));
    REQUIRE(r.ok());
    note("n" + std::to_string(n) + " " + key + " := " + show(r->entry) + "#" + std::to_string(r->entry.dot.seq));
    acked[key].push_back(r->entry);
  }

  // Samples what every running node shows: never older than before.
  void sample() {
    for (size_t n = 0; n < s.size() && violation.empty(); ++n) {
      if (!usable(n)) continue;
      for (size_t k = 0; k < keys; ++k) {
        const std::string key = "k" + std::to_string(k);
        crdt::EntryPtr e = s.node(n).get(key);
        if (e == nullptr) continue;
        auto f = floor[n].find(key);
        if (f != floor[n].end() && below(*e, f->second) && !e->tombstone) {
          violation = "n" + std::to_string(n) + " showed " + show(*e) + " for " + key + " after " + show(f->second);
          return;
        }
        if (f == floor[n].end() || below(f->second, *e)) floor[n][key] = e->to_entry();
      }
    }
  }

  void step() {
    ++steps;
    const uint64_t r = rng() % 100;
    if (r < 55) {
      write();
    } else if (r < 63) {
      if (side.empty()) {
        // A minority: one node, or two of five.
        side.insert(rng() % s.size());
        if (s.size() >= 5 && rng() % 2) side.insert(rng() % s.size());
        s.partition(side);
        ++partitions;
        std::string names;
        for (size_t x : side) names += " n" + std::to_string(x);
        note("partition:" + names);
      } else {
        side.clear();
        s.heal();
        note("heal");
      }
    } else if (r < 70) {
      const size_t n = rng() % s.size();
      if (crashed[n]) return;
      if (paused[n]) {
        s.resume(n);
        paused[n] = false;
        note("resume n" + std::to_string(n));
      } else {
        s.pause(n);
        paused[n] = true;
        ++pauses;
        note("pause n" + std::to_string(n));
      }
    } else if (r < 75) {
      const size_t n = rng() % s.size();
      if (paused[n]) return;
      if (crashed[n]) {
        s.restart_durable(n);
        crashed[n] = false;
        ++restarts;
        note("restart n" + std::to_string(n) + " as " + std::to_string(s.node(n).uid() % 100000));
      } else {
        s.crash(n);
        crashed[n] = true;
        note("crash n" + std::to_string(n));
      }
    } else if (r < 80) {
      const size_t n = rng() % s.size();
      const int64_t delta = static_cast<int64_t>(rng() % 40'001) - 20'000;
      s.step_clock(n, delta);
      ++clock_steps;
      note("clock of n" + std::to_string(n) + " stepped by " + std::to_string(delta) + " ms");
    }
  }

  void run(size_t count) {
    for (size_t i = 0; i < count && violation.empty(); ++i) {
      step();
      // 50 ms to 3 s between steps: some partitions and pauses outlast the
      // grace period, most do not.
      const uint64_t gap = 50 * kMsUs + rng() % (3 * kSec);
      for (uint64_t t = 0; t < gap && violation.empty(); t += 100 * kMsUs) {
        s.run_for(std::min<uint64_t>(100 * kMsUs, gap - t));
        sample();
      }
    }
  }

  void heal_all() {
    side.clear();
    s.heal();
    for (size_t n = 0; n < s.size(); ++n) {
      if (paused[n]) s.resume(n);
      paused[n] = false;
      if (crashed[n]) {
        s.restart_durable(n);
        ++restarts;
      }
      crashed[n] = false;
    }
  }

  // Every running node shows the same value for every key.
  bool visible_agree() {
    for (size_t k = 0; k < keys; ++k) {
      const std::string key = "k" + std::to_string(k);
      crdt::EntryPtr first = nullptr;
      bool have_first = false;
      for (size_t n = 0; n < s.size(); ++n) {
        if (!s.up(n)) continue;
        crdt::EntryPtr e = s.node(n).get(key);
        if (e != nullptr && e->tombstone) e = nullptr;
        if (!have_first) {
          first = e;
          have_first = true;
        } else if ((first == nullptr) != (e == nullptr) || (e && !crdt::same_write(*e, *first))) {
          return false;
        }
      }
    }
    return true;
  }

  // What each node holds, for a failure message.
  std::string dump() {
    std::ostringstream o;
    for (size_t n = 0; n < s.size(); ++n) {
      o << "n" << n << (s.up(n) ? "" : " (down)") << ": vv";
      for (const auto& [org, seq] : s.node(n).replica().vv().items()) o << " " << org % 100000 << ":" << seq;
      o << "; gc " << s.node(n).status(s.now_of(n)).get("gc").to_json() << "\n   ";
      for (size_t k = 0; k < keys; ++k) {
        const std::string key = "k" + std::to_string(k);
        if (crdt::EntryPtr e = s.node(n).get(key)) o << " " << key << "=" << show(*e) << "#" << e->dot.seq;
      }
      o << "\n";
    }
    return o.str();
  }

  // The model's verdict on the quiet, converged mesh.
  std::string check_final() {
    for (const auto& [key, ops] : acked) {
      crdt::Entry last = ops.front();
      for (const auto& e : ops) {
        if (crdt::wins(e, last)) last = e;
      }
      bool in_quarantine = false;
      for (size_t n = 0; n < s.size(); ++n) {
        const auto& q = s.node(n).replica().quarantine();
        if (auto it = q.find(key); it != q.end()) {
          for (const auto& x : it->second) in_quarantine |= crdt::same_write(x, last);
        }
      }
      for (size_t n = 0; n < s.size(); ++n) {
        crdt::EntryPtr e = s.node(n).get(key);
        const bool shows = e != nullptr && !e->tombstone;
        if (shows) {
          for (const auto& d : ops) {
            if (d.tombstone && below(*e, d)) {
              return "n" + std::to_string(n) + " shows " + show(*e) + " for " + key +
                     ", older than the acknowledged delete " + show(d);
            }
          }
        }
        if (last.tombstone) {
          if (shows) return "n" + std::to_string(n) + " shows " + show(*e) + " for deleted " + key;
        } else if (!(shows && crdt::same_write(*e, last)) && !in_quarantine) {
          return "the last write of " + key + ", " + show(last) + ", is lost: n" + std::to_string(n) +
                 " shows " + (e ? show(*e) : "nothing") + " and no node has it in quarantine";
        }
      }
    }
    return {};
  }
};

}  // namespace

TEST_CASE("sim: generated histories with collection, partitions, pauses, restarts and clock steps "
          "keep deletes deleted and lose no write") {
  uint64_t histories = 0, steps = 0, collected = 0, quarantined = 0, pauses = 0, restarts = 0, partitions = 0,
           clock_steps = 0, resyncs = 0;
  std::vector<uint64_t> run = seeds(13000, 24);
  // Seeds that once failed, beyond the first ones:
  //   16957: two members that left each other out each waited, for ever,
  //          for the other to finish starting over.
  //   14150: a writer's own write, quarantined when it reconciled, was
  //          ordered by the others; nothing sent it back (its dot covered).
  //   15427: an origin retired below a write of it waiting in quarantine.
  //   15773: a member that had to reconcile passed on a stale write marked
  //          vouched, older than a delete collected without it: shown again.
  //   13916: a restarted node took a resumed member's stale write before it
  //          knew who that member was: shown again.
  //   25482: a push sent before its writer reconciled arrived after: shown
  //          again.
  //   19776: a member left out at a horizon it had already reconciled to
  //          (the delete collected was older) counted as reconciled.
  //   18006: two members each followed the other's notice while starting
  //          over, and waited for each other for ever.
  //   23718: two members started over from each other at once, each
  //          dropping the last write of a key for the other to send back.
  //   27111: a node that had not heard from a member directly took its
  //          stale writes as it came back: shown again.
  //   26889: a node starting over dropped its own delete, and showed an
  //          older value a lagging member sent before the delete came back.
  if (!std::getenv("MESHKV_SIM_SEED")) {
    for (uint64_t extra : {16957, 14150, 15427, 15773, 13916, 25482, 19776, 18006, 23718, 27111, 26889}) {
      run.push_back(extra);
    }
  }
  for (uint64_t seed : run) {
    INFO("seed " << seed << " (replay: MESHKV_SIM_SEED=" << seed << ")");
    sim::Options o;
    o.nodes = seed % 2 ? 5 : 3;
    o.seed = seed;
    o.faults.drop = 0.03;
    o.faults.dup = 0.02;
    o.max_clock_skew_ms = 50;
    o.config.tombstone_grace_ms = 2000;
    // Writes through nodes whose clocks were stepped by up to 20 s are the
    // point here; the clock-offset guard would refuse them.
    o.config.max_clock_offset_ms = 0;
    sim::Sim s(o);
    if (std::getenv("MESHKV_SIM_LOG")) {  // replaying one seed: every node's log
      s.on_log = [&](size_t n, const node::LogLine& l) {
        if (l.level >= node::LogLevel::kDebug) {
          std::fprintf(stderr, "%llu ms n%zu: %s\n", static_cast<unsigned long long>(s.now_us() / 1000), n,
                       l.text.c_str());
        }
      };
    }
    REQUIRE(s.run_until([&] { return s.membership_converged(); }, 30 * kSec));
    History h(s, 8);
    h.run(120);
    CHECK_MESSAGE(h.violation.empty(), h.violation);
    h.heal_all();
    const bool quiet = s.run_until([&] { return s.converged() && s.membership_converged(); }, 120 * kSec);
    // Not converged: the model's verdict too, so that a resurrection is not
    // reported as a mere failure to converge.
    CHECK_MESSAGE(quiet, "no convergence 120 s after the heal; the model says: "
                             << (quiet ? std::string() : h.check_final()) << "\n"
                             << h.dump());
    if (quiet) {
      // A few more rounds (collection goes on, node by node) must change
      // nothing the model cares about.
      s.run_for(3 * kSec);
      // (Tombstones may wait longer on a node whose clock was stepped back:
      // a delete from its future is kept until its clock catches up.)
      const bool still = s.run_until([&] { return h.visible_agree(); }, 30 * kSec);
      CHECK_MESSAGE(still, "diverged again after convergence\n" << h.dump());
      const std::string verdict = h.check_final();
      CHECK_MESSAGE(verdict.empty(), verdict);
    }
    ++histories;
    steps += h.steps;
    pauses += h.pauses;
    restarts += h.restarts;
    partitions += h.partitions;
    clock_steps += h.clock_steps;
    for (size_t n = 0; n < s.size(); ++n) {
      const auto gc = s.node(n).status(s.now_of(n)).get("gc");
      collected += static_cast<uint64_t>(gc.get("collected").as_int());
      resyncs += static_cast<uint64_t>(gc.get("resyncs").as_int());
      quarantined += s.node(n).replica().quarantined();
    }
  }
  MESSAGE("histories: " << histories << ", steps: " << steps << ", tombstones collected: " << collected
                        << ", partitions: " << partitions << ", pauses: " << pauses << ", restarts: " << restarts
                        << ", clock steps: " << clock_steps << ", reconciliations: " << resyncs
                        << ", entries in quarantine at the end: " << quarantined);
  CHECK(collected > 0);
}
