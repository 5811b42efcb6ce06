// The engine's output: the effect queue and the timers behind its Timer.
#include <doctest/doctest.h>

#include <string>

#include "engine_util.h"
#include "node/engine.h"
#include "node/outbox.h"
#include "node/timers.h"
#include "wire/codec.h"

using namespace meshkv;
using node::Engine;
using node::Now;
using node::TimerKind;
using testing::drain;

namespace {
Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

node::Config config(const char* id) {
  node::Config c;
  c.id = id;
  return c;
}

size_t pushes(const std::vector<node::Datagram>& ds) {
  size_t n = 0;
  for (const auto& d : ds) {
    auto h = wire::peek_header(d.bytes.data(), d.bytes.size());
    n += h.ok() && h->type == wire::MsgType::kPush;
  }
  return n;
}
}  // namespace

TEST_CASE("timers: the earliest timer set wins; moved and cancelled ones are skipped") {
  node::Timers t;
  CHECK_FALSE(t.next().has_value());
  t.set(TimerKind::kProbe, 0, 500);
  t.set(TimerKind::kSuspicion, 7, 300);
  t.set(TimerKind::kSuspicion, 8, 400);
  CHECK(t.next()->at_us == 300);
  CHECK(t.next()->kind == TimerKind::kSuspicion);
  t.set(TimerKind::kSuspicion, 7, 900);  // moved later
  CHECK(t.next()->at_us == 400);
  t.cancel(TimerKind::kSuspicion, 8);
  CHECK(t.next()->at_us == 500);
  CHECK(t.next()->kind == TimerKind::kProbe);
  t.set(TimerKind::kProbe, 0, std::nullopt);
  CHECK(t.next()->at_us == 900);
  t.set(TimerKind::kSuspicion, 7, 100);  // moved earlier
  CHECK(t.next()->at_us == 100);
}

TEST_CASE("outbox: beyond 65536 pending changes the oldest are dropped and counted") {
  node::Outbox out;
  out.log(node::LogLevel::kInfo, "first");
  for (int i = 0; i < 65538; ++i) out.change({"k" + std::to_string(i), {}, false});
  out.compact();
  out.compact();  // one request pending at most
  auto fx = out.take({123, TimerKind::kProbe});
  CHECK(out.changes_dropped() == 2);
  REQUIRE(fx.size() == 1 + 65536 + 1 + 1);
  CHECK(std::holds_alternative<node::LogLine>(fx.front()));
  CHECK(std::get<node::Change>(fx[1]).key == "k2");  // k0 and k1 dropped
  CHECK(std::holds_alternative<node::CompactionRequest>(fx[fx.size() - 2]));
  CHECK(std::get<node::Timer>(fx.back()).at_us == 123);
  CHECK(out.take({5, TimerKind::kProbe}).size() == 1);  // only the Timer
}

TEST_CASE("engine: every take ends with the Timer of the next tick, and a join reports member events") {
  Engine a(config("a"), 11, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  Engine b(config("b"), 22, Endpoint::v4(127, 0, 0, 1, 9002), 2, at(0));
  auto fx = a.take_effects();
  REQUIRE(!fx.empty());
  const auto* timer = std::get_if<node::Timer>(&fx.back());
  REQUIRE(timer != nullptr);
  CHECK(timer->at_us <= at(0).mono_us + a.config().probe_interval_ms * 1000);
  b.join({a.address()}, at(1));
  std::vector<node::MemberEvent> seen;
  for (int round = 0; round < 10; ++round) {
    for (auto& d : testing::datagrams(b)) a.handle_datagram(b.address(), d.bytes.data(), d.bytes.size(), at(1));
    auto fa = drain(a);
    seen.insert(seen.end(), fa.members.begin(), fa.members.end());
    for (auto& d : fa.datagrams) b.handle_datagram(a.address(), d.bytes.data(), d.bytes.size(), at(1));
  }
  // Added, then heard from directly (its next datagram): it counts.
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].kind == node::MemberEvent::Kind::kChanged);
  CHECK((seen[1].verified_after && !seen[1].verified_before && !seen[1].notable()));
  CHECK(seen[0].kind == node::MemberEvent::Kind::kAdded);
  CHECK(seen[0].name == "b");
  CHECK(seen[0].uid == 22);
  CHECK(seen[0].to == wire::MemberState::kAlive);
  CHECK(node::describe(seen[0]) == "member b (127.0.0.1:9002) is alive");
  b.leave(at(2));
  for (auto& d : testing::datagrams(b)) a.handle_datagram(b.address(), d.bytes.data(), d.bytes.size(), at(2));
  auto left = drain(a).members;
  REQUIRE(left.size() == 1);
  CHECK(left[0].from == wire::MemberState::kAlive);
  CHECK(left[0].to == wire::MemberState::kLeft);
  CHECK(left[0].incarnation == 1);
}

TEST_CASE("engine: gathered writes wait for pack_writes and leave in one push; others at the end of each call") {
  Engine a(config("a"), 11, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  Engine b(config("b"), 22, Endpoint::v4(127, 0, 0, 1, 9002), 2, at(0));
  b.join({a.address()}, at(0));
  for (int round = 0; round < 10; ++round) {
    for (auto& d : testing::datagrams(b)) a.handle_datagram(b.address(), d.bytes.data(), d.bytes.size(), at(0));
    for (auto& d : testing::datagrams(a)) b.handle_datagram(a.address(), d.bytes.data(), d.bytes.size(), at(0));
  }
  REQUIRE(a.member_state("b") == "alive");
  REQUIRE(a.set("k0", "v", at(5)).ok());
  CHECK(pushes(testing::datagrams(a)) == 1);  // left at the end of set()
  a.gather_writes(true);
  for (int i = 1; i <= 10; ++i) REQUIRE(a.set("k" + std::to_string(i), "v", at(10)).ok());
  auto fx = drain(a);
  CHECK(pushes(fx.datagrams) == 0);
  CHECK(fx.changes.size() == 10);
  a.pack_writes();
  CHECK(pushes(testing::datagrams(a)) == 1);  // ten writes, one datagram
}
