// Membership that forgets, at the engine boundary: the --reap-after setting,
// and the tables that datagrams from anyone fill, which must stay bounded.
// (Reaping, forget and gone members across a mesh: tests/sim_test.cc.)
#include <doctest/doctest.h>

#include <string>

#include "engine_util.h"
#include "node/engine.h"
#include "wire/codec.h"

using namespace meshkv;
using node::Now;

namespace {
constexpr uint64_t kDayMs = 86'400'000;

Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

// A datagram as process `sender` at `from` would send it (unsealed mesh).
void deliver(node::Engine& e, const Endpoint& from, uint64_t sender, wire::Message msg, Now now) {
  wire::Envelope env;
  env.sender = sender;
  env.msg = std::move(msg);
  const wire::Bytes b = node::with_checksum(wire::encode(env));
  e.handle_datagram(from, b.data(), b.size(), now);
}

Endpoint addr_of(uint64_t i) {
  return Endpoint::v4(10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i),
                      7946);
}

wire::Value membership(node::Engine& e, Now now) { return e.status(now).get("membership"); }
}  // namespace

TEST_CASE("config: --reap-after defaults to the greater of a day and the tombstone grace") {
  node::Config c;
  CHECK(c.reap_after() == kDayMs);
  c.tombstone_grace_ms = 3 * kDayMs;
  CHECK(c.reap_after() == 3 * kDayMs);
  CHECK(c.validate().ok());
  c.reap_after_ms = 5 * kDayMs;
  CHECK(c.reap_after() == 5 * kDayMs);
  CHECK(c.validate().ok());
}

TEST_CASE("config: --reap-after below the tombstone grace is refused, naming both") {
  node::Config c;
  c.tombstone_grace_ms = 10'000;
  c.reap_after_ms = 9'999;
  const Status s = c.validate();
  REQUIRE_FALSE(s.ok());
  // check_config (cli/) maps the leading field name to the flag or the file line.
  CHECK(s.message().rfind("reap_after_ms: 9999 is below the tombstone grace period (10000 ms)", 0) == 0);
  CHECK(s.message().find("give at least 10000") != std::string::npos);
  c.reap_after_ms = 10'000;  // equal is fine
  CHECK(c.validate().ok());
  c.reap_after_ms = 0;  // explicit 0 is not "the default": refused too
  CHECK_FALSE(c.validate().ok());
  c.reap_after_ms = 3651 * kDayMs;
  const Status big = c.validate();
  REQUIRE_FALSE(big.ok());
  CHECK(big.message().rfind("reap_after_ms: at most", 0) == 0);
}

TEST_CASE("membership: names of past processes are bounded; members' stay resolvable") {
  node::Config cfg;
  cfg.id = "a";
  node::Engine a(cfg, 1, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  // 50 members, each restarting (a new process, a newer incarnation) 400
  // times: 20,000 processes a node would otherwise remember forever.
  for (uint64_t i = 0; i < 20'000; ++i) {
    const uint64_t uid = 1000 + i;
    wire::Members m;
    m.updates.push_back({"m" + std::to_string(i % 50), uid, addr_of(i % 50), i, wire::MemberState::kAlive});
    deliver(a, addr_of(i % 50), uid, m, at(i));
    testing::drain(a);
  }
  const wire::Value v = membership(a, at(20'000));
  CHECK(v.get("process_names").as_int() <= 8192);
  CHECK(v.get("table_drops").as_int() > 0);
  for (int i = 0; i < 50; ++i) CHECK(a.member_state("m" + std::to_string(i)) == "alive");
  // The latest process of each is still known by its uid: its writes are
  // named, and its acknowledgements found.
  CHECK(a.origin_name(1000 + 19'999) == "m49");
}

TEST_CASE("membership: gone members are bounded, oldest evicted first") {
  node::Config cfg;
  cfg.id = "a";
  node::Engine a(cfg, 1, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  // "x left" for 5,000 names never seen: remembered as gone, not as members.
  for (uint64_t i = 0; i < 5'000; ++i) {
    wire::Members m;
    m.updates.push_back({"x" + std::to_string(i), 100'000 + i, addr_of(i), 1, wire::MemberState::kLeft});
    deliver(a, addr_of(7), 7, m, at(i));
    testing::drain(a);
  }
  const wire::Value v = membership(a, at(5'000));
  CHECK(v.get("gone").as_int() == 4096);
  CHECK(v.get("table_drops").as_int() >= 5'000 - 4096);
  CHECK(a.peers(at(5'000)).get("members").as_list().empty());
  // The newest are the ones kept: "x4999 alive" at the incarnation it left
  // at stays out, "x0 alive" (evicted) comes in.
  wire::Members back;
  back.updates.push_back({"x4999", 100'000 + 4999, addr_of(4999), 1, wire::MemberState::kAlive});
  back.updates.push_back({"x0", 100'000, addr_of(0), 1, wire::MemberState::kAlive});
  deliver(a, addr_of(7), 7, back, at(5'001));
  CHECK(a.member_state("x4999").empty());
  CHECK(a.member_state("x0") == "alive");
}

TEST_CASE("membership: introductions to unknown processes leave no growing table") {
  node::Config cfg;
  cfg.id = "a";
  node::Engine a(cfg, 1, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  // 10,000 unknown processes, each sending one ping, 100 a second.
  size_t joins = 0;
  for (uint64_t i = 0; i < 10'000; ++i) {
    deliver(a, addr_of(i), 500'000 + i, wire::Ping{i, 0, {}, std::nullopt}, at(i * 10));
    for (const auto& d : testing::drain(a).datagrams) {
      auto env = wire::decode(d.bytes.data(), d.bytes.size() - node::kChecksumBytes);
      if (env.ok() && std::holds_alternative<wire::Join>(env->msg)) ++joins;
    }
  }
  CHECK(membership(a, at(100'000)).get("introductions").as_int() <= 16);
  CHECK(joins <= 100'000 / 200 + 1);  // at most five introductions a second
  CHECK(joins >= 100);
}

TEST_CASE("membership: statements waiting to be gossiped are bounded") {
  node::Config cfg;
  cfg.id = "a";
  node::Engine a(cfg, 1, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  // Alone (nobody to gossip to, so nothing drains), a node hears 20,000
  // statements about names it never knew, every state in turn: forged, on
  // an unsealed mesh, they cost nothing to send. Each used to wait to be
  // gossiped, in a list searched on every new one.
  for (uint64_t i = 0; i < 20'000; ++i) {
    wire::Members m;
    m.updates.push_back({"y" + std::to_string(i), 200'000 + i, addr_of(i), 0, static_cast<wire::MemberState>(i % 4)});
    deliver(a, addr_of(7), 7, m, at(i / 100));
    testing::drain(a);
  }
  const wire::Value v = membership(a, at(200));
  CHECK(v.get("gossip_queue").as_int() <= 1024);
  CHECK(v.get("gossip_drops").as_int() >= 4096 + 5000 - 1024);  // members added, and gone, each queued once
  CHECK(v.get("unverified").as_int() == 4096);  // the member table, at its bound: none answered a probe
  CHECK(v.get("gone").as_int() <= 4096);
}
