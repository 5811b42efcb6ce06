// Would zstd compression of anti-entropy chunks pay for a full sync? A
// measurement, not a feature: nothing in meshkv compresses.
//
//   meshkv_bench_zstd [--keys N] [--part N] [--mtu N] [--budget N]
//                     [--dict-kib N] [--sample-chunks N] [--reps N]
//                     [--random-values 1]
//
// It rebuilds the state of the full-sync benchmark row (tests/bench/full_sync.cc
// --full-sync, run by scripts/bench.sh): KEYS keys "sync/key/%09ld" with values
// "value-%013ld", loaded in parts of --part keys through 3 nodes in turn, each
// `meshkv set --batch` frame of 5000 writes applied at one wall-clock reading
// (cli/cmd_client.cc, node/control.cc), so the HLCs, dots, origins and chunk
// cuts look like the real ones. The writers are three replicas with their own
// origins; each part is merged into the first one (node 0) with delta chunks,
// as anti-entropy would. The bench's values repeat their key's digits, which
// flatters compression; --random-values 1 writes values of the same length
// drawn from 62 letters and digits instead (a pessimistic case: near-random
// user data), and --budget N cuts chunks bigger than the engine does (to see
// how many entries a compressed datagram could carry; uncompressed, such
// datagrams would exceed the MTU).
//
// Node 0 then answers a joiner with an empty vector the way the engine does
// (node/anti_entropy.cc: chunks of at most mtu - kChunkOverhead bytes of
// entries, at most 48 per answer, the joiner's vector raised after each
// answer), and every chunk is encoded as the ChunkMsg datagram it would send.
// Each datagram is then compressed on its own (each is an independent UDP
// datagram) with: nothing, zstd level 1, zstd level 3, and zstd level 1 with a
// dictionary trained (ZDICT_trainFromBuffer) on the first chunks. One
// ZSTD_CCtx and one ZSTD_DCtx serve every datagram. Every decompressed
// datagram is compared with the original; any difference aborts.
//
// Times are CPU seconds of this thread (CLOCK_THREAD_CPUTIME_ID), the median of
// --reps passes over all datagrams; a busy machine inflates them less than it
// inflates wall time. Meant for a Release build; about 15 s on one core.

#include <time.h>
#include <zdict.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/replica.h"
#include "wire/codec.h"
#include "wire/messages.h"

namespace {

using namespace meshkv;

volatile uint64_t g_sink = 0;
void consume(uint64_t v) { g_sink = g_sink + v; }

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_zstd: %s\n", what.c_str());
  std::fflush(stdout);
  std::abort();
}

struct Args {
  long keys = 1'000'000;
  long part = 100'000;   // scripts/bench.sh: --batch-part 100000
  size_t mtu = 1400;     // node/config.h default
  size_t budget = 0;     // 0: mtu - wire::kChunkOverhead, as the engine cuts
  size_t dict_kib = 32;
  size_t sample_chunks = 0;  // 0: about 100 x the dictionary's size
  int reps = 3;
  bool random_values = false;
};

// ---- the loaded cluster -------------------------------------------------------

// Three node uids (random 64-bit numbers in a real run; fixed here).
constexpr crdt::Origin kOrigins[3] = {0x9e3779b97f4a7c15, 0x3c6ef372fe94f82a, 0xdaa66d2b7e2e8e61};
constexpr uint64_t kStartMs = 1'750'000'000'000;  // June 2025
constexpr size_t kFrame = 5000;                    // writes per `set --batch` frame
// The bench loaded 1,000,000 keys in 11.5 s, replication waits included:
// 200 frames 45 ms apart, and 250 ms after each of the 10 parts.
constexpr uint64_t kMsPerFrame = 45, kMsPerPartWait = 250;
constexpr size_t kMaxChunksPerAnswer = 48;  // node/anti_entropy.cc's when measured (128 since)

// splitmix64, fixed seed: the same values on every run.
uint64_t next_random() {
  static uint64_t s = 0x243f6a8885a308d3;
  uint64_t z = (s += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

void load(crdt::Replica* nodes[3], const Args& a, size_t budget) {
  uint64_t t = kStartMs;
  char key[32], value[32];
  for (long k = 0, p = 0; k < a.keys; k += a.part, ++p) {
    crdt::Replica& w = *nodes[p % 3];
    const long end = std::min(a.keys, k + a.part);
    for (long i = k; i < end; ++i) {
      if ((i - k) % static_cast<long>(kFrame) == 0) t += kMsPerFrame;
      std::snprintf(key, sizeof key, "sync/key/%09ld", i);
      if (a.random_values) {
        static constexpr char kAlnum[] =
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for (size_t j = 0; j < 19; ++j) value[j] = kAlnum[next_random() % 62];
        value[19] = 0;
      } else {
        std::snprintf(value, sizeof value, "value-%013ld", i);
      }
      auto r = w.write(key, std::string_view(value), t);
      if (!r.ok()) die("write failed: " + r.status().to_string());
    }
    t += kMsPerPartWait;
    if (&w != nodes[0]) {
      for (const auto& c : w.delta(nodes[0]->vv(), budget)) {
        if (Status s = nodes[0]->apply_chunk(c, t); !s.ok()) die("apply_chunk: " + s.to_string());
      }
    }
  }
}

// ---- methods ------------------------------------------------------------------

struct Method {
  std::string name;
  int level = 0;  // 0: no compression
  bool dict = false;
};

struct Outcome {
  size_t bytes = 0;
  size_t max_dgram = 0;
  size_t over_mtu = 0;  // datagrams larger than the mtu
  double c_cpu = 0, d_cpu = 0;  // medians, seconds
};

// One timed pass: every datagram compressed into `comp`.
double compress_all(const Method& m, const std::vector<wire::Bytes>& dgrams, std::vector<wire::Bytes>& comp,
                    ZSTD_CCtx* cctx, const ZSTD_CDict* cdict) {
  const double t0 = cpu_now();
  for (size_t i = 0; i < dgrams.size(); ++i) {
    const auto& d = dgrams[i];
    auto& c = comp[i];
    c.resize(c.capacity());
    const size_t n = m.dict ? ZSTD_compress_usingCDict(cctx, c.data(), c.size(), d.data(), d.size(), cdict)
                            : ZSTD_compressCCtx(cctx, c.data(), c.size(), d.data(), d.size(), m.level);
    if (ZSTD_isError(n)) die(m.name + ": compress: " + ZSTD_getErrorName(n));
    c.resize(n);
  }
  return cpu_now() - t0;
}

// Decompresses `c` into `out`; its size.
size_t decompress(const Method& m, const wire::Bytes& c, std::vector<uint8_t>& out, ZSTD_DCtx* dctx,
                  const ZSTD_DDict* ddict) {
  const size_t n = m.dict ? ZSTD_decompress_usingDDict(dctx, out.data(), out.size(), c.data(), c.size(), ddict)
                          : ZSTD_decompressDCtx(dctx, out.data(), out.size(), c.data(), c.size());
  if (ZSTD_isError(n)) die(m.name + ": decompress: " + ZSTD_getErrorName(n));
  return n;
}

// Counts a datagram of `size` bytes as sent.
void count_sizes(Outcome& o, size_t size, size_t mtu) {
  o.bytes += size;
  o.max_dgram = std::max(o.max_dgram, size);
  o.over_mtu += size > mtu;
}

Outcome run(const Method& m, const std::vector<wire::Bytes>& dgrams, ZSTD_CCtx* cctx,
            ZSTD_DCtx* dctx, const ZSTD_CDict* cdict, const ZSTD_DDict* ddict, int reps, size_t mtu) {
  Outcome o;
  if (m.level == 0) {
    for (const auto& d : dgrams) count_sizes(o, d.size(), mtu);
    return o;
  }
  size_t max_in = 0;
  for (const auto& d : dgrams) max_in = std::max(max_in, d.size());
  std::vector<wire::Bytes> comp(dgrams.size());
  for (auto& c : comp) c.resize(ZSTD_compressBound(max_in));
  std::vector<uint8_t> out(max_in + 64);
  std::vector<double> tc, td;
  for (int rep = 0; rep < reps; ++rep) {
    tc.push_back(compress_all(m, dgrams, comp, cctx, cdict));
    uint64_t sum = 0;
    const double t0 = cpu_now();
    for (const auto& c : comp) {
      const size_t n = decompress(m, c, out, dctx, ddict);
      sum += n + out[n / 2];
    }
    td.push_back(cpu_now() - t0);
    consume(sum);
  }
  // Untimed: every datagram must come back byte for byte.
  for (size_t i = 0; i < dgrams.size(); ++i) {
    const size_t n = decompress(m, comp[i], out, dctx, ddict);
    if (n != dgrams[i].size() || std::memcmp(out.data(), dgrams[i].data(), n) != 0) {
      die(m.name + ": datagram " + std::to_string(i) + " did not round-trip");
    }
    count_sizes(o, comp[i].size(), mtu);
  }
  o.c_cpu = median(tc);
  o.d_cpu = median(td);
  return o;
}

int usage(const char* argv0) {
  std::printf(
      "usage: %s [--keys N] [--part N] [--mtu N] [--budget N] [--dict-kib N]\n"
      "          [--sample-chunks N] [--reps N]\n"
      "  --keys N           keys loaded (default 1000000, as scripts/bench.sh)\n"
      "  --part N           keys per part, the parts written by 3 nodes in turn (100000)\n"
      "  --mtu N            datagram size limit (1400, the default node config)\n"
      "  --budget N         entry bytes per chunk (default mtu - wire::kChunkOverhead)\n"
      "  --dict-kib N       dictionary size in KiB (32)\n"
      "  --sample-chunks N  first chunks the dictionary is trained on (~100x its size)\n"
      "  --reps N           timed passes per method; the median is shown (3)\n"
      "  --random-values 1  19 random letters and digits per value instead of the\n"
      "                     bench's \"value-%%013ld\"\n",
      argv0);
  return 2;
}

// Parses the options into `a`; false on a bad one.
bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view k = argv[i];
    if (i + 1 >= argc) return false;
    const long v = std::atol(argv[++i]);
    if (v <= 0) return false;
    if (k == "--keys") a.keys = v;
    else if (k == "--part") a.part = v;
    else if (k == "--mtu") a.mtu = static_cast<size_t>(v);
    else if (k == "--budget") a.budget = static_cast<size_t>(v);
    else if (k == "--dict-kib") a.dict_kib = static_cast<size_t>(v);
    else if (k == "--sample-chunks") a.sample_chunks = static_cast<size_t>(v);
    else if (k == "--reps") a.reps = static_cast<int>(v);
    else if (k == "--random-values") a.random_values = true;
    else return false;
  }
  return a.mtu > wire::kChunkOverhead;
}

void print_header(const Args& a, size_t budget) {
  std::printf("meshkv zstd full-sync micro-benchmark (zstd %s)\n", ZSTD_versionString());
#ifdef NDEBUG
  std::printf("build: Release (NDEBUG defined)\n");
#else
  std::printf("build: WARNING: not a Release build; the times mean little\n");
#endif
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    double la = -1;
    if (std::fscanf(f, "%lf", &la) == 1) std::printf("load average (1 min) before start: %.2f\n", la);
    std::fclose(f);
  }
  std::printf("%ld keys \"sync/key/%%09ld\" = %s, parts of %ld through 3 nodes; "
              "mtu %zu, chunk budget %zu B of entries%s, %zu chunks per answer\n",
              a.keys, a.random_values ? "19 random letters and digits" : "\"value-%013ld\"", a.part, a.mtu,
              budget, a.budget ? " (NOT the engine's)" : "", kMaxChunksPerAnswer);
  std::fflush(stdout);
}

struct Sync {
  std::vector<wire::Bytes> dgrams;
  double cpu = 0;  // producing and encoding them, CPU s
};

// The full sync as the engine would produce and encode it: answers of at
// most 48 chunks, the joiner's vector raised by each answer's claims.
Sync produce(const crdt::Replica& n0, const Args& a, size_t budget) {
  Sync sync;
  std::vector<wire::Bytes>& dgrams = sync.dgrams;
  size_t entries = 0;
  const double t0 = cpu_now();
  crdt::VersionVector joiner;
  for (;;) {
    auto chunks = n0.delta(joiner, budget, 0, ~crdt::Origin{0}, kMaxChunksPerAnswer);
    if (chunks.empty()) break;
    for (auto& c : chunks) {
      joiner.raise(c.origin, c.to);
      entries += c.entries.size();
      dgrams.push_back(wire::encode(wire::Envelope{wire::kVersion, n0.self(), wire::ChunkMsg{std::move(c)}}));
    }
  }
  if (!(joiner == n0.vv())) die("the joiner's vector did not reach node 0's");
  sync.cpu = cpu_now() - t0;
  if (entries != static_cast<size_t>(a.keys)) die("the chunks carry " + std::to_string(entries) + " entries");
  size_t raw = 0, oversize = 0;
  for (const auto& d : dgrams) {
    oversize += d.size() > a.mtu;
    raw += d.size();
  }
  if (oversize && !a.budget) die("a datagram exceeds the mtu");
  if (oversize) std::printf("%zu uncompressed datagrams exceed the mtu (--budget)\n", oversize);
  std::printf("full sync: %zu ChunkMsg datagrams, %zu entries, %zu bytes (%.0f B avg); "
              "delta + encode %.3f CPU s (%.2f us per datagram)\n",
              dgrams.size(), entries, raw, static_cast<double>(raw) / static_cast<double>(dgrams.size()),
              sync.cpu, sync.cpu / static_cast<double>(dgrams.size()) * 1e6);
  return sync;
}

size_t total_bytes(const std::vector<wire::Bytes>& dgrams) {
  size_t raw = 0;
  for (const auto& d : dgrams) raw += d.size();
  return raw;
}

// A dictionary trained on the first chunks.
std::vector<uint8_t> train(const std::vector<wire::Bytes>& dgrams, const Args& a) {
  const size_t dict_cap = a.dict_kib * 1024;
  const size_t raw = total_bytes(dgrams);
  size_t n_samples = a.sample_chunks ? a.sample_chunks : (100 * dict_cap) / (raw / dgrams.size()) + 1;
  n_samples = std::min(n_samples, dgrams.size());
  std::vector<uint8_t> samples;
  std::vector<size_t> sample_sizes;
  for (size_t i = 0; i < n_samples; ++i) {
    samples.insert(samples.end(), dgrams[i].begin(), dgrams[i].end());
    sample_sizes.push_back(dgrams[i].size());
  }
  std::vector<uint8_t> dict(dict_cap);
  const double t0 = cpu_now();
  const size_t dict_size = ZDICT_trainFromBuffer(dict.data(), dict.size(), samples.data(), sample_sizes.data(),
                                                 static_cast<unsigned>(sample_sizes.size()));
  const double train_cpu = cpu_now() - t0;
  if (ZDICT_isError(dict_size)) die(std::string("ZDICT_trainFromBuffer: ") + ZDICT_getErrorName(dict_size));
  dict.resize(dict_size);
  std::printf("dictionary: %zu bytes trained on the first %zu datagrams (%zu bytes) in %.2f CPU s\n", dict_size,
              n_samples, samples.size(), train_cpu);
  std::printf("timed passes per method: %d (median shown)\n\n", a.reps);
  std::fflush(stdout);
  return dict;
}

// Every method over every datagram: the table.
void compare(const std::vector<wire::Bytes>& dgrams, const std::vector<uint8_t>& dict, const Args& a) {
  const Method methods[] = {{"none", 0, false},
                            {"zstd -1", 1, false},
                            {"zstd -3", 3, false},
                            {"zstd -1 + " + std::to_string(dict.size() / 1024) + " KiB dict", 1, true}};
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  ZSTD_CDict* cdict = ZSTD_createCDict(dict.data(), dict.size(), 1);
  ZSTD_DDict* ddict = ZSTD_createDDict(dict.data(), dict.size());
  if (!cctx || !dctx || !cdict || !ddict) die("out of memory");
  std::printf("| method | bytes | ratio | saved | avg / max B per datagram | over mtu | compress CPU s | "
              "decompress CPU s | compress / decompress us per datagram |\n");
  std::printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  const double n = static_cast<double>(dgrams.size());
  const size_t raw = total_bytes(dgrams);
  for (const Method& m : methods) {
    const Outcome o = run(m, dgrams, cctx, dctx, cdict, ddict, a.reps, a.mtu);
    const double ratio = static_cast<double>(raw) / static_cast<double>(o.bytes);
    std::printf("| %s | %zu | %.2f | %.1f%% | %.0f / %zu | %zu | %.3f | %.3f | %.2f / %.2f |\n", m.name.c_str(), o.bytes,
                ratio, 100.0 * (1.0 - 1.0 / ratio), static_cast<double>(o.bytes) / n, o.max_dgram, o.over_mtu, o.c_cpu,
                o.d_cpu, o.c_cpu / n * 1e6, o.d_cpu / n * 1e6);
    std::fflush(stdout);
  }
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  ZSTD_freeCDict(cdict);
  ZSTD_freeDDict(ddict);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse_args(argc, argv, a)) return usage(argv[0]);
  const size_t budget = a.budget ? a.budget : a.mtu - wire::kChunkOverhead;
  print_header(a, budget);
  crdt::Replica n0(kOrigins[0]), n1(kOrigins[1]), n2(kOrigins[2]);
  crdt::Replica* nodes[3] = {&n0, &n1, &n2};
  const double t0 = cpu_now();
  load(nodes, a, budget);
  std::printf("loaded node 0 with %zu keys in %.2f CPU s (not part of any figure)\n",
              n0.map().size(), cpu_now() - t0);
  if (n0.map().size() != static_cast<size_t>(a.keys)) die("node 0 does not hold every key");
  const Sync sync = produce(n0, a, budget);
  compare(sync.dgrams, train(sync.dgrams, a), a);
  std::printf("\nfor scale: producing and encoding the uncompressed datagrams (Replica::delta in "
              "answers of %zu, wire::encode) took %.3f CPU s\n",
              kMaxChunksPerAnswer, sync.cpu);
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(g_sink));
  return 0;
}
