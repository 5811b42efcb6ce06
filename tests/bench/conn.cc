// Control connections of the benchmark: net::Connection, numbered requests,
// and asking every node at once.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "bench/converge.h"

namespace meshkv::bench {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool Conn::open(int port) {
  auto ep = Endpoint::parse("127.0.0.1:" + std::to_string(port));
  if (!ep) return false;
  auto c = net::Connection::open(*ep);
  if (!c.ok()) {
    // A node that is not up yet is retried by the caller; a refused key is
    // the run's mistake, said once.
    static bool said = false;
    if (c.status().code() == Code::kPermissionDenied && !said) {
      std::fprintf(stderr, "bench: the node refused the sealed handshake: %s\n", c.status().message().c_str());
      said = true;
    }
    return false;
  }
  c_.emplace(std::move(*c));
  closed_ = false;
  return true;
}

bool Conn::send(const std::string& op, wire::Value args) {
  if (!c_ || closed_) return false;
  if (!c_->send(wire::CtlRequest{++id_, op, std::move(args)}).ok()) closed_ = true;
  return !closed_;
}

void Conn::queue(const std::string& op, wire::Value args) {
  queued_.push_back(wire::CtlRequest{++id_, op, std::move(args)});
}

bool Conn::flush() {
  if (!c_ || closed_) return false;
  if (!c_->send(std::span<const wire::CtlRequest>(queued_)).ok()) closed_ = true;
  queued_.clear();
  return !closed_;
}

std::vector<wire::CtlResponse> Conn::read_some() {
  std::vector<wire::CtlResponse> out;
  if (!c_ || closed_) return out;
  if (Status s = c_->receive(out); !s.ok()) {
    if (s.code() == Code::kCorruption) std::fprintf(stderr, "bench: %s\n", s.message().c_str());
    closed_ = true;
  }
  return out;
}

std::optional<wire::CtlResponse> Conn::call(const std::string& op, wire::Value args, int timeout_ms) {
  if (!send(op, std::move(args))) return std::nullopt;
  const double end = now_ms() + timeout_ms;
  while (now_ms() < end && !closed_) {
    pollfd p{fd(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    for (auto& r : read_some()) {
      if (r.req_id == id_) return std::move(r);
    }
  }
  return std::nullopt;
}

void Conn::drain() {
  if (!c_) return;
  pollfd p{fd(), POLLIN, 0};
  // Bounded by what the node has sent: each round reads at least a byte.
  for (int round = 0; round < 100'000 && !closed_ && poll(&p, 1, 0) > 0; ++round) read_some();
}

namespace {
// Collects the answers to the requests call_all() sent: `waiting` marks the
// connections still owing one.
void collect(Conns& conns, std::vector<bool>& waiting, size_t left, int timeout_ms,
             std::vector<std::optional<wire::CtlResponse>>& out) {
  const double end = now_ms() + timeout_ms;
  while (left > 0 && now_ms() < end) {
    std::vector<pollfd> fds;
    std::vector<size_t> idx;
    for (size_t i = 0; i < conns.size(); ++i) {
      if (waiting[i] && !conns[i]->closed()) {
        fds.push_back({conns[i]->fd(), POLLIN, 0});
        idx.push_back(i);
      }
    }
    if (fds.empty()) break;
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const size_t i = idx[k];
      for (auto& r : conns[i]->read_some()) {
        if (waiting[i] && r.req_id == conns[i]->last_id()) {
          out[i] = std::move(r);
          waiting[i] = false;
          --left;
        }
      }
      if (waiting[i] && conns[i]->closed()) {
        waiting[i] = false;
        --left;
      }
    }
  }
}
}  // namespace

std::vector<std::optional<wire::CtlResponse>> call_all(Conns& conns, const std::string& op, int timeout_ms) {
  std::vector<std::optional<wire::CtlResponse>> out(conns.size());
  std::vector<bool> waiting(conns.size(), false);
  size_t left = 0;
  for (size_t i = 0; i < conns.size(); ++i) {
    if (conns[i]->send(op, wire::Value::object())) {
      waiting[i] = true;
      ++left;
    }
  }
  collect(conns, waiting, left, timeout_ms, out);
  return out;
}

std::vector<NodeCounters> counters_all(Conns& conns) {
  std::vector<NodeCounters> out;
  for (auto& r : call_all(conns, "status")) {
    NodeCounters c;
    if (r) {
      const wire::Value& d = r->body.get("datagrams");
      c.ok = true;
      c.sent = static_cast<uint64_t>(d.get("sent").as_int());
      c.received = static_cast<uint64_t>(d.get("received").as_int());
      c.bytes_sent = static_cast<uint64_t>(d.get("bytes_sent").as_int());
      c.bytes_received = static_cast<uint64_t>(d.get("bytes_received").as_int());
      c.pending = static_cast<uint64_t>(r->body.get("pending_retransmissions").as_int());
      c.keys = static_cast<uint64_t>(r->body.get("keys").as_int());
      c.retransmits = static_cast<uint64_t>(d.get("retransmits").as_int());
    }
    out.push_back(c);
  }
  return out;
}

NodeCounters sum(const std::vector<NodeCounters>& v) {
  NodeCounters s;
  s.ok = true;
  for (const auto& c : v) {
    s.ok = s.ok && c.ok;
    s.sent += c.sent;
    s.received += c.received;
    s.bytes_sent += c.bytes_sent;
    s.bytes_received += c.bytes_received;
    s.pending += c.pending;
    s.retransmits += c.retransmits;
  }
  return s;
}

void print_counters(Conns& ctl, const char* label) {
  static const char* const kNames[] = {"sent", "received", "bytes_sent", "retransmits", "duplicates",
                                       "anti_entropy_rounds", "chunks_received", "dropped", "push_gave_up", "queue_drops", "awaiting_identity",
                                       "unknown_sender", "replayed", "auth_failed", "stale_session"};
  std::map<std::string, uint64_t> total;
  for (auto& c : ctl) {
    auto st = c->call("status", wire::Value::object(), 5000);
    if (!st) continue;
    const wire::Value& d = st->body.get("datagrams");
    for (const char* k : kNames) total[k] += static_cast<uint64_t>(d.get(k).as_int());
  }
  std::fprintf(stderr, "bench counters (%s, %s, all nodes):", label, net::has_client_key() ? "sealed" : "unsealed");
  for (const char* k : kNames) std::fprintf(stderr, " %s=%llu", k, static_cast<unsigned long long>(total[k]));
  std::fprintf(stderr, "\n");
}

std::string state_of(const wire::CtlResponse& r, const std::string& name) {
  for (const auto& m : r.body.get("members").as_list()) {
    if (m.get("name").as_string() == name) return m.get("state").as_string();
  }
  return "";
}

}  // namespace meshkv::bench
