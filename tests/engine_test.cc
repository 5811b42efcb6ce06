// Engine behaviour with bytes moved between engines by hand: no simulator,
// no sockets, time passed explicitly.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "common/crc32c.h"
#include "engine_util.h"
#include "node/engine.h"
#include "wire/codec.h"

using namespace meshkv;
using node::Engine;
using node::Now;
using testing::datagrams;
using testing::drain;

namespace {
Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

struct Pair {
  node::Config cfg;
  Endpoint a_addr = Endpoint::v4(127, 0, 0, 1, 9001), b_addr = Endpoint::v4(127, 0, 0, 1, 9002);
  Engine a, b;
  uint64_t t = 0;
  explicit Pair(bool summaries = false)
      : a(config("a", summaries), 11, a_addr, 1, at(0)), b(config("b", summaries), 22, b_addr, 2, at(0)) {}
  static node::Config config(const char* id, bool summaries = false) {
    node::Config c;
    c.id = id;
    c.ae_summaries = summaries;
    return c;
  }
  // Delivers everything both have queued, until both are quiet.
  size_t exchange(bool drop_to_b = false) {
    size_t n = 0;
    for (int round = 0; round < 50; ++round) {
      auto oa = datagrams(a);
      auto ob = datagrams(b);
      if (oa.empty() && ob.empty()) break;
      for (auto& d : oa) {
        ++n;
        if (!drop_to_b && d.to == b_addr) b.handle_datagram(a_addr, d.bytes.data(), d.bytes.size(), at(t));
      }
      for (auto& d : ob) {
        ++n;
        if (d.to == a_addr) a.handle_datagram(b_addr, d.bytes.data(), d.bytes.size(), at(t));
      }
    }
    return n;
  }
  void join() {
    b.join({a_addr}, at(t));
    exchange();
  }
};
}  // namespace

TEST_CASE("engine: a join makes both sides members of each other") {
  Pair p;
  p.join();
  CHECK(p.a.member_state("b") == "alive");
  CHECK(p.b.member_state("a") == "alive");
}

TEST_CASE("engine: a local write is pushed, applied and acknowledged") {
  Pair p;
  p.join();
  REQUIRE(p.a.set("k", "v", at(1)).ok());
  p.exchange();
  REQUIRE(p.b.get("k") != nullptr);
  CHECK(p.b.get("k")->value == "v");
  CHECK(p.a.pending_pushes() == 0);
}

TEST_CASE("engine: an unacknowledged push is retransmitted until it arrives") {
  Pair p;
  p.join();
  REQUIRE(p.a.set("k", "v", at(1)).ok());
  p.exchange(/*drop_to_b=*/true);
  CHECK(p.a.pending_pushes() == 1);
  CHECK(p.b.get("k") == nullptr);
  p.t = 200;  // past the initial RTO
  p.a.tick(at(p.t));
  p.exchange();
  CHECK(p.b.get("k") != nullptr);
  CHECK(p.a.counters().retransmits >= 1);
  CHECK(p.a.pending_pushes() == 0);
}

TEST_CASE("engine: a duplicated push is acknowledged but not applied twice") {
  Pair p;
  p.join();
  REQUIRE(p.a.set("k", "v", at(1)).ok());
  auto out = datagrams(p.a);
  REQUIRE(out.size() == 1);
  for (int i = 0; i < 3; ++i) p.b.handle_datagram(p.a_addr, out[0].bytes.data(), out[0].bytes.size(), at(1));
  CHECK(p.b.counters().duplicates == 2);
  const auto fx = drain(p.b);
  CHECK(fx.datagrams.size() == 5);  // an ack for the push, two for each copy: its ack was lost
  CHECK(fx.changes.size() == 1);
}

TEST_CASE("engine: anti-entropy brings a member that missed every push up to date") {
  Pair p;
  p.join();
  for (int i = 0; i < 300; ++i) REQUIRE(p.a.set("key" + std::to_string(i), std::string(50, 'x'), at(1)).ok());
  p.exchange(/*drop_to_b=*/true);
  p.a.tick(at(10'000));  // retransmissions exhausted long ago... and dropped again
  p.exchange(/*drop_to_b=*/true);
  for (uint64_t ms = 10'000; ms < 60'000 && p.b.replica().map().size() < 300; ms += 100) {
    p.t = ms;
    p.a.tick(at(ms));
    p.b.tick(at(ms));
    p.exchange();
  }
  CHECK(p.b.replica().map().size() == 300);
  CHECK(p.b.replica().vv() == p.a.replica().vv());
}

TEST_CASE("engine: no datagram exceeds the MTU, even for a 1 MiB value") {
  Pair p;
  p.join();
  REQUIRE(p.a.set("big", std::string(crdt::kMaxValueBytes, 'z'), at(1)).ok());
  auto out = datagrams(p.a);
  CHECK(out.size() > 700);
  for (const auto& d : out) CHECK(d.bytes.size() <= p.a.config().mtu);
  for (const auto& d : out) p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at(1));
  REQUIRE(p.b.get("big") != nullptr);
  CHECK(p.b.get("big")->value.size() == crdt::kMaxValueBytes);
}

TEST_CASE("engine: garbage datagrams are counted as malformed and change nothing") {
  Pair p;
  p.join();
  const uint8_t junk[] = {0x6d, 0x6b, 1, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff};
  p.a.handle_datagram(p.b_addr, junk, sizeof junk, at(1));
  CHECK(p.a.counters().bad_checksum == 1);
  const wire::Bytes checked = node::with_checksum(wire::Bytes(junk, junk + sizeof junk));
  p.a.handle_datagram(p.b_addr, checked.data(), checked.size(), at(1));
  const uint8_t empty[1] = {0};
  p.a.handle_datagram(p.b_addr, empty, 0, at(1));
  CHECK(p.a.counters().malformed == 2);
  CHECK(p.a.replica().map().size() == 0);
}

TEST_CASE("engine: a bit flipped anywhere in an unsealed datagram is caught by its checksum") {
  Pair p;
  p.join();
  REQUIRE(p.a.set("key", "value", at(1)).ok());
  auto out = datagrams(p.a);
  REQUIRE(out.size() == 1);
  const wire::Bytes& good = out[0].bytes;
  size_t flips = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      wire::Bytes bad = good;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      p.b.handle_datagram(p.a_addr, bad.data(), bad.size(), at(1));
      ++flips;
    }
  }
  CHECK(p.b.counters().bad_checksum == flips);
  CHECK(p.b.get("key") == nullptr);
  p.b.handle_datagram(p.a_addr, good.data(), good.size(), at(1));
  CHECK(p.b.get("key") != nullptr);
}

TEST_CASE("engine: a graceful leave is seen as left, not dead") {
  Pair p;
  p.join();
  p.b.leave(at(5));
  p.exchange();
  CHECK(p.a.member_state("b") == "left");
}

TEST_CASE("engine: injected drop loses the configured share of sent datagrams") {
  Pair p;
  p.join();
  node::Faults f;
  f.drop = 0.3;
  REQUIRE(p.a.set_faults(f).ok());
  // Writes 2 ms apart, each taken out at once: one push datagram per write
  // (writes closer together would gather into fewer pushes), plus whatever
  // probes and retransmissions the time brings, all subject to the drop.
  size_t sent = 0;
  // b answers, so that acknowledgements keep a's push window open, and a
  // ticks, so that it retransmits what the drop took.
  for (uint64_t i = 0; i < 2000; ++i) {
    REQUIRE(p.a.set("x" + std::to_string(i), "v", at(1 + 2 * i)).ok());
    p.a.tick(at(1 + 2 * i));  // retransmits the dropped ones, freeing the window
    for (auto& d : datagrams(p.a)) {
      ++sent;
      p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at(1 + 2 * i));
    }
    for (auto& d : datagrams(p.b)) {
      p.a.handle_datagram(p.b_addr, d.bytes.data(), d.bytes.size(), at(1 + 2 * i));
    }
  }
  REQUIRE(sent >= 1000);
  const double kept =
      static_cast<double>(sent) / static_cast<double>(sent + p.a.counters().injected_drops);
  CHECK(kept > 0.65);
  CHECK(kept < 0.75);
  CHECK(p.a.counters().injected_drops > 500);
}

TEST_CASE("engine: sustained writes gather into few pushes; sparse ones leave at once") {
  Pair p;
  p.join();
  auto pushes = [&] { return p.a.counters().sent_by_type[static_cast<size_t>(wire::MsgType::kPush)]; };
  auto at_us = [](uint64_t us) { return Now{us, 1'700'000'000'000 + us / 1000}; };
  uint64_t wake_us = 0;  // when a last asked to tick
  auto deliver = [&](uint64_t us) {
    auto fx = drain(p.a);
    wake_us = fx.wake_us;
    for (auto& d : fx.datagrams) {
      if (d.to == p.b_addr) p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at_us(us));
    }
  };
  // 20 writes 5 ms apart: each leaves with the next outbox.
  uint64_t before = pushes(), t = 1'000'000;
  for (int i = 0; i < 20; ++i, t += 5000) {
    REQUIRE(p.a.set("sparse" + std::to_string(i), "v", at_us(t)).ok());
    deliver(t);
    CHECK(pushes() == before + static_cast<uint64_t>(i) + 1);
  }
  // 400 writes 10 us apart (100,000/s), the outbox taken after each: once
  // the rate is seen, the writes wait for the millisecond or a full datagram.
  before = pushes();
  for (int i = 0; i < 400; ++i, t += 10) {
    REQUIRE(p.a.set("burst" + std::to_string(i), "v", at_us(t)).ok());
    deliver(t);
  }
  const uint64_t burst_pushes = pushes() - before;
  MESSAGE("400 writes in 4 ms: " << burst_pushes << " pushes");
  CHECK(burst_pushes < 60);
  // What is still held leaves by its deadline, at most 1 ms away.
  CHECK(wake_us <= t + 1000);
  const uint64_t due = t + 1000;
  p.a.tick(at_us(due));
  deliver(due);
  for (int i = 0; i < 400; ++i) CHECK(p.b.get("burst" + std::to_string(i)) != nullptr);
  // A large write that fills a datagram does not wait.
  const std::string big(1400, 'x');
  before = pushes();
  REQUIRE(p.a.set("big", big, at_us(due + 10)).ok());
  deliver(due + 10);
  CHECK(pushes() == before + 1);
}

TEST_CASE("engine: at most 256 pushes are in flight to a member; the rest leave as acks return") {
  Pair p;
  p.join();
  auto pushes = [&] { return p.a.counters().sent_by_type[static_cast<size_t>(wire::MsgType::kPush)]; };
  // 400 writes 5 ms apart: 400 pushes, none acknowledged yet.
  std::vector<node::Datagram> held;
  size_t push_datagrams = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    REQUIRE(p.a.set("w" + std::to_string(i), "v", at(10 + 5 * i)).ok());
    for (auto& d : datagrams(p.a)) {
      auto h = wire::peek_header(d.bytes.data(), d.bytes.size());
      if (h.ok() && h->type == wire::MsgType::kPush) ++push_datagrams;
      held.push_back(std::move(d));
    }
  }
  CHECK(pushes() >= 400);  // counted when packed, sent or waiting
  // Sent for the first time: exactly the window; the rest are retransmissions.
  CHECK(push_datagrams - p.a.counters().retransmits == 256);
  // Delivered, b's acknowledgements open the window: the other 144 leave.
  uint64_t t = 10 + 5 * 400;
  for (int round = 0; round < 20; ++round, ++t) {
    for (auto& d : held) p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at(t));
    held.clear();
    for (auto& d : datagrams(p.b)) p.a.handle_datagram(p.b_addr, d.bytes.data(), d.bytes.size(), at(t));
    held = datagrams(p.a);
  }
  for (int i = 0; i < 400; ++i) CHECK(p.b.get("w" + std::to_string(i)) != nullptr);
  CHECK(p.a.pending_pushes() == 0);
}

TEST_CASE("engine: with summaries on, an in-sync peer is asked with a hash, and a difference still repairs") {
  Pair p(/*summaries=*/true);
  p.join();
  REQUIRE(p.a.set("k1", "v", at(10)).ok());
  p.exchange();
  // Each sends the other its full vector once (anti-entropy every second).
  p.t = 1500;
  p.a.tick(at(p.t));
  p.b.tick(at(p.t));
  p.exchange();
  // b writes, and its push is lost; b is not ticked again, so it does not
  // retransmit: only anti-entropy can bring k2 to a.
  REQUIRE(p.b.set("k2", "v", at(p.t)).ok());
  datagrams(p.b);
  // a's next round: it believes b holds its vector, so it sends a summary.
  p.t = 3000;
  p.a.tick(at(p.t));
  auto out = datagrams(p.a);
  size_t summaries = 0;
  for (auto& d : out) {
    // A summary goes on its own or, as a rule, in a probe (less the checksum).
    auto env = wire::decode(d.bytes.data(), d.bytes.size() - 4);
    REQUIRE(env.ok());
    const wire::Digest* dg = std::get_if<wire::Digest>(&env->msg);
    if (const auto* ping = std::get_if<wire::Ping>(&env->msg); ping && ping->digest) dg = &*ping->digest;
    if (dg != nullptr && dg->summary) {
      CHECK(dg->vv_sum == 1);  // its one write: b's is lost
      ++summaries;
    }
    p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at(p.t));
  }
  CHECK(summaries == 1);
  // b's context differs: it answers with its vector, and k2 reaches a.
  p.exchange();
  CHECK(p.a.get("k2") != nullptr);
  CHECK(p.a.replica().map().digest().root() == p.b.replica().map().digest().root());
}

namespace {
// The digest a datagram carries, on its own or riding in a probe.
const wire::Digest* digest_in(const wire::Envelope& env) {
  if (const auto* ping = std::get_if<wire::Ping>(&env.msg); ping && ping->digest) return &*ping->digest;
  return std::get_if<wire::Digest>(&env.msg);
}
}  // namespace

TEST_CASE("engine: summaries state the collection fields, and go only to a peer that reads them") {
  Pair p(/*summaries=*/true);
  p.join();
  REQUIRE(p.a.set("k1", "v", at(10)).ok());
  p.exchange();
  // Rounds of a's digests from t on: the summaries among them.
  auto a_round = [&](uint64_t t) {
    p.t = t;
    p.a.tick(at(p.t));
    std::vector<wire::Digest> sent;
    for (auto& d : datagrams(p.a)) {
      auto env = wire::decode(d.bytes.data(), d.bytes.size() - 4);  // less the checksum
      REQUIRE(env.ok());
      if (const wire::Digest* dg = digest_in(*env)) sent.push_back(*dg);
      p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at(p.t));
    }
    p.exchange();
    return sent;
  };
  SUBCASE("b's full digests do not say it reads them (a node that predates the field): full digests only") {
    // b's vector reaches a with the mark taken out, as an older node sends it.
    p.t = 1500;
    p.b.tick(at(p.t));
    for (auto& d : datagrams(p.b)) {
      auto env = wire::decode(d.bytes.data(), d.bytes.size() - 4);
      REQUIRE(env.ok());
      if (auto* ping = std::get_if<wire::Ping>(&env->msg); ping && ping->digest) ping->digest->reads_summary_gc = false;
      if (auto* dg = std::get_if<wire::Digest>(&env->msg)) dg->reads_summary_gc = false;
      wire::Bytes b = wire::encode(*env);
      const uint32_t c = crc32c(b.data(), b.size());
      for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(c >> (8 * i)));
      p.a.handle_datagram(p.b_addr, b.data(), b.size(), at(p.t));
    }
    size_t digests = 0;
    for (uint64_t t : {3000, 4500, 6000}) {
      for (const wire::Digest& d : a_round(t)) {
        CHECK_FALSE(d.summary);
        ++digests;
      }
    }
    CHECK(digests > 0);
  }
  SUBCASE("b's full digests say so: a summary, with a's horizon, reconciled and roster report") {
    p.t = 1500;
    p.a.tick(at(p.t));
    p.b.tick(at(p.t));
    p.exchange();
    size_t summaries = 0;
    for (uint64_t t : {3000, 4500, 6000}) {
      for (const wire::Digest& d : a_round(t)) {
        if (!d.summary) continue;
        ++summaries;
        CHECK(d.gc_stated);
        CHECK(d.mesh_size == 2);
        const wire::Value gc = p.a.status(at(p.t)).get("gc");
        CHECK(d.horizon == static_cast<uint64_t>(gc.get("horizon").as_int()));
        CHECK(d.reconciled == static_cast<uint64_t>(gc.get("reconciled").as_int()));
      }
    }
    CHECK(summaries > 0);
  }
}

TEST_CASE("engine: a partition drops traffic to and from the named member only") {
  Pair p;
  p.join();
  node::Faults f;
  f.partition = {"b"};
  REQUIRE(p.a.set_faults(f).ok());
  REQUIRE(p.a.set("k", "v", at(1)).ok());
  CHECK(datagrams(p.a).empty());
  REQUIRE(p.b.set("j", "w", at(1)).ok());
  p.exchange();
  CHECK(p.a.get("j") == nullptr);
  REQUIRE(p.a.set_faults(node::Faults{}).ok());
  for (uint64_t ms = 100; ms < 5000 && !p.a.get("j"); ms += 100) {
    p.t = ms;
    p.a.tick(at(ms));
    p.b.tick(at(ms));
    p.exchange();
  }
  CHECK(p.a.get("j") != nullptr);
  CHECK(p.b.get("k") != nullptr);
}

TEST_CASE("engine: bad fault settings are refused and change nothing") {
  Pair p;
  node::Faults f;
  f.drop = 1.5;
  CHECK_FALSE(p.a.set_faults(f).ok());
  f.drop = 0;
  f.direction = "sideways";
  CHECK_FALSE(p.a.set_faults(f).ok());
  CHECK_FALSE(p.a.faults().active());
}

TEST_CASE("engine: membership gossip for ever new names is bounded") {
  Pair p;
  p.join();
  for (int batch = 0; batch < 250; ++batch) {  // 25 per datagram stays under the MTU
    wire::Members m;
    for (int i = 0; i < 25; ++i) {
      const int n = batch * 25 + i;
      m.updates.push_back({"forged" + std::to_string(n), 1000u + static_cast<uint64_t>(n),
                           Endpoint::v4(10, 9, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n), 7946),
                           0, wire::MemberState::kDead});
    }
    auto bytes = node::with_checksum(wire::encode({wire::kVersion, 22, m}));
    p.a.handle_datagram(p.b_addr, bytes.data(), bytes.size(), at(1));
    datagrams(p.a);
  }
  CHECK(p.a.counters().malformed == 0);
  CHECK(p.a.peers(at(1)).get("members").as_list().size() == 4096);
  CHECK(p.a.counters().queue_drops > 0);
}

TEST_CASE("engine: a durable node's log, replayed over its snapshot, rebuilds its state") {
  node::Config cfg = Pair::config("a");
  cfg.data_dir = "/unused";  // the engine only logs; files are the shell's
  Engine a(cfg, 11, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0));
  Engine b(Pair::config("b"), 22, Endpoint::v4(127, 0, 0, 1, 9002), 2, at(0));
  // b's writes of one instant leave together when its datagrams are taken,
  // as a shell's would: a then logs them all.
  b.gather_writes(true);
  b.join({a.address()}, at(0));
  std::vector<std::string> log;  // what a asked to log, encoded
  auto take = [&](Engine& e) {
    e.pack_writes();
    auto fx = drain(e);
    if (&e == &a) {
      for (const auto& op : fx.log_ops) log.push_back(node::encode_op(op));
    }
    return fx.datagrams;
  };
  auto deliver = [&](Engine& from, Engine& to) {
    for (auto& d : take(from)) {
      if (d.to == to.address()) to.handle_datagram(from.address(), d.bytes.data(), d.bytes.size(), at(1));
    }
  };
  for (int i = 0; i < 4; ++i) {
    deliver(b, a);
    deliver(a, b);
  }
  auto drain_log = [&] { take(a); };
  REQUIRE(a.set("local", "1", at(2)).ok());
  REQUIRE(b.set("remote", "2", at(2)).ok());
  deliver(b, a);
  drain_log();
  const node::Snapshot mid = a.snapshot();
  const size_t mid_ops = log.size();
  REQUIRE(a.del("local", at(3)).ok());
  for (int i = 0; i < 20; ++i) REQUIRE(b.set("k" + std::to_string(i), "v", at(3)).ok());
  deliver(b, a);
  drain_log();
  // Restore as a new process: snapshot, then the operations logged after it.
  auto records = node::encode_snapshot(mid);
  auto snap = node::decode_snapshot(records);
  REQUIRE(snap.ok());
  Engine r(cfg, 33, Endpoint::v4(127, 0, 0, 1, 9001), 3, at(4));
  REQUIRE(r.load(*snap, at(4)).ok());
  for (size_t i = mid_ops; i < log.size(); ++i) {
    auto op = node::decode_op(log[i]);
    REQUIRE(op.ok());
    r.replay(*op, at(4));
  }
  CHECK(r.replica().map().digest().root() == a.replica().map().digest().root());
  CHECK(r.replica().vv() == a.replica().vv());
  CHECK(r.replica().clock().last() >= a.replica().clock().last());
  CHECK(r.get("local")->tombstone);
  // A new process never reuses the old one's dots: it writes as a new origin.
  auto w = r.set("after", "restart", at(5));
  REQUIRE(w.ok());
  CHECK(w->entry.dot.origin == 33);
  CHECK(w->entry.hlc > a.replica().clock().last());
}

TEST_CASE("persist: a damaged log operation or snapshot is refused, not half-read") {
  node::LogOp op;
  op.ke = crdt::KeyedEntry{"k", crdt::Entry{crdt::Hlc::make(5, 0), crdt::Dot{1, 1}, false, "v"}};
  std::string bytes = node::encode_op(op);
  CHECK(node::decode_op(bytes).ok());
  CHECK_FALSE(node::decode_op(bytes.substr(0, bytes.size() - 1)).ok());
  CHECK_FALSE(node::decode_op(bytes + "x").ok());
  CHECK_FALSE(node::decode_op(std::string(1, '\x09')).ok());
  node::Snapshot s;
  s.id = "a";
  s.entries.push_back(op.ke);
  auto recs = node::encode_snapshot(s);
  recs.pop_back();  // an entries record missing
  CHECK_FALSE(node::decode_snapshot(recs).ok());
}

namespace {
// A snapshot as Durable::open hands it over: the header decoded, the entry
// records left to Engine::load (Snapshot::pending).
node::Snapshot pending_snapshot(const std::vector<std::string>& records) {
  node::SnapshotCounts counts;
  auto head = node::decode_snapshot_header(records[0], counts);
  REQUIRE(head.ok());
  node::Snapshot s = std::move(*head);
  for (size_t i = 1; i < records.size(); ++i) s.pending.emplace_back(records[i]);
  s.pending_entries = counts.entries;
  s.pending_quarantined = counts.quarantined;
  return s;
}
}  // namespace

TEST_CASE("persist: a snapshot decoded while it loads gives what the decoded one gives, and one that does "
          "not decode fails the load") {
  node::Snapshot s;
  s.id = "a";
  // 5,000 entries of three origins, in dot order but for a stretch in the
  // middle (older snapshots were not sorted), and a quarantined entry.
  for (uint64_t i = 0; i < 5000; ++i) {
    const crdt::Origin o = 1 + i / 2000;
    const uint64_t seq = 1 + i % 2000;
    s.entries.push_back(crdt::KeyedEntry{"k" + std::to_string(i),
                                         crdt::Entry{crdt::Hlc::make(1000 + i, 0), crdt::Dot{o, seq}, false,
                                                     "value-" + std::to_string(i)}});
    s.vv.raise(o, seq);
  }
  std::reverse(s.entries.begin() + 2100, s.entries.begin() + 2600);
  s.quarantine.push_back(crdt::KeyedEntry{"q", crdt::Entry{crdt::Hlc::make(5, 0), crdt::Dot{9, 1}, false, "old"}});
  const auto records = node::encode_snapshot(s);
  REQUIRE(records.size() > 3);
  node::Config cfg = Pair::config("a");
  cfg.data_dir = "/unused";
  auto eager = node::decode_snapshot(records);
  REQUIRE(eager.ok());
  Engine e(cfg, 31, Endpoint::v4(127, 0, 0, 1, 9001), 3, at(4));
  REQUIRE(e.load(*eager, at(4)).ok());
  Engine p(cfg, 32, Endpoint::v4(127, 0, 0, 1, 9002), 3, at(4));
  REQUIRE(p.load(pending_snapshot(records), at(4)).ok());
  CHECK(p.replica().map().size() == 5000);
  CHECK(p.replica().map().digest().root() == e.replica().map().digest().root());
  CHECK(p.replica().vv() == e.replica().vv());
  CHECK(p.replica().quarantined() == 1);
  CHECK(p.get("k2300")->value == "value-2300");
  // Index order: the origin's entries come back in seq order.
  uint64_t last = 0;
  bool ordered = true;
  p.replica().map().scan_origin(2, 0, [&](std::string_view, const crdt::EntryView& x) {
    ordered = ordered && x.dot.seq > last;
    last = x.dot.seq;
    return true;
  });
  CHECK(ordered);
  CHECK(last == 2000);
  // A record cut short (checksums verify on disk, so only a bug or another
  // format could do this): the load fails, and says which record.
  auto bad = records;
  bad[2].pop_back();
  Engine f(cfg, 33, Endpoint::v4(127, 0, 0, 1, 9003), 3, at(4));
  const Status st = f.load(pending_snapshot(bad), at(4));
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("snapshot record 2") != std::string::npos);
}

namespace {
// The fragments of a's push to b, in order; other datagrams to b delivered.
std::vector<node::Datagram> push_fragments_to_b(Pair& p, const std::string& key, size_t value_bytes) {
  REQUIRE(p.a.set(key, std::string(value_bytes, 'x'), at(p.t)).ok());
  std::vector<node::Datagram> frags;
  for (auto& d : datagrams(p.a)) {
    if (d.to != p.b_addr) continue;
    auto env = wire::decode(d.bytes.data(), d.bytes.size() - node::kChecksumBytes);
    if (env.ok() && std::holds_alternative<wire::Fragment>(env->msg)) frags.push_back(std::move(d));
  }
  return frags;
}
}  // namespace

TEST_CASE("engine: a message whose last fragment comes within the timeout is reassembled") {
  Pair p;
  p.join();
  p.t = 10;
  auto frags = push_fragments_to_b(p, "big", 5000);
  REQUIRE(frags.size() >= 2);
  for (auto& d : frags) p.b.handle_datagram(p.a_addr, d.bytes.data(), d.bytes.size(), at(p.t));
  REQUIRE(p.b.get("big") != nullptr);
}

TEST_CASE("engine: a partial message is dropped once its fragments stop for the timeout") {
  Pair p;
  p.join();
  p.t = 10;
  auto frags = push_fragments_to_b(p, "big", 5000);
  REQUIRE(frags.size() >= 2);
  for (size_t i = 0; i + 1 < frags.size(); ++i) {
    p.b.handle_datagram(p.a_addr, frags[i].bytes.data(), frags[i].bytes.size(), at(p.t));
  }
  // 40 s of b's own timers, past the reassembler's 30 s: the partial push goes.
  for (p.t = 1000; p.t <= 40'000; p.t += 1000) {
    p.b.tick(at(p.t));
    (void)drain(p.b);
  }
  const auto& last = frags.back();
  p.b.handle_datagram(p.a_addr, last.bytes.data(), last.bytes.size(), at(p.t));
  CHECK(p.b.get("big") == nullptr);
}

TEST_CASE("engine: injected incoming duplication and delay are applied, not only shown") {
  Pair p;
  p.join();
  node::Faults dup;
  dup.direction = "in";
  dup.dup = 1.0;
  REQUIRE(p.b.set_faults(dup).ok());
  REQUIRE(p.a.set("k", "v", at(1)).ok());
  p.exchange();
  CHECK(p.b.counters().injected_dups >= 1);
  CHECK(p.b.counters().duplicates >= 1);  // the push arrived twice: acknowledged, applied once
  REQUIRE(p.b.get("k") != nullptr);

  node::Faults delay;
  delay.direction = "both";
  delay.delay_ms = 200;
  REQUIRE(p.b.set_faults(delay).ok());
  p.t = 10;
  REQUIRE(p.a.set("k2", "v2", at(p.t)).ok());
  p.exchange();
  CHECK(p.b.get("k2") == nullptr);  // held for 200 ms
  CHECK(p.b.counters().injected_delays >= 1);
  p.t = 300;
  p.b.tick(at(p.t));
  REQUIRE(p.b.get("k2") != nullptr);
  CHECK(p.b.get("k2")->value == "v2");
}

TEST_CASE("engine: a datagram of a type newer than this node is counted as malformed (old nodes and read-req)") {
  // What a node that predates a message type does with it: the decoder
  // refuses unknown types, so it is dropped and counted, never answered.
  Pair p;
  p.join();
  wire::Bytes b = wire::encode(wire::Envelope{wire::kVersion, 22, wire::ReadReq{1, false, "k"}});
  b[3] = wire::kMaxWireType + 1;  // a type this build does not know
  const wire::Bytes checked = node::with_checksum(b);
  const uint64_t before = p.a.counters().malformed;
  p.a.handle_datagram(p.b_addr, checked.data(), checked.size(), at(1));
  CHECK(p.a.counters().malformed == before + 1);
  CHECK(drain(p.a).datagrams.empty());
}

TEST_CASE("engine: read requests from non-members, and answers nobody asked for, are dropped and counted") {
  Pair p;
  p.join();
  REQUIRE(p.a.set("k", "v", at(1)).ok());
  p.exchange();
  auto dropped = [&] { return p.a.status(at(2)).get("consistency").get("read_dropped").as_int(); };
  // How many of a's datagrams are read answers.
  auto answers = [&] {
    size_t n = 0;
    for (const auto& d : drain(p.a).datagrams) {
      auto env = wire::decode(d.bytes.data(), d.bytes.size() - node::kChecksumBytes);
      n += env.ok() && std::holds_alternative<wire::ReadResp>(env->msg) ? 1 : 0;
    }
    return n;
  };
  drain(p.a);
  // From a uid that is no member: no answer.
  const wire::Bytes ask =
      node::with_checksum(wire::encode(wire::Envelope{wire::kVersion, 999, wire::ReadReq{7, false, "k"}}));
  p.a.handle_datagram(Endpoint::v4(127, 0, 0, 1, 9999), ask.data(), ask.size(), at(2));
  CHECK(dropped() == 1);
  CHECK(answers() == 0);
  // An answer to a read a never started.
  wire::ReadResp stray;
  stray.read_id = 12345;
  const wire::Bytes ans = node::with_checksum(wire::encode(wire::Envelope{wire::kVersion, 22, stray}));
  p.a.handle_datagram(p.b_addr, ans.data(), ans.size(), at(2));
  CHECK(dropped() == 2);
  // From a member: answered with its entry.
  const wire::Bytes member_ask =
      node::with_checksum(wire::encode(wire::Envelope{wire::kVersion, 22, wire::ReadReq{8, false, "k"}}));
  p.a.handle_datagram(p.b_addr, member_ask.data(), member_ask.size(), at(3));
  const auto out = drain(p.a).datagrams;
  REQUIRE(out.size() == 1);
  auto env = wire::decode(out[0].bytes.data(), out[0].bytes.size() - node::kChecksumBytes);
  REQUIRE(env.ok());
  const auto& resp = std::get<wire::ReadResp>(env->msg);
  CHECK(resp.read_id == 8);
  REQUIRE(resp.chunk.entries.size() == 1);
  CHECK(resp.chunk.entries[0].entry.value == "v");
}
