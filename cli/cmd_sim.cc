// meshkv sim: the deterministic simulator as a training tool. Runs N engines
// over a simulated network with loss, duplication, delay and an optional
// partition, spreads writes over random nodes, then reports when and at what
// cost the mesh converged and whether any write was lost. Same seed, same
// output.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.h"
#include "sim/sim.h"

namespace meshkv::cli {

namespace {
struct SimOptions {
  size_t nodes = 5;
  double loss = 0.1, dup = 0.01;
  uint64_t delay_ms = 1, jitter_ms = 2;
  std::string partition;  // node indices, "3,4"
  double partition_at = -1, heal_at = -1;
  size_t writes = 200;
  uint64_t seed = 1;
  double duration = 60;
  bool json = false, quiet = false;
};

constexpr uint64_t kSec = 1'000'000;

std::string stamp(uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%8.3fs", static_cast<double>(us) / kSec);
  return buf;
}

int run_sim(const SimOptions& o) {
  std::set<size_t> side;
  std::stringstream ss(o.partition);
  for (std::string part; std::getline(ss, part, ',');) {
    if (part.empty()) continue;
    char* end = nullptr;
    const unsigned long i = std::strtoul(part.c_str(), &end, 10);
    if (*end != '\0' || i >= o.nodes) {
      std::cerr << "--partition: node indices 0.." << o.nodes - 1 << ", got '" << part << "'\n";
      return kExitUsage;
    }
    side.insert(i);
  }
  if (!side.empty() && (o.partition_at < 0 || o.heal_at <= o.partition_at)) {
    std::cerr << "--partition needs --partition-at S and a later --heal-at S\n";
    return kExitUsage;
  }
  sim::Options so;
  so.nodes = o.nodes;
  so.seed = o.seed;
  so.faults = {o.loss, o.dup, o.delay_ms * 1000, o.jitter_ms * 1000};
  sim::Sim s(so);
  const uint64_t t0 = s.now_us();
  auto rel = [&] { return s.now_us() - t0; };
  std::vector<std::string> timeline;
  auto event = [&](const std::string& what) {
    timeline.push_back(stamp(rel()) + "  " + what);
    if (!o.quiet && !o.json) std::cout << timeline.back() << "\n";
  };
  s.on_member = [&](size_t i, const node::MemberEvent& e) {
    if (e.notable()) event("n" + std::to_string(i) + ": " + node::describe(e));
  };
  // Writes spread evenly over the first two seconds, or until the heal.
  const uint64_t span = static_cast<uint64_t>(std::max(2.0, o.heal_at) * kSec);
  std::map<std::string, crdt::KeyedEntry> winner;
  size_t written = 0;
  bool cut = false, healed = side.empty();
  uint64_t last_change = 0;
  for (size_t w = 0; w <= o.writes; ++w) {
    const uint64_t due = o.writes ? span * w / o.writes : span;
    while (rel() < due) {
      const uint64_t step = std::min<uint64_t>(due - rel(), 10'000);
      s.run_for(step);
      if (!side.empty() && !cut && rel() >= static_cast<uint64_t>(o.partition_at * kSec)) {
        s.partition(side);
        cut = true;
        event("partition: {" + o.partition + "} cut off from the rest");
      }
      if (cut && !healed && rel() >= static_cast<uint64_t>(o.heal_at * kSec)) {
        s.heal();
        healed = true;
        last_change = rel();
        event("partition healed");
      }
    }
    if (w == o.writes) break;
    const size_t n = s.rng()() % o.nodes;
    const std::string key = "k" + std::to_string(s.rng()() % 50);
    auto r = s.set(n, key, "v" + std::to_string(w));
    if (!r.ok()) continue;
    ++written;
    auto& cur = winner[key];
    if (cur.key.empty() || crdt::wins(r->entry, cur.entry)) cur = *r;
    last_change = std::max(last_change, rel());
  }
  event(std::to_string(written) + " writes done");
  const uint64_t d0 = s.stats().delivered + s.stats().dropped;
  const bool converged = s.run_until([&] { return s.converged() && s.membership_converged(); },
                                     static_cast<uint64_t>(o.duration * kSec), 1000);
  size_t lost = 0;
  for (size_t i = 0; i < o.nodes; ++i) {
    for (const auto& [k, w] : winner) {
      crdt::EntryPtr e = s.node(i).get(k);
      if (!e || !(*e == w.entry)) ++lost;
    }
  }
  if (converged) event("converged");
  const double after = static_cast<double>(rel() - last_change) / kSec;
  const auto& st = s.stats();
  if (o.json) {
    wire::Value v = wire::Value::object();
    v.set("seed", o.seed);
    v.set("nodes", static_cast<uint64_t>(o.nodes));
    v.set("writes", static_cast<uint64_t>(written));
    v.set("converged", converged);
    v.set("converged_at_ms", rel() / 1000);
    v.set("after_last_change_ms", static_cast<uint64_t>(after * 1000));
    v.set("datagrams_after_writes", st.delivered + st.dropped - d0);
    v.set("delivered", st.delivered);
    v.set("dropped", st.dropped);
    v.set("duplicated", st.duplicated);
    v.set("bytes", st.bytes);
    v.set("oversized", st.oversized);
    v.set("writes_lost", static_cast<uint64_t>(lost));
    wire::Value tl = wire::Value::list();
    for (const auto& e : timeline) tl.push(e);
    v.set("timeline", std::move(tl));
    std::cout << v.to_json() << "\n";
  } else {
    std::printf("\nconvergence report (seed %llu, %zu nodes, %.0f%% loss, %.0f%% dup)\n",
                static_cast<unsigned long long>(o.seed), o.nodes, o.loss * 100, o.dup * 100);
    std::printf("  converged            %s\n", converged ? "yes" : "NO (within --duration)");
    std::printf("  at                   %.3f s simulated, %.3f s after the last write or heal\n",
                static_cast<double>(rel()) / kSec, after);
    std::printf("  datagrams            %llu delivered, %llu dropped, %llu duplicated (%llu after the writes)\n",
                static_cast<unsigned long long>(st.delivered), static_cast<unsigned long long>(st.dropped),
                static_cast<unsigned long long>(st.duplicated),
                static_cast<unsigned long long>(st.delivered + st.dropped - d0));
    std::printf("  bytes delivered      %llu\n", static_cast<unsigned long long>(st.bytes));
    std::printf("  writes               %zu, lost %zu\n", written, lost);
  }
  return converged && lost == 0 ? kExitOk : kExitNegative;
}
}  // namespace

Handler setup_sim(CLI::App& sub) {
  auto o = std::make_shared<SimOptions>();
  sub.footer("Exit 0 when the mesh converged with every write, 1 otherwise. Examples:\n"
             "  meshkv sim --nodes 5 --loss 0.3 --seed 7\n"
             "  meshkv sim --nodes 5 --partition 3,4 --partition-at 1 --heal-at 6");
  sub.add_option("--nodes", o->nodes, "simulated nodes (default 5)")->check(CLI::Range(2, 1000));
  sub.add_option("--loss", o->loss, "share of datagrams lost (default 0.1)")->type_name("P")->check(CLI::Range(0.0, 0.95));
  sub.add_option("--dup", o->dup, "share of datagrams duplicated (default 0.01)")->type_name("P")->check(CLI::Range(0.0, 1.0));
  sub.add_option("--delay", o->delay_ms, "one-way delay (default 1)")->type_name("MS")->check(CLI::Range(0, 10000));
  sub.add_option("--jitter", o->jitter_ms, "extra uniform delay, reorders (default 2)")->type_name("MS")->check(CLI::Range(0, 10000));
  sub.add_option("--partition", o->partition, "cut these nodes (0-based) off from the rest")->type_name("N,...");
  sub.add_option("--partition-at", o->partition_at, "when the partition starts")->type_name("S");
  sub.add_option("--heal-at", o->heal_at, "when it heals")->type_name("S");
  sub.add_option("--writes", o->writes, "writes spread over the run (default 200)")->check(CLI::Range(0, 1'000'000));
  sub.add_option("--seed", o->seed, "random seed; the same seed gives the same run (default 1)");
  sub.add_option("--duration", o->duration, "give up converging after this long (default 60)")->type_name("S");
  sub.add_flag("--quiet", o->quiet, "print only the report");
  sub.add_flag("--json", o->json, "print the report and timeline as JSON");
  return [o] { return run_sim(*o); };
}

}  // namespace meshkv::cli
