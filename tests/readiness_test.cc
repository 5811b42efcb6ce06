// Engine::readiness(), what GET /ready and `meshkv status --check` report:
// a node is ready when it is joined (told to join no one, or seeing a member
// alive) and would not refuse a write; asking counts and logs nothing.
#include <doctest/doctest.h>

#include "engine_util.h"
#include "node/engine.h"

using namespace meshkv;
using node::Engine;
using node::Now;

namespace {
Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

const Endpoint kA = Endpoint::v4(127, 0, 0, 1, 9101), kB = Endpoint::v4(127, 0, 0, 1, 9102);

node::Config config(const char* id) {
  node::Config c;
  c.id = id;
  return c;
}

// Moves datagrams between a and b, ticking both, for `ms` milliseconds.
void run(Engine& a, Engine& b, uint64_t from_ms, uint64_t ms) {
  for (uint64_t t = from_ms; t < from_ms + ms; t += 10) {
    a.tick(at(t));
    b.tick(at(t));
    for (int round = 0; round < 10; ++round) {
      auto da = testing::datagrams(a), db = testing::datagrams(b);
      if (da.empty() && db.empty()) break;
      for (auto& d : da) {
        if (d.to == kB) b.handle_datagram(kA, d.bytes.data(), d.bytes.size(), at(t));
      }
      for (auto& d : db) {
        if (d.to == kA) a.handle_datagram(kB, d.bytes.data(), d.bytes.size(), at(t));
      }
    }
  }
}
}  // namespace

TEST_CASE("readiness: a node with nobody to join is ready on its own") {
  Engine a(config("a"), 11, kA, 1, at(0));
  CHECK(a.readiness(at(1)) == "");
}

TEST_CASE("readiness: a node told to join is not ready until it sees a member alive") {
  node::Config c = config("a");
  c.join = {kB};
  Engine a(c, 11, kA, 1, at(0));
  a.join(c.join, at(0));
  CHECK(a.readiness(at(1)).starts_with("not joined"));
  Engine b(config("b"), 22, kB, 2, at(0));
  run(a, b, 1, 2000);
  CHECK(a.alive_members() == std::vector<std::string>{"b"});
  CHECK(a.readiness(at(2001)) == "");
}

TEST_CASE("readiness: a failing log makes a node not ready, and asking counts no refusal") {
  Engine a(config("a"), 11, kA, 1, at(0));
  a.storage_failed("no space left on device", at(1));
  for (int i = 0; i < 3; ++i) CHECK(a.readiness(at(2)) == "writes refused: no space left on device");
  CHECK(a.writes_refused() == 0);
  CHECK_FALSE(a.set("k", "v", at(3)).ok());
  CHECK(a.writes_refused() == 1);
  a.storage_recovered(at(4));
  CHECK(a.readiness(at(5)) == "");
}
