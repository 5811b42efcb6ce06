// --full-sync KEYS: load KEYS keys into the cluster with `meshkv set --batch`
// (parts of --batch-part keys through the nodes in turn, each part held by
// every node before the next), then start a new node: the time until its
// status shows KEYS keys (at most --sync-timeout seconds), the bytes it
// received meanwhile, and the CPU the peers spent serving it.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

namespace {

// The batch files, in a temporary directory removed with them.
struct Parts {
  std::string dir;
  std::vector<std::string> files;

  ~Parts() { remove(); }
  void remove() {
    for (const auto& p : files) unlink(p.c_str());
    files.clear();
    if (!dir.empty()) rmdir(dir.c_str());
    dir.clear();
  }
};

bool write_parts(long keys, long part, Parts& parts) {
  char tmpl[] = "/tmp/meshkv-bench-sync-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("bench: mkdtemp");
    return false;
  }
  parts.dir = tmpl;
  for (long k = 0; k < keys; k += part) {
    parts.files.push_back(parts.dir + "/part" + std::to_string(parts.files.size()));
    std::ofstream f(parts.files.back());
    char line[64];
    for (long i = k; i < std::min(keys, k + part); ++i) {
      std::snprintf(line, sizeof line, "sync/key/%09ld value-%013ld\n", i, i);
      f << line;
    }
  }
  return true;
}

// Loads the parts; "" when every part reached every node, else what failed.
std::string load(Cluster& c, const Parts& parts, long keys, long part) {
  for (size_t p = 0; p < parts.files.size(); ++p) {
    const Node& via = c.nodes[p % c.nodes.size()];
    if (const int rc = run_batch(c.a, parts.files[p], via.port); rc != 0) {
      return "meshkv set --batch exited " + std::to_string(rc) + " on part " + std::to_string(p + 1);
    }
    const uint64_t want = static_cast<uint64_t>(std::min(keys, static_cast<long>(p + 1) * part));
    const double t0 = now_ms();
    bool held = false;
    while (!held && now_ms() - t0 < 120'000) {
      held = true;
      for (const auto& n : counters_all(c.ctl)) held = held && n.ok && n.keys >= want;
      if (!held) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!held) return "part " + std::to_string(p + 1) + " not on every node within 120 s";
  }
  return "";
}

// What the joining node reported last.
struct Joiner {
  uint64_t keys = 0, bytes = 0, datagrams = 0;
  double sync_ms = -1;  // start of its process until it held every key
};

// Polls the new node's status every 50 ms until it holds `keys` keys.
Joiner follow(int port, double t0, uint64_t keys, double timeout_s) {
  Joiner j;
  Conn c;
  for (int t = 0; t < 200 && !c.open(port); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  while (c.fd() >= 0 && now_ms() - t0 < timeout_s * 1000) {
    if (auto st = c.call("status", wire::Value::object(), 10'000)) {
      j.keys = static_cast<uint64_t>(st->body.get("keys").as_int());
      j.bytes = static_cast<uint64_t>(st->body.get("datagrams").get("bytes_received").as_int());
      j.datagrams = static_cast<uint64_t>(st->body.get("datagrams").get("received").as_int());
      if (j.keys >= keys) {
        j.sync_ms = now_ms() - t0;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return j;
}

// The new node's sync; prints the row and records its figures.
void sync_new_node(Cluster& c, double load_s) {
  const Args& a = c.a;
  std::vector<Usage> peers0;
  for (const auto& n : c.nodes) peers0.push_back(usage(n.pid));
  const int idx = static_cast<int>(c.nodes.size());
  const double t0 = now_ms();
  const pid_t pid = spawn(a, idx, c.base);
  const Joiner j = follow(c.base + idx, t0, static_cast<uint64_t>(a.full_sync), a.sync_timeout);
  const double elapsed_s = (now_ms() - t0) / 1000.0;
  const Usage joiner = usage(pid);
  double peers_cpu = 0;
  for (size_t i = 0; i < c.nodes.size(); ++i) peers_cpu += usage(c.nodes[i].pid).cpu_s - peers0[i].cpu_s;
  stop(pid);
  const std::string when = j.sync_ms >= 0 ? std::to_string(static_cast<int>(j.sync_ms)) + " ms"
                                          : "not within " + std::to_string(static_cast<int>(a.sync_timeout)) + " s";
  std::printf("| %zu+1 | %ld keys | loaded in %.1f s | %s | %llu keys after %.1f s | %.1f MB received |\n",
              c.nodes.size(), a.full_sync, load_s, when.c_str(), static_cast<unsigned long long>(j.keys), elapsed_s,
              static_cast<double>(j.bytes) / 1e6);
  Results& r = c.res;
  r.num("sync_ms", j.sync_ms);
  r.num("sync_elapsed_s", elapsed_s);
  r.count("sync_keys_reached", j.keys);
  r.count("sync_bytes_received", j.bytes);
  r.count("sync_datagrams_received", j.datagrams);
  r.num("sync_keys_per_s", static_cast<double>(j.keys) / elapsed_s);
  r.num("sync_joiner_rss_mb", static_cast<double>(joiner.rss_kb) / 1024.0);
  r.num("sync_joiner_cpu_s", joiner.cpu_s);
  r.num("sync_peers_cpu_s", peers_cpu);
}

}  // namespace

int run_full_sync(Cluster& c) {
  const long keys = c.a.full_sync, part = std::max(1L, c.a.batch_part);
  Parts parts;
  if (!write_parts(keys, part, parts)) return 1;
  const double t0 = now_ms();
  const std::string error = load(c, parts, keys, part);
  const double load_s = (now_ms() - t0) / 1000.0;
  parts.remove();
  std::fprintf(stderr, "bench: loaded %ld keys in %.1f s%s%s\n", keys, load_s, error.empty() ? "" : ": ",
               error.c_str());
  c.res.count("sync_keys", static_cast<uint64_t>(keys));
  c.res.num("load_s", load_s);
  if (!error.empty()) {
    c.res.put("load_error", "\"" + error + "\"");
    std::printf("| %zu+1 | %ld keys | load failed: %s |\n", c.nodes.size(), keys, error.c_str());
    return 1;
  }
  sync_new_node(c, load_s);
  return 0;
}

}  // namespace meshkv::bench
