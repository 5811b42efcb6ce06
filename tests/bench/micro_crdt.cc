// The CRDT groups of meshkv_bench: merging a million entries (fresh,
// duplicate, newer) and extracting deltas from a million-key replica.
#include <cstdio>
#include <memory>

#include "bench/micro.h"
#include "crdt/replica.h"

namespace meshkv::bench::micro {

std::string fixed_value(size_t n, uint64_t salt) {
  std::string v(n, 'v');
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>('a' + (salt + i * 7) % 26);
  return v;
}

namespace {

constexpr size_t kMtuChunk = 1300;

// `n` entries with distinct keys "key:%08d" and 16-byte values, written
// round-robin by 4 origins, in seq order per origin. Generation `gen` (1, 2,
// ...) rewrites the same keys with later timestamps and the next seqs, so
// every entry of gen g+1 beats the one of gen g.
std::vector<crdt::KeyedEntry> make_entries(size_t n, uint64_t gen) {
  std::vector<crdt::KeyedEntry> out;
  out.reserve(n);
  const size_t per_origin = (n + 3) / 4;
  char key[32];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "key:%08zu", i);
    crdt::KeyedEntry ke;
    ke.key = key;
    // 1000 writes per ms; a generation spans n/1000 ms.
    const uint64_t t = (gen - 1) * n + i;
    ke.entry.hlc = crdt::Hlc::make(kBaseMs + t / 1000, t % 1000);
    ke.entry.dot = crdt::Dot{kOrigins[i % 4], (gen - 1) * per_origin + i / 4 + 1};
    ke.entry.value = fixed_value(16, i + gen);
    out.push_back(std::move(ke));
  }
  return out;
}

uint64_t apply_all(crdt::Replica& r, const std::vector<crdt::KeyedEntry>& es) {
  uint64_t won = 0;
  for (const auto& ke : es) won += r.apply_entry(ke.key, ke.entry, kNowMs);
  return won;
}

// "N won", flagged when not the expected count.
std::string won_note(uint64_t won, uint64_t want) {
  std::string s = std::to_string(won) + " won";
  if (won != want) s += " (EXPECTED " + std::to_string(want) + ")";
  return s;
}

// The delta for a peer that has everything but the last kMissing writes of
// one origin: many runs of microseconds each.
void delta_small(const crdt::Replica& a) {
  constexpr uint64_t kMissing = 10;
  const crdt::Origin lagging = kOrigins[2];
  crdt::VersionVector peer;
  for (const auto& [o, s] : a.vv().items()) peer.raise(o, o == lagging ? s - kMissing : s);
  size_t chunks = 0, entries = 0;
  auto run = [&] {
    auto out = a.delta(peer, kMtuChunk);
    chunks = out.size();
    entries = 0;
    for (const auto& c : out) entries += c.entries.size();
    consume(chunks + entries + (out.empty() ? 0 : out.back().to));
  };
  for (int i = 0; i < 100; ++i) run();  // warm up
  std::vector<double> t_small;
  for (int i = 0; i < 2000; ++i) {
    auto t0 = Clock::now();
    run();
    t_small.push_back(seconds_since(t0));
  }
  std::string note = std::to_string(chunks) + " chunk(s), " + std::to_string(entries) + " entries";
  if (entries != kMissing) note += " (EXPECTED " + std::to_string(kMissing) + ")";
  add_time("delta 1M keys, peer misses 10", "us", stats_of(t_small), 1e-6, 1000, note);
}

// Full sync for scale: a peer with an empty vector.
void delta_full(const crdt::Replica& a, int reps) {
  const crdt::VersionVector empty;
  std::vector<double> t_full;
  size_t chunks = 0, entries = 0;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    {
      auto out = a.delta(empty, kMtuChunk);
      t_full.push_back(seconds_since(t0));  // the answer's teardown is not timed
      chunks = out.size();
      entries = 0;
      for (const auto& c : out) entries += c.entries.size();
      consume(chunks + entries);
    }
    std::printf("  full sync rep %d/%d: %.0f ms\n", i + 1, reps, t_full.back() * 1e3);
    std::fflush(stdout);
  }
  const std::string note = std::to_string(chunks) + " chunks, " + std::to_string(entries) + " entries";
  add_time("delta 1M keys, empty peer (full)", "ms", stats_of(t_full), 1e-3, 0, note);
}

}  // namespace

void bench_merge(int reps) {
  constexpr size_t kN = 1'000'000;
  std::printf("merge: building %zu entries x 2 generations...\n", kN);
  std::fflush(stdout);
  const auto v1 = make_entries(kN, 1);
  const auto v2 = make_entries(kN, 2);
  std::vector<double> t_fresh, t_dup, t_repl;
  uint64_t won_fresh = 0, won_dup = 0, won_repl = 0;
  for (int rep = 0; rep < reps; ++rep) {
    auto r = std::make_unique<crdt::Replica>(0x9999);
    auto t0 = Clock::now();
    won_fresh = apply_all(*r, v1);
    t_fresh.push_back(seconds_since(t0));
    t0 = Clock::now();
    won_dup = apply_all(*r, v1);
    t_dup.push_back(seconds_since(t0));
    t0 = Clock::now();
    won_repl = apply_all(*r, v2);
    t_repl.push_back(seconds_since(t0));
    consume(won_fresh + won_dup + won_repl + r->map().size());
    r.reset();  // 1M-node teardown: not timed
    std::printf("  rep %d/%d: fresh %.0f ms, duplicate %.0f ms, replace %.0f ms\n", rep + 1, reps,
                t_fresh.back() * 1e3, t_dup.back() * 1e3, t_repl.back() * 1e3);
    std::fflush(stdout);
  }
  add_rate("merge 1M fresh (insert)", "M entries/s", kN, stats_of(t_fresh), 1e6, 2.0, won_note(won_fresh, kN));
  add_rate("merge 1M again (all stale)", "M entries/s", kN, stats_of(t_dup), 1e6, 2.0, won_note(won_dup, 0));
  add_rate("merge 1M newer (replace)", "M entries/s", kN, stats_of(t_repl), 1e6, 2.0, won_note(won_repl, kN));
}

void bench_delta(int reps) {
  constexpr size_t kN = 1'000'000;
  std::printf("delta: building a %zu-key replica...\n", kN);
  std::fflush(stdout);
  crdt::Replica a(0x9999);
  {
    const auto v1 = make_entries(kN, 1);
    consume(apply_all(a, v1));
  }
  delta_small(a);
  delta_full(a, reps);
}

}  // namespace meshkv::bench::micro
