#include "sim/sim.h"

#include "node/control.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "wire/codec.h"

namespace meshkv::sim {

namespace {
constexpr uint64_t kWallEpochMs = 1'700'000'000'000;

Endpoint address_of(size_t i) {
  return Endpoint::v4(10, static_cast<uint8_t>(i / 250), static_cast<uint8_t>(i % 250 + 1), 1, 7946);
}
}  // namespace

Sim::Sim(Options opts) : opts_(std::move(opts)), rng_(opts_.seed) {
  nodes_.resize(opts_.nodes);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].addr = address_of(i);
    if (opts_.max_clock_skew_ms > 0) {
      nodes_[i].skew_ms = static_cast<int64_t>(rng_() % (2 * opts_.max_clock_skew_ms + 1)) -
                          opts_.max_clock_skew_ms;
    }
    start(i);
  }
}

Sim::~Sim() = default;

node::Now Sim::now_of(size_t i) const {
  const int64_t wall = static_cast<int64_t>(kWallEpochMs + now_us_ / 1000) + nodes_[i].skew_ms;
  return node::Now{now_us_, static_cast<uint64_t>(wall)};
}

void Sim::start(size_t i, const node::Snapshot* state) {
  Slot& s = nodes_[i];
  node::Config cfg = opts_.config;
  cfg.id = "n" + std::to_string(i);
  cfg.listen = s.addr;
  if (opts_.config_of) opts_.config_of(i, cfg);
  uint64_t uid = 0;
  while (uid == 0) uid = rng_();
  s.engine = std::make_unique<node::Engine>(cfg, uid, s.addr, rng_(), now_of(i));
  // A decoded snapshot (nothing pending): loading it cannot fail.
  if (state) (void)s.engine->load(*state, now_of(i));
  if (opts_.security) {
    node::Security sec = *opts_.security;
    if (opts_.security_of) opts_.security_of(i, sec);
    s.engine->secure(std::move(sec));
  }
  s.up = true;
  s.paused = false;
  s.held.clear();
  if (nodes_.size() > 1) {
    const size_t seed = i == 0 ? 1 : 0;
    s.engine->join({address_of(seed)}, now_of(i));
  }
  after_input(i);
}

void Sim::crash(size_t i) {
  nodes_[i].up = false;
  nodes_[i].engine->take_effects();  // lost with the process
  nodes_[i].disk = nodes_[i].engine->snapshot();
}

void Sim::restart(size_t i) { start(i); }

void Sim::restart_durable(size_t i) {
  std::optional<node::Snapshot> disk = std::move(nodes_[i].disk);
  start(i, disk ? &*disk : nullptr);
}

void Sim::pause(size_t i) { nodes_[i].paused = true; }

void Sim::resume(size_t i) {
  Slot& s = nodes_[i];
  if (!s.paused) return;
  s.paused = false;
  if (!s.up) return;
  auto held = std::exchange(s.held, {});
  for (auto& [from, bytes] : held) {
    s.engine->handle_datagram(from, bytes.data(), bytes.size(), now_of(i));
    after_input(i);
  }
  s.engine->tick(now_of(i));
  after_input(i);
}

void Sim::partition(const std::set<size_t>& side) { partition_ = side; }
void Sim::heal() { partition_.clear(); }

bool Sim::linked(size_t a, size_t b) const {
  return partition_.count(a) == partition_.count(b);
}

size_t Sim::index_of(const Endpoint& e) const {
  const size_t i = static_cast<size_t>(e.ip[1]) * 250 + e.ip[2] - 1;
  return i < nodes_.size() && nodes_[i].addr == e ? i : nodes_.size();
}

void Sim::schedule_tick(size_t i, uint64_t at_us) {
  Slot& s = nodes_[i];
  const uint64_t at = std::max(at_us, now_us_);
  if (s.tick_at == at) return;
  s.tick_at = at;
  events_.push(Event{at, ++order_, i, {}, {}});
}

void Sim::deliver(size_t from, node::Datagram& d) {
  std::uniform_real_distribution<double> u(0, 1);
  if (d.bytes.size() > opts_.config.mtu) ++stats_.oversized;
  const size_t to = index_of(d.to);
  if (to >= nodes_.size() || !linked(from, to) || u(rng_) < opts_.faults.drop) {
    ++stats_.dropped;
    return;
  }
  const int copies = u(rng_) < opts_.faults.dup ? 2 : 1;
  stats_.duplicated += static_cast<uint64_t>(copies - 1);
  for (int c = 0; c < copies; ++c) {
    const uint64_t jitter = opts_.faults.jitter_us ? rng_() % opts_.faults.jitter_us : 0;
    events_.push(Event{now_us_ + opts_.faults.delay_us + jitter, ++order_, to, nodes_[from].addr, d.bytes});
  }
}

void Sim::after_input(size_t i) {
  for (auto& e : nodes_[i].engine->take_effects()) {
    std::visit(node::Overloaded{
                   [&](node::Datagram& d) { deliver(i, d); },
                   [&](node::LogLine& l) {
                     if (on_log) on_log(i, l);
                   },
                   [&](node::MemberEvent& m) {
                     if (on_member) on_member(i, m);
                   },
                   [](node::Change&) {},             // nobody watches simulated nodes
                   [](node::LogOp&) {},              // simulated nodes keep no data directory
                   [](node::CompactionRequest) {},  // nor snapshots
                   [&](node::Timer t) { schedule_tick(i, t.at_us); },
                   [&](node::Reply& r) {
                     if (on_reply) on_reply(i, r);
                     // Bounded as a client's connections would be: the oldest go.
                     if (nodes_[i].replies.size() >= 4096) nodes_[i].replies.erase(nodes_[i].replies.begin());
                     nodes_[i].replies[r.id] = std::move(r.resp);
                   },
               },
               e);
  }
}

void Sim::run_until(uint64_t t_us) {
  while (!events_.empty() && events_.top().at <= t_us) {
    Event ev = events_.top();
    events_.pop();
    now_us_ = std::max(now_us_, ev.at);
    Slot& s = nodes_[ev.to];
    if (!s.up) continue;
    if (s.paused) {
      if (ev.bytes.empty()) {
        s.tick_at = 0;  // no timer runs; resume() ticks
      } else {
        if (s.held.size() >= kHeldMax) s.held.pop_front();
        s.held.emplace_back(ev.from, std::move(ev.bytes));
      }
      continue;
    }
    if (ev.bytes.empty()) {
      if (ev.at != s.tick_at) continue;  // superseded by a later schedule
      s.tick_at = 0;
      s.engine->tick(now_of(ev.to));
    } else {
      const size_t from = index_of(ev.from);
      if (from < nodes_.size() && !linked(from, ev.to)) {  // cut while in flight
        ++stats_.dropped;
        continue;
      }
      ++stats_.delivered;
      stats_.bytes += ev.bytes.size();
      s.engine->handle_datagram(ev.from, ev.bytes.data(), ev.bytes.size(), now_of(ev.to));
    }
    after_input(ev.to);
  }
  now_us_ = std::max(now_us_, t_us);
}

bool Sim::run_until(const std::function<bool()>& pred, uint64_t max_us, uint64_t step_us) {
  const uint64_t end = now_us_ + max_us;
  while (now_us_ < end) {
    if (pred()) return true;
    run_until(std::min(end, now_us_ + step_us));
  }
  return pred();
}

Result<crdt::KeyedEntry> Sim::set(size_t i, const std::string& key, const std::string& value) {
  auto r = nodes_[i].engine->set(key, value, now_of(i));
  after_input(i);
  return r;
}

wire::CtlResponse Sim::control(size_t i, const wire::CtlRequest& req, uint64_t* deferred) {
  uint64_t id = 0;
  wire::CtlResponse r = node::handle_control(*nodes_[i].engine, req, now_of(i), &id);
  if (deferred != nullptr) *deferred = id;
  after_input(i);
  return r;
}

std::optional<wire::CtlResponse> Sim::reply(size_t i, uint64_t id) {
  auto it = nodes_[i].replies.find(id);
  if (it == nodes_[i].replies.end()) return std::nullopt;
  wire::CtlResponse r = std::move(it->second);
  nodes_[i].replies.erase(it);
  return r;
}

Result<crdt::KeyedEntry> Sim::del(size_t i, const std::string& key) {
  auto r = nodes_[i].engine->del(key, now_of(i));
  after_input(i);
  return r;
}

Result<wire::Value> Sim::forget(size_t i, const std::string& name) {
  auto r = nodes_[i].engine->forget(name, now_of(i));
  after_input(i);
  return r;
}

void Sim::join(size_t i, size_t j) {
  nodes_[i].engine->join({nodes_[j].addr}, now_of(i));
  after_input(i);
}

void Sim::inject(size_t from, size_t to, wire::Message msg) {
  wire::Envelope env;
  env.sender = nodes_[from].engine->uid();
  env.msg = std::move(msg);
  events_.push(Event{now_us_, ++order_, to, nodes_[from].addr, node::with_checksum(wire::encode(env))});
}

bool Sim::converged() const {
  const crdt::Replica* first = nullptr;
  for (const auto& s : nodes_) {
    if (!s.up || s.paused) continue;
    const crdt::Replica& r = s.engine->replica();
    if (!first) {
      first = &r;
      continue;
    }
    // Coverage, not rows: a retired origin stands for its final seq
    // (crdt/version_vector.h), and nodes retire one at slightly different times.
    auto covered = [](const crdt::Replica& x) {
      crdt::VersionVector v = x.vv();
      for (const auto& [o, f] : x.context().retired()) v.raise(o, f);
      return v;
    };
    if (!(covered(r) == covered(*first)) || r.map().size() != first->map().size()) return false;
    bool same = true;
    first->map().for_each([&](std::string_view k, const crdt::EntryView& e) {
      crdt::EntryPtr o = r.map().find(k);
      if (same && (!o || !crdt::same_write(*o, e))) same = false;
    });
    if (!same) return false;
  }
  return true;
}

bool Sim::membership_converged() const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].up) continue;
    for (size_t j = 0; j < nodes_.size(); ++j) {
      if (i == j || !nodes_[j].up) continue;
      if (nodes_[i].engine->member_state("n" + std::to_string(j)) != "alive") return false;
    }
  }
  return true;
}

}  // namespace meshkv::sim
