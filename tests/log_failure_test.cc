// A write-ahead log that fails (a full disk, a failed sync) refuses writes
// rather than lose them: the shell's storage (net/storage.h) over a
// store::FaultEnv, driven as the server drives it, with a peer engine that
// receives whatever leaves. At every failure point: the write the failure
// hit is withdrawn, refused, never reaches the peer and never comes back
// after a crash; acknowledged writes survive; writes resume once a snapshot
// succeeds.
#include <doctest/doctest.h>

#include <asio.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine_util.h"
#include "net/storage.h"
#include "node/engine.h"
#include "store/fault_env.h"

using namespace meshkv;
using node::Engine;
using node::Now;

namespace {
Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

const Endpoint kA = Endpoint::v4(127, 0, 0, 1, 9001), kB = Endpoint::v4(127, 0, 0, 1, 9002);

// Node a, durable on `env`, and node b in memory; datagrams move by hand.
struct Mesh {
  store::FaultEnv& env;
  asio::io_context io;
  uint64_t t = 0;
  std::unique_ptr<net::Storage> st;
  std::unique_ptr<Engine> a;
  Engine b{config("b", ""), 22, kB, 2, at(0)};
  std::vector<std::string> logs;

  static node::Config config(const char* id, const char* dir) {
    node::Config c;
    c.id = id;
    c.data_dir = dir;
    return c;
  }
  explicit Mesh(store::FaultEnv& e) : env(e) { open_a(); }
  void open_a() {
    node::Config cfg = config("a", "/d");
    auto s = net::Storage::open(io, cfg, [this](node::LogLevel, std::string l) { logs.push_back(std::move(l)); }, env);
    REQUIRE(s.ok());
    st = std::move(*s);
    a = std::make_unique<Engine>(cfg, 11 + t, kA, 1, at(t));
    REQUIRE(st->load(*a, at(t)).ok());
    st->start([this] { return at(t); }, [] {});
  }
  // What the server does after an input of a: the log records first, then
  // the datagrams, held while a sync is pending and dropped if it fails.
  // Returns the sync's outcome.
  Status settle_a() {
    auto effects = a->take_effects();
    st->append(effects);
    const bool held = st->sync_pending();
    std::vector<node::Datagram> out;
    for (auto& e : effects) {
      if (auto* d = std::get_if<node::Datagram>(&e)) out.push_back(std::move(*d));
    }
    const Status s = st->sync_now();
    if (held && !s.ok()) out.clear();
    for (auto& d : out) {
      if (d.to == kB) b.handle_datagram(kA, d.bytes.data(), d.bytes.size(), at(t));
    }
    return s;
  }
  void exchange() {
    for (int round = 0; round < 50; ++round) {
      (void)settle_a();
      auto ob = testing::datagrams(b);
      if (ob.empty()) break;
      for (auto& d : ob) {
        if (d.to == kA) a->handle_datagram(kB, d.bytes.data(), d.bytes.size(), at(t));
      }
    }
  }
  std::string value(Engine& e, const std::string& k) {
    crdt::EntryPtr x = e.get(k);
    return x && !x->tombstone ? std::string(x->value) : "";
  }
};

enum class Fault { kNoSpace, kFailSync };

void run_failure_point(Fault fault, uint64_t n) {
  CAPTURE(static_cast<int>(fault));
  CAPTURE(n);
  store::FaultEnv env;
  Mesh m(env);
  m.b.join({kA}, at(m.t));
  m.exchange();
  REQUIRE(m.b.member_state("a") == "alive");

  if (fault == Fault::kNoSpace) env.no_space(n, 5);
  else env.fail_sync(n);

  std::map<std::string, std::string> acked;  // key -> last acknowledged value
  std::set<std::string> refused;             // values never acknowledged
  size_t refusals = 0;
  for (int i = 0; i < 8; ++i) {
    ++m.t;
    const std::string key = "k" + std::to_string(i % 3), value = "v" + std::to_string(i);
    auto w = m.a->set(key, value, at(m.t));
    if (!w.ok()) {
      // Refused up front while the log fails.
      CHECK(w.status().code() == Code::kUnavailable);
      CHECK(w.status().message().find("write refused: a: ") == 0);
      refused.insert(value);
      ++refusals;
      continue;
    }
    const Status s = m.settle_a();
    if (s.ok()) {
      acked[key] = value;
    } else {
      CHECK(s.message().find("write refused: a: ") == 0);
      CHECK(m.st->refusing());
      refused.insert(value);
      ++refusals;
    }
    // What a shows is what it acknowledged: a refused write is withdrawn.
    CHECK(m.value(*m.a, key) == (acked.count(key) ? acked[key] : ""));
  }
  CHECK(refusals >= 1);
  CHECK(m.a->writes_refused() + 1 >= refusals);
  m.exchange();
  for (int k = 0; k < 3; ++k) {
    const std::string key = "k" + std::to_string(k);
    CHECK(m.value(m.b, key) == (acked.count(key) ? acked[key] : ""));  // nothing refused left a
    CHECK(refused.count(m.value(m.b, key)) == 0);
  }

  // The recovery snapshot after 0.5 s: writes are accepted again.
  m.io.run_for(std::chrono::milliseconds(800));
  REQUIRE_FALSE(m.st->refusing());
  ++m.t;
  REQUIRE(m.a->set("after", "x", at(m.t)).ok());
  REQUIRE(m.settle_a().ok());
  acked["after"] = "x";

  // A power loss: every acknowledged write is there, no refused one.
  m.st.reset();
  m.a.reset();
  env.crash();
  m.t += 10;
  m.open_a();
  for (const auto& [key, value] : acked) CHECK(m.value(*m.a, key) == value);
  for (int k = 0; k < 3; ++k) CHECK(refused.count(m.value(*m.a, "k" + std::to_string(k))) == 0);
}
}  // namespace

TEST_CASE("log failure: a full disk at any append refuses the write it hit, and nothing refused survives") {
  for (uint64_t n = 1; n <= 6; ++n) run_failure_point(Fault::kNoSpace, n);
}

TEST_CASE("log failure: a failed sync at any point refuses the writes it covered, and nothing refused survives") {
  for (uint64_t n = 1; n <= 6; ++n) run_failure_point(Fault::kFailSync, n);
}

TEST_CASE("log failure: a batch of writes under one failed sync is withdrawn whole, earlier values back") {
  store::FaultEnv env;
  Mesh m(env);
  m.b.join({kA}, at(m.t));
  m.exchange();
  ++m.t;
  REQUIRE(m.a->set("k", "old", at(m.t)).ok());
  REQUIRE(m.settle_a().ok());
  m.exchange();
  env.fail_sync(1);
  ++m.t;
  // Three writes, two to one key, before the one sync that fails.
  REQUIRE(m.a->set("k", "new1", at(m.t)).ok());
  REQUIRE(m.a->set("k", "new2", at(m.t)).ok());
  REQUIRE(m.a->del("k", at(m.t)).ok());
  REQUIRE(m.a->set("fresh", "f", at(m.t)).ok());
  CHECK_FALSE(m.settle_a().ok());
  CHECK(m.value(*m.a, "k") == "old");
  CHECK(m.a->get("fresh") == nullptr);
  m.exchange();
  m.t += 2000;  // retransmission deadlines pass: nothing withdrawn is sent again
  m.a->tick(at(m.t));
  m.exchange();
  CHECK(m.value(m.b, "k") == "old");
  CHECK(m.b.get("fresh") == nullptr);
  CHECK(m.a->pending_pushes() == 0);
}

TEST_CASE("log failure: a crash while writes are refused brings back no refused write") {
  store::FaultEnv env;
  Mesh m(env);
  ++m.t;
  REQUIRE(m.a->set("k", "acked", at(m.t)).ok());
  REQUIRE(m.settle_a().ok());
  env.no_space(1, 3);
  ++m.t;
  REQUIRE(m.a->set("k", "refused", at(m.t)).ok());
  REQUIRE_FALSE(m.settle_a().ok());
  // The recovery snapshot's second append fails: whatever it wrote first is
  // synced, and the power fails before another attempt.
  env.no_space(2);
  m.io.run_for(std::chrono::milliseconds(700));
  m.st.reset();
  m.a.reset();
  env.crash();
  m.t += 10;
  m.open_a();
  CHECK(m.value(*m.a, "k") == "acked");
}
