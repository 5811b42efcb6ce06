// The default mode: write-to-all latency, then the idle cost, then failure
// detection.
//
// A `watch` stream to every node reports each write it applies; a write's
// latency is the time from sending its `set` to a random node until the last
// node reported it. The nodes' datagram counters give the bytes every write
// cost cluster-wide: what all nodes sent from the first write until every
// write was applied and acknowledged everywhere, less what the same nodes
// send idle (measured in the idle window) over as long, divided by the
// writes applied.
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

namespace {

// The watch streams and the writes not yet applied everywhere.
struct Watches {
  int nodes = 0;
  Conns conns;
  std::map<std::string, std::pair<double, int>> pending;  // key -> (sent at, nodes seen)
  std::vector<double> lat;                                // ms, in the order completed

  // Waits up to timeout_ms for news on any stream and takes what came.
  void drain(int timeout_ms);
};

void Watches::drain(int timeout_ms) {
  std::vector<pollfd> fds;
  for (auto& w : conns) fds.push_back({w->fd(), POLLIN, 0});
  if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  const double t = now_ms();
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & POLLIN)) continue;
    for (const auto& r : conns[i]->read_some()) {
      auto it = pending.find(r.body.get("key").as_string());
      if (it == pending.end()) continue;
      if (++it->second.second == nodes) {
        lat.push_back(t - it->second.first);
        pending.erase(it);
      }
    }
  }
}

void open_watches(Cluster& c, Watches& w) {
  w.nodes = c.a.nodes;
  for (auto& n : c.nodes) {
    auto conn = std::make_unique<Conn>();
    conn->open(n.port);
    wire::Value args = wire::Value::object();
    args.set("prefix", "bench/");
    conn->send("watch", std::move(args));
    w.conns.push_back(std::move(conn));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

struct WritePhase {
  double achieved = 0;  // writes per second actually sent
  size_t missing = 0;   // writes some node never reported
  double seconds = 0;   // first write until every write applied and acknowledged
  NodeCounters before, after;
  double cpu_sum = 0, cpu_max = 0;  // per node, % of a core
};

// Writes at a steady rate, reading the watch streams in between; then waits
// (within 15 s) for every write to be applied everywhere and (within 10 s
// more) for every push to be acknowledged.
WritePhase write_phase(Cluster& c, Watches& w) {
  const Args& a = c.a;
  WritePhase p;
  p.before = sum(counters_all(c.ctl));
  std::vector<Usage> u0;
  for (auto& n : c.nodes) u0.push_back(usage(n.pid));
  std::mt19937 rng(42);
  const double interval = 1000.0 / a.rate, start = now_ms();
  for (int i = 0; i < a.writes; ++i) {
    const double due = start + i * interval;
    while (now_ms() < due) w.drain(std::max(0, static_cast<int>(due - now_ms())));
    const std::string key = "bench/" + std::to_string(i);
    wire::Value args = wire::Value::object();
    args.set("key", key);
    args.set("value", "value-" + std::to_string(i));
    w.pending[key] = {now_ms(), 0};
    c.ctl[rng() % c.ctl.size()]->send("set", std::move(args));
  }
  const double t_end = now_ms();
  while (!w.pending.empty() && now_ms() - t_end < 15'000) w.drain(50);
  p.missing = w.pending.size();
  p.achieved = a.writes / ((t_end - start) / 1000.0);
  p.after = sum(counters_all(c.ctl));
  for (const double t_ack = now_ms(); (p.after.pending > 0 || !p.after.ok) && now_ms() - t_ack < 10'000;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p.after = sum(counters_all(c.ctl));
  }
  p.seconds = (now_ms() - start) / 1000.0;
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const double cpu = 100.0 * (usage(c.nodes[i].pid).cpu_s - u0[i].cpu_s) / p.seconds;
    p.cpu_sum += cpu;
    p.cpu_max = std::max(p.cpu_max, cpu);
  }
  return p;
}

struct Idle {
  double seconds = 0;
  bool counters_ok = true;
  double cpu_sum = 0, cpu_max = 0;  // per node, % of a core
  long rss_sum = 0, rss_max = 0;    // kB
  double sent_sum = 0, sent_max = 0, recv_sum = 0, recv_max = 0;  // bytes/s per node
  double datagrams_sum = 0;                                       // sent per second, all nodes
};

// After a settling pause, --idle-seconds of nothing: each node's CPU,
// memory and traffic.
Idle idle_phase(Cluster& c) {
  const Args& a = c.a;
  std::this_thread::sleep_for(std::chrono::milliseconds(a.settle_ms));
  for (auto& conn : c.ctl) conn->drain();
  std::vector<Usage> u0;
  for (auto& n : c.nodes) u0.push_back(usage(n.pid));
  const std::vector<NodeCounters> i0 = counters_all(c.ctl);
  const double t0 = now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(a.idle_seconds * 1000)));
  const std::vector<NodeCounters> i1 = counters_all(c.ctl);
  Idle d;
  d.seconds = (now_ms() - t0) / 1000.0;
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const Usage u1 = usage(c.nodes[i].pid);
    const double cpu = 100.0 * (u1.cpu_s - u0[i].cpu_s) / a.idle_seconds;
    d.cpu_max = std::max(d.cpu_max, cpu);
    d.cpu_sum += cpu;
    d.rss_max = std::max(d.rss_max, u1.rss_kb);
    d.rss_sum += u1.rss_kb;
    d.counters_ok = d.counters_ok && i0[i].ok && i1[i].ok;
    const double s = static_cast<double>(i1[i].bytes_sent - i0[i].bytes_sent) / d.seconds;
    const double r = static_cast<double>(i1[i].bytes_received - i0[i].bytes_received) / d.seconds;
    d.sent_sum += s;
    d.recv_sum += r;
    d.sent_max = std::max(d.sent_max, s);
    d.recv_max = std::max(d.recv_max, r);
    d.datagrams_sum += static_cast<double>(i1[i].sent - i0[i].sent) / d.seconds;
  }
  return d;
}

}  // namespace

void write_latency_file(const std::string& path, const std::vector<double>& lat) {
  if (path.empty()) return;
  std::ofstream f(path);
  char b[32];
  for (const double l : lat) {
    std::snprintf(b, sizeof b, "%.3f\n", l);
    f << b;
  }
}

namespace {

// The bytes and datagrams one applied write cost, cluster-wide, less the
// idle rate over the write phase; -1 when no write was applied.
std::pair<double, double> cost_per_write(const WritePhase& p, const Idle& d, size_t applied) {
  if (applied == 0) return {-1, -1};
  const double bytes = static_cast<double>(p.after.bytes_sent - p.before.bytes_sent) - d.sent_sum * p.seconds;
  const double dgrams = static_cast<double>(p.after.sent - p.before.sent) - d.datagrams_sum * p.seconds;
  return {bytes / static_cast<double>(applied), dgrams / static_cast<double>(applied)};
}

void record(Cluster& c, const Watches& w, const WritePhase& p, const Idle& d, double detect_ms) {
  Results& r = c.res;
  const double n = static_cast<double>(c.nodes.size());
  const auto [per_write, dg_per_write] = cost_per_write(p, d, w.lat.size());
  r.count("writes", static_cast<uint64_t>(c.a.writes));
  r.num("rate", c.a.rate);
  r.num("rate_achieved", p.achieved);
  r.num("p50_ms", pct(w.lat, 0.5));
  r.num("p99_ms", pct(w.lat, 0.99));
  r.num("max_ms", w.lat.empty() ? 0.0 : *std::max_element(w.lat.begin(), w.lat.end()));
  r.count("lost", p.missing);
  r.num("write_cpu_mean_pct", p.cpu_sum / n);
  r.num("write_cpu_max_pct", p.cpu_max);
  r.num("idle_seconds", d.seconds);
  r.num("idle_cpu_mean_pct", d.cpu_sum / n);
  r.num("idle_cpu_max_pct", d.cpu_max);
  r.num("rss_mean_mb", static_cast<double>(d.rss_sum) / n / 1024.0);
  r.num("rss_max_mb", static_cast<double>(d.rss_max) / 1024.0);
  r.count("idle_counters_ok", d.counters_ok && p.before.ok && p.after.ok);
  r.num("idle_bytes_sent_per_node_s", d.sent_sum / n);
  r.num("idle_bytes_sent_per_node_s_max", d.sent_max);
  r.num("idle_bytes_received_per_node_s", d.recv_sum / n);
  r.num("idle_bytes_received_per_node_s_max", d.recv_max);
  r.num("idle_datagrams_sent_per_node_s", d.datagrams_sum / n);
  r.num("write_phase_s", p.seconds);
  r.count("write_pending_at_end", p.after.pending);
  r.num("write_bytes_sent_raw", static_cast<double>(p.after.bytes_sent - p.before.bytes_sent));
  r.num("bytes_per_write", per_write);
  r.num("datagrams_per_write", dg_per_write);
  // IPv4 (20) and UDP (8) headers on top of the datagrams' payload.
  r.num("bytes_per_write_with_headers", w.lat.empty() ? -1 : per_write + 28 * dg_per_write);
  r.num("detect_ms", detect_ms);
}

void print_row(const Cluster& c, const Watches& w, const WritePhase& p, const Idle& d, double detect_ms) {
  const Args& a = c.a;
  const double n = static_cast<double>(c.nodes.size());
  const double max = w.lat.empty() ? 0.0 : *std::max_element(w.lat.begin(), w.lat.end());
  const std::string detect = detect_ms < 0 ? "-" : std::to_string(static_cast<int>(detect_ms)) + " ms";
  std::printf("| %d | %.0f%% | %d | %.0f/s | %.2f | %.2f | %.2f | %zu | %.2f%% / %.2f%% | %.1f MB | %s |\n",
              a.nodes, a.loss * 100, a.writes, p.achieved, pct(w.lat, 0.5), pct(w.lat, 0.99), max, p.missing,
              d.cpu_sum / n, d.cpu_max, static_cast<double>(d.rss_max) / 1024.0, detect.c_str());
  if (a.counters) {
    const auto [per_write, dg_per_write] = cost_per_write(p, d, w.lat.size());
    std::fprintf(stderr,
                 "bench bytes: %.0f B and %.2f datagrams per write cluster-wide; idle per node: %.0f B/s sent, "
                 "%.0f B/s received\n",
                 per_write, dg_per_write, d.sent_sum / n, d.recv_sum / n);
  }
}

}  // namespace

int run_latency(Cluster& c) {
  Watches w;
  open_watches(c, w);
  const WritePhase p = write_phase(c, w);
  if (c.a.counters) print_counters(c.ctl, "latency");
  const Idle d = idle_phase(c);
  const double detect_ms = c.a.detect && c.a.nodes > 2 ? detect_kill(c) : -1;
  kill_all(c);
  print_row(c, w, p, d, detect_ms);
  write_latency_file(c.a.latency_file, w.lat);
  record(c, w, p, d, detect_ms);
  return p.missing == 0 ? 0 : 1;
}

}  // namespace meshkv::bench
