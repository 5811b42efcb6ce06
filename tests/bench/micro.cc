// Micro-benchmarks of the hot paths: CRDT merge, delta extraction and the wire
// codec. Prints figures; asserts nothing and always exits 0.
//
//   meshkv_bench [--markdown] [--reps N] [--only merge|delta|codec]
//
// Every figure is measured several times with std::chrono::steady_clock; the
// table shows the best run (least time) and the median. Inputs are built
// before the clock starts, and results feed a checksum so the optimizer cannot
// drop the work. Meant for a Release build (-O2 -DNDEBUG); about 20 s on an
// idle 2-core machine, about 40 s when another build shares it.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "crdt/replica.h"
#include "wire/codec.h"
#include "wire/messages.h"

namespace {

using namespace meshkv;
using Clock = std::chrono::steady_clock;

// Everything measured ends up here, and it is printed at the end.
volatile uint64_t g_sink = 0;
void consume(uint64_t v) { g_sink = g_sink + v; }

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Stats {
  double best = 0;    // least time, seconds
  double median = 0;  // seconds
  size_t runs = 0;
};

Stats stats_of(std::vector<double> t) {
  Stats s;
  s.runs = t.size();
  if (t.empty()) return s;
  std::sort(t.begin(), t.end());
  s.best = t.front();
  const size_t n = t.size();
  s.median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  return s;
}

// ---- result table -------------------------------------------------------------

enum class Dir { kHigherIsBetter, kLowerIsBetter, kNone };

struct Row {
  std::string name;
  std::string unit;
  double best = 0;    // in `unit`: the best run's figure
  double median = 0;  // in `unit`
  size_t runs = 0;
  Dir dir = Dir::kNone;
  double aim = 0;
  std::string note;
};

std::vector<Row> g_rows;

// A rate row: `work` units per run, converted from run times.
void add_rate(std::string name, std::string unit, double work, const Stats& s, double scale,
              double aim, std::string note) {
  Row r;
  r.name = std::move(name);
  r.unit = std::move(unit);
  r.best = s.best > 0 ? work / s.best / scale : 0;
  r.median = s.median > 0 ? work / s.median / scale : 0;
  r.runs = s.runs;
  r.dir = aim > 0 ? Dir::kHigherIsBetter : Dir::kNone;
  r.aim = aim;
  r.note = std::move(note);
  g_rows.push_back(std::move(r));
}

// A latency row: run times scaled to `unit` (1e-6 for us, 1e-3 for ms).
void add_time(std::string name, std::string unit, const Stats& s, double scale, double aim,
              std::string note) {
  Row r;
  r.name = std::move(name);
  r.unit = std::move(unit);
  r.best = s.best / scale;
  r.median = s.median / scale;
  r.runs = s.runs;
  r.dir = aim > 0 ? Dir::kLowerIsBetter : Dir::kNone;
  r.aim = aim;
  r.note = std::move(note);
  g_rows.push_back(std::move(r));
}

std::string fmt_num(double v) {
  char buf[64];
  if (v >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  }
  return buf;
}

std::string fmt_aim(const Row& r) {
  if (r.dir == Dir::kNone) return "-";
  return (r.dir == Dir::kHigherIsBetter ? ">= " : "< ") + fmt_num(r.aim);
}

// Judged on the median: one lucky run does not meet an aim.
std::string verdict(const Row& r) {
  switch (r.dir) {
    case Dir::kHigherIsBetter: return r.median >= r.aim ? "ok" : "MISSED";
    case Dir::kLowerIsBetter: return r.median < r.aim ? "ok" : "MISSED";
    case Dir::kNone: return "";
  }
  return "";
}

void print_table() {
  const char* hdr[] = {"benchmark", "unit", "best", "median", "runs", "aim", "", "notes"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : g_rows) {
    cells.push_back({r.name, r.unit, fmt_num(r.best), fmt_num(r.median), std::to_string(r.runs),
                     fmt_aim(r), verdict(r), r.note});
  }
  constexpr size_t kCols = 8;
  size_t w[kCols];
  for (size_t c = 0; c < kCols; ++c) {
    w[c] = std::strlen(hdr[c]);
    for (const auto& row : cells) w[c] = std::max(w[c], row[c].size());
  }
  // Text columns left-aligned, numbers right-aligned.
  const bool right[kCols] = {false, false, true, true, true, true, false, false};
  auto line = [&](const std::vector<std::string>& v) {
    std::string s;
    for (size_t c = 0; c < kCols; ++c) {
      const std::string& x = v[c];
      std::string pad(w[c] - x.size(), ' ');
      s += right[c] ? pad + x : x + pad;
      if (c + 1 < kCols) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::printf("%s\n", s.c_str());
  };
  line(std::vector<std::string>(hdr, hdr + kCols));
  size_t total = 2 * (kCols - 1);
  for (size_t c = 0; c < kCols; ++c) total += w[c];
  std::printf("%s\n", std::string(total, '-').c_str());
  for (const auto& row : cells) line(row);
}

void print_markdown() {
  std::printf("| benchmark | unit | best | median | aim | notes |\n");
  std::printf("|---|---|--:|--:|--:|---|\n");
  for (const Row& r : g_rows) {
    std::string aim = fmt_aim(r);
    std::string v = verdict(r);
    if (!v.empty()) aim += v == "ok" ? " ✓" : " ✗";
    std::printf("| %s | %s | %s | %s | %s | %s |\n", r.name.c_str(), r.unit.c_str(),
                fmt_num(r.best).c_str(), fmt_num(r.median).c_str(), aim.c_str(),
                r.note.c_str());
  }
}

// ---- inputs -------------------------------------------------------------------

constexpr uint64_t kBaseMs = 1'700'000'000'000;  // Nov 2023, in ms
// Late enough that no timestamp below is "in the future" for the clock.
constexpr uint64_t kNowMs = kBaseMs + 10'000'000;
constexpr crdt::Origin kOrigins[4] = {0x1111'0000'0000'0001, 0x2222'0000'0000'0002,
                                      0x3333'0000'0000'0003, 0x4444'0000'0000'0004};

std::string fixed_value(size_t n, uint64_t salt) {
  std::string v(n, 'v');
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>('a' + (salt + i * 7) % 26);
  return v;
}

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

// ---- 1. merge -------------------------------------------------------------------

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
    std::printf("  rep %d/%d: fresh %.0f ms, duplicate %.0f ms, replace %.0f ms\n", rep + 1,
                reps, t_fresh.back() * 1e3, t_dup.back() * 1e3, t_repl.back() * 1e3);
    std::fflush(stdout);
  }
  auto note = [](uint64_t won, uint64_t want) {
    std::string s = std::to_string(won) + " won";
    if (won != want) s += " (EXPECTED " + std::to_string(want) + ")";
    return s;
  };
  add_rate("merge 1M fresh (insert)", "M entries/s", kN, stats_of(t_fresh), 1e6, 2.0,
           note(won_fresh, kN));
  add_rate("merge 1M again (all stale)", "M entries/s", kN, stats_of(t_dup), 1e6, 2.0,
           note(won_dup, 0));
  add_rate("merge 1M newer (replace)", "M entries/s", kN, stats_of(t_repl), 1e6, 2.0,
           note(won_repl, kN));
}

// ---- 2. delta -------------------------------------------------------------------

void bench_delta(int reps) {
  constexpr size_t kN = 1'000'000;
  constexpr uint64_t kMissing = 10;
  constexpr size_t kMtuChunk = 1300;
  std::printf("delta: building a %zu-key replica...\n", kN);
  std::fflush(stdout);
  crdt::Replica a(0x9999);
  {
    const auto v1 = make_entries(kN, 1);
    consume(apply_all(a, v1));
  }

  // The peer has everything except the last kMissing writes of one origin.
  const crdt::Origin lagging = kOrigins[2];
  crdt::VersionVector peer;
  for (const auto& [o, s] : a.vv().items()) peer.raise(o, o == lagging ? s - kMissing : s);

  size_t chunks = 0, entries = 0;
  auto run = [&](const crdt::VersionVector& vv) {
    auto out = a.delta(vv, kMtuChunk);
    chunks = out.size();
    entries = 0;
    for (const auto& c : out) entries += c.entries.size();
    consume(chunks + entries + (out.empty() ? 0 : out.back().to));
  };

  // Small delta: many runs, microseconds.
  for (int i = 0; i < 100; ++i) run(peer);  // warm up
  std::vector<double> t_small;
  const int small_runs = 2000;
  for (int i = 0; i < small_runs; ++i) {
    auto t0 = Clock::now();
    run(peer);
    t_small.push_back(seconds_since(t0));
  }
  std::string note = std::to_string(chunks) + " chunk(s), " + std::to_string(entries) +
                     " entries";
  if (entries != kMissing) note += " (EXPECTED " + std::to_string(kMissing) + ")";
  add_time("delta 1M keys, peer misses 10", "us", stats_of(t_small), 1e-6, 1000, note);

  // Full sync for scale: a peer with an empty vector.
  const crdt::VersionVector empty;
  std::vector<double> t_full;
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
  note = std::to_string(chunks) + " chunks, " + std::to_string(entries) + " entries";
  add_time("delta 1M keys, empty peer (full)", "ms", stats_of(t_full), 1e-3, 0, note);
}

// ---- 3. codec -------------------------------------------------------------------

// A chunk message of `n` entries with 16-byte keys and `value_bytes` values.
wire::Envelope make_chunk_msg(size_t n, size_t value_bytes, uint64_t salt) {
  crdt::Chunk c;
  c.origin = kOrigins[salt % 4];
  c.from = 100'000 + salt * n;
  c.to = c.from + n;
  char key[32];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "user:%011llu",
                  static_cast<unsigned long long>(salt * 1000 + i));  // 16 bytes
    crdt::KeyedEntry ke;
    ke.key = key;
    ke.entry.hlc = crdt::Hlc::make(kBaseMs + salt * 10 + i, i);
    ke.entry.dot = crdt::Dot{c.origin, c.from + i + 1};
    ke.entry.value = fixed_value(value_bytes, salt + i);
    c.entries.push_back(std::move(ke));
  }
  return wire::Envelope{wire::kVersion, 0xABCDEF0123456789, wire::ChunkMsg{std::move(c)}};
}

wire::Envelope make_push_msg(uint64_t salt) {
  wire::Envelope env = make_chunk_msg(1, 32, salt);
  crdt::Chunk c = std::move(std::get<wire::ChunkMsg>(env.msg).chunk);
  c.from = c.to = 0;  // pushes carry loose dots
  env.msg = wire::Push{salt + 1, std::move(c)};
  return env;
}

uint64_t checksum(const wire::Envelope& env) {
  uint64_t h = env.sender;
  const crdt::Chunk* c = nullptr;
  if (const auto* m = std::get_if<wire::ChunkMsg>(&env.msg)) c = &m->chunk;
  if (const auto* m = std::get_if<wire::Push>(&env.msg)) c = &m->chunk;
  if (c) {
    h += c->to + c->entries.size();
    for (const auto& ke : c->entries) h += ke.key.size() + ke.entry.value.size() + ke.entry.dot.seq;
  }
  return h;
}

// Encode and decode `msgs` round-robin until about `total_bytes` went through.
void bench_codec_kind(const char* what, const std::vector<wire::Envelope>& msgs,
                      size_t total_bytes, int reps, double decode_aim) {
  std::vector<wire::Bytes> enc;
  size_t set_bytes = 0;
  for (const auto& m : msgs) {
    enc.push_back(wire::encode(m));
    set_bytes += enc.back().size();
  }
  const size_t avg = set_bytes / msgs.size();
  const size_t per_run = std::max<size_t>(1, total_bytes / set_bytes);  // passes over the set
  const double bytes = static_cast<double>(per_run * set_bytes);
  const double count = static_cast<double>(per_run * msgs.size());
  bool all_ok = true;
  for (size_t i = 0; i < enc.size(); ++i) {
    auto d = wire::decode(enc[i]);
    if (!d.ok() || *d != msgs[i]) all_ok = false;
  }

  std::vector<double> t_enc, t_dec;
  wire::Bytes buf;
  buf.reserve(64 * 1024);
  for (int rep = 0; rep < reps; ++rep) {
    uint64_t sum = 0;
    auto t0 = Clock::now();
    for (size_t p = 0; p < per_run; ++p) {
      for (const auto& m : msgs) {
        buf.clear();
        wire::encode_to(m, buf);
        sum += buf.size() + buf[buf.size() / 2];
      }
    }
    t_enc.push_back(seconds_since(t0));
    consume(sum);

    sum = 0;
    t0 = Clock::now();
    for (size_t p = 0; p < per_run; ++p) {
      for (const auto& b : enc) {
        auto d = wire::decode(b);
        sum += d.ok() ? checksum(*d) : 1;
      }
    }
    t_dec.push_back(seconds_since(t0));
    consume(sum);
  }
  const std::string shape = std::string(what) + " (" + std::to_string(avg) + " B avg)";
  const Stats se = stats_of(t_enc), sd = stats_of(t_dec);
  auto per_msg = [&](const Stats& s) {
    char b[64];
    std::snprintf(b, sizeof b, "%.0f ns/msg", s.median / count * 1e9);
    return std::string(b);
  };
  std::string round_trip = all_ok ? "" : ", ROUND TRIP MISMATCH";
  add_rate("encode " + shape, "MB/s", bytes, se, 1e6, 0, per_msg(se) + round_trip);
  add_rate("decode " + shape, "MB/s", bytes, sd, 1e6, decode_aim, per_msg(sd) + round_trip);
}

void bench_codec(int reps) {
  std::printf("codec: encoding and decoding...\n");
  std::fflush(stdout);
  std::vector<wire::Envelope> chunks, pushes;
  for (uint64_t i = 0; i < 64; ++i) chunks.push_back(make_chunk_msg(20, 32, i + 1));
  for (uint64_t i = 0; i < 256; ++i) pushes.push_back(make_push_msg(i + 1));
  bench_codec_kind("ChunkMsg 20 entries", chunks, 100u << 20, reps, 300);
  bench_codec_kind("Push 1 entry", pushes, 50u << 20, reps, 0);
}

// ---- main -----------------------------------------------------------------------

// The 1-minute load average (Linux), or a negative number when unknown. Read
// before the work starts; it reflects the minute before.
double load_average() {
  double v = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1;
    std::fclose(f);
  }
  return v;
}

int usage(const char* argv0) {
  std::printf(
      "usage: %s [--markdown] [--reps N] [--only merge|delta|codec]\n"
      "  --markdown  also print the results as a Markdown table\n"
      "  --reps N    repetitions of the long measurements (default 5)\n"
      "  --only X    run one group only\n",
      argv0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool markdown = false;
  int reps = 5;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--markdown") {
      markdown = true;
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      return usage(argv[0]);
    }
  }

  std::printf("meshkv micro-benchmarks\n");
  std::printf("hardware_concurrency: %u\n", std::thread::hardware_concurrency());
#ifdef NDEBUG
  std::printf("build: Release (NDEBUG defined)");
#else
  std::printf("build: WARNING: NDEBUG is not defined; this is not a Release build and the "
              "figures mean little");
#endif
#ifndef __OPTIMIZE__
  std::printf(" -- WARNING: compiled without optimization");
#endif
  std::printf("\nrepetitions: %d (best = least time; aims are judged on the median)\n", reps);
  if (const double la = load_average(); la >= 0) {
    std::printf("load average (1 min) before start: %.2f%s\n", la,
                la > 0.5 ? "  (WARNING: the machine is busy; figures may be pessimistic)" : "");
  }
  std::printf("\n");
  std::fflush(stdout);

  const auto t0 = Clock::now();
  const std::clock_t cpu0 = std::clock();
  if (only.empty() || only == "merge") bench_merge(reps);
  if (only.empty() || only == "delta") bench_delta(reps);
  if (only.empty() || only == "codec") bench_codec(reps);

  std::printf("\n");
  print_table();
  if (markdown) {
    std::printf("\n");
    print_markdown();
  }
  // Every measurement is single-threaded: CPU time well below wall time means
  // other processes took the core away and the figures are pessimistic.
  const double wall = seconds_since(t0);
  const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  std::printf("\nCPU time / wall time: %.0f%%%s\n", wall > 0 ? 100 * cpu / wall : 0.0,
              cpu < 0.9 * wall ? "  (WARNING: other processes competed for the CPU; the figures "
                                 "are pessimistic)"
                               : "");
  std::printf("total %.1f s (checksum %llu)\n", seconds_since(t0),
              static_cast<unsigned long long>(g_sink));
  return 0;
}
