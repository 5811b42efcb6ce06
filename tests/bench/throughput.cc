// --throughput S: replicated write throughput. --clients closed-loop
// connections per node, each sending its next `set` (or, with --batch-size
// K > 1, an `mset` of K writes, what `meshkv set --batch` sends) as soon as
// the previous one is acknowledged, for S seconds (with --pipeline P, each
// keeps P requests in flight and writes the ones it owes in one call); then the time until every
// node holds every acknowledged write. With --incr every request is an
// `incr` of one counter, and replicated means every node reads the total.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

namespace {

struct Load {
  const Args& a;
  uint64_t next_key = 0;
  uint64_t acked = 0;

  void send_one(Conn& c);
};

void Load::send_one(Conn& c) {
  wire::Value args = wire::Value::object();
  if (a.incr) {
    args.set("key", "tp/hits");
    args.set("by", 1);
    c.queue("incr", std::move(args));
    return;
  }
  if (a.batch_size <= 1) {
    args.set("key", "tp/" + std::to_string(next_key++));
    args.set("value", "0123456789abcdef");
    c.queue("set", std::move(args));
    return;
  }
  wire::Value entries = wire::Value::list();
  for (int k = 0; k < a.batch_size; ++k) {
    wire::Value kv = wire::Value::list();
    kv.push("tp/" + std::to_string(next_key++));
    kv.push("0123456789abcdef");
    entries.push(std::move(kv));
  }
  args.set("entries", std::move(entries));
  c.queue("mset", std::move(args));
}

// Keeps every connection, each with one request out, busy until `end`.
void drive(Load& load, Conns& conns, double end) {
  // epoll rather than poll: the driver shares the machine with the nodes,
  // and poll's walk over every connection per wake-up cost it a fifth of
  // the machine's time.
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < conns.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i]->fd(), &ev);
  }
  std::vector<epoll_event> ready(std::max<size_t>(1, conns.size()));
  while (now_ms() < end) {
    const int n = epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 50);
    for (int k = 0; k < n; ++k) {
      Conn& c = *conns[ready[static_cast<size_t>(k)].data.u64];
      for (const auto& r : c.read_some()) {
        if (r.code == wire::kCtlOk) {
          load.acked += load.a.batch_size <= 1 ? 1 : static_cast<uint64_t>(r.body.get("written").as_int());
        }
        if (now_ms() < end) load.send_one(c);
      }
      c.flush();
    }
  }
  close(ep);
}

// The time until every node's status shows `acked` keys, -1 if not within
// 180 s.
// With --incr: until every node's counter reads `acked` or more.
double caught_up_ms(Conns& ctl, uint64_t acked, bool incr) {
  const double t0 = now_ms();
  while (now_ms() - t0 < 180'000) {
    bool all = true;
    for (auto& c : ctl) {
      if (incr) {
        wire::Value args = wire::Value::object();
        args.set("key", "tp/hits");
        auto g = c->call("get", std::move(args), 5000);
        // At least: increments still in flight when the clients stopped
        // reading count too, unacknowledged.
        if (!g || g->code != wire::kCtlOk || std::stoull(g->body.get("value").as_string()) < acked) all = false;
        continue;
      }
      auto st = c->call("status", wire::Value::object(), 5000);
      if (!st || static_cast<uint64_t>(st->body.get("keys").as_int()) < acked) all = false;
    }
    if (all) return now_ms() - t0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

void record(Cluster& c, uint64_t acked, double secs, double replicated_ms) {
  const Args& a = c.a;
  Results& r = c.res;
  r.count("clients", static_cast<uint64_t>(a.clients * a.nodes));
  r.num("seconds", secs);
  r.count("acked", acked);
  r.num("writes_per_s", static_cast<double>(acked) / secs);
  r.num("caught_up_ms", replicated_ms);
  // Replicated: every write everywhere, per second from the first write
  // until the last node caught up; and what the mesh did to get there.
  if (replicated_ms >= 0) r.num("replicated_per_s", static_cast<double>(acked) / (secs + replicated_ms / 1000.0));
  const NodeCounters n = sum(counters_all(c.ctl));
  r.count("datagrams_sent", n.sent);
  r.count("datagrams_received", n.received);
  r.count("retransmits", n.retransmits);
  r.count("batch_size", static_cast<uint64_t>(std::max(1, a.batch_size)));
  r.count("pipeline", static_cast<uint64_t>(std::max(1, a.pipeline)));
}

}  // namespace

int run_throughput(Cluster& c) {
  const Args& a = c.a;
  Conns conns;
  for (const auto& n : c.nodes) {
    for (int k = 0; k < a.clients; ++k) {
      auto conn = std::make_unique<Conn>();
      if (conn->open(n.port)) conns.push_back(std::move(conn));
    }
  }
  Load load{a};
  for (auto& conn : conns) {
    for (int k = 0; k < std::max(1, a.pipeline); ++k) load.send_one(*conn);
    conn->flush();
  }
  const double start = now_ms();
  drive(load, conns, start + a.throughput * 1000);
  const double secs = (now_ms() - start) / 1000.0;
  const double replicated_ms = caught_up_ms(c.ctl, load.acked, a.incr);
  const std::string when =
      replicated_ms < 0 ? "not within 180 s" : std::to_string(static_cast<int>(replicated_ms)) + " ms";
  std::printf("| %d | %s | %d | %.0f | %.0f | %s |\n", a.nodes,
              a.data_dir.empty() ? "in-memory" : (a.sync.empty() ? "always" : a.sync.c_str()), a.clients * a.nodes,
              static_cast<double>(load.acked), static_cast<double>(load.acked) / secs, when.c_str());
  record(c, load.acked, secs, replicated_ms);
  if (a.counters) print_counters(c.ctl, "throughput");
  return 0;
}

}  // namespace meshkv::bench
