// Attacks on a sealed mesh, at the engine boundary: bytes are moved between
// engines by hand, captured, altered and replayed. Every attack must be
// refused, counted, and leave the state as it was.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <string>

#include "crypto/keys.h"
#include "engine_util.h"
#include "node/engine.h"
#include "wire/codec.h"

using namespace meshkv;
using node::Engine;
using node::Now;

namespace {
Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

crypto::ClusterKey key_of(uint8_t fill) {
  crypto::ClusterKey k;
  k.key.fill(fill);
  k.id = crypto::cluster_key_id(k.key);
  return k;
}

crypto::Identity identity_of(uint8_t fill) {
  crypto::Key32 seed;
  seed.fill(fill);
  return crypto::identity_from_seed(seed);
}

// Engines on fake addresses; a datagram goes to the engine at its address.
struct Mesh {
  std::map<std::string, std::unique_ptr<Engine>> nodes;
  std::map<std::string, Endpoint> addrs;
  uint64_t t = 0;
  uint64_t next_uid = 100;
  // Called for every datagram in flight; returns false to drop it.
  std::function<bool(const std::string& from, const node::Datagram&)> tap;

  Engine& add(const std::string& name, node::Security sec) {
    const Endpoint addr = Endpoint::v4(127, 0, 0, 1, static_cast<uint16_t>(9000 + addrs.size()));
    node::Config c;
    c.id = name;
    const uint64_t uid = ++next_uid;
    auto e = std::make_unique<Engine>(c, uid, addr, uid, at(t));
    if (!sec.keys.empty()) e->secure(std::move(sec));
    addrs[name] = addr;
    nodes[name] = std::move(e);
    return *nodes[name];
  }
  // A new process at the same address (a restart): new uid, empty state.
  Engine& restart(const std::string& name, node::Security sec) {
    const Endpoint addr = addrs[name];
    node::Config c;
    c.id = name;
    const uint64_t uid = ++next_uid;
    auto e = std::make_unique<Engine>(c, uid, addr, uid, at(t));
    e->secure(std::move(sec));
    nodes[name] = std::move(e);
    return *nodes[name];
  }
  Engine& operator[](const std::string& n) { return *nodes.at(n); }
  void deliver(const std::string& to, const Endpoint& from, const wire::Bytes& b) {
    nodes.at(to)->handle_datagram(from, b.data(), b.size(), at(t));
  }
  std::string name_at(const Endpoint& e) const {
    for (const auto& [n, a] : addrs) {
      if (a == e) return n;
    }
    return {};
  }
  // Runs the protocol for `ms` of time in 10 ms steps, delivering everything.
  void run(uint64_t ms) {
    for (uint64_t end = t + ms; t < end; t += 10) {
      for (int round = 0; round < 20; ++round) {
        bool any = false;
        for (auto& [name, e] : nodes) {
          for (auto& d : testing::datagrams(*e)) {
            any = true;
            if (tap && !tap(name, d)) continue;
            const std::string to = name_at(d.to);
            if (!to.empty()) deliver(to, addrs[name], d.bytes);
          }
        }
        if (!any) break;
      }
      for (auto& [name, e] : nodes) e->tick(at(t));
    }
  }
};

uint64_t rejected(const node::Counters& c) {
  return c.unsealed + c.auth_failed + c.unknown_key + c.replayed + c.stale_session + c.unknown_sender +
         c.refused_peers + c.malformed;
}

node::Security sealed(uint8_t key, std::vector<crypto::PublicKey> allowed = {}, uint8_t id = 0) {
  node::Security s;
  s.keys = {key_of(key)};
  if (id) s.identity = identity_of(id);
  s.allowed_peers = std::move(allowed);
  return s;
}

// a and b joined in a sealed mesh; returns the first datagram a sends b for
// a write of `key` (captured, not delivered).
struct Captured {
  Endpoint from;
  wire::Bytes bytes;
};
Captured capture_write(Mesh& m, const std::string& from, const std::string& to, const std::string& key) {
  REQUIRE(m[from].set(key, "secret-value", at(m.t)).ok());
  Captured c;
  for (auto& d : testing::datagrams(m[from])) {
    if (d.to == m.addrs[to] && c.bytes.empty()) c = Captured{m.addrs[from], std::move(d.bytes)};
  }
  REQUIRE(!c.bytes.empty());
  return c;
}
}  // namespace

TEST_CASE("security: a sealed pair joins, replicates, and shows identities") {
  Mesh m;
  m.add("a", sealed(1, {}, 1));
  m.add("b", sealed(1, {}, 2));
  m["b"].join({m.addrs["a"]}, at(m.t));
  m.run(500);
  REQUIRE(m["a"].member_state("b") == "alive");
  REQUIRE(m["b"].member_state("a") == "alive");
  REQUIRE(m["a"].set("k", "v", at(m.t)).ok());
  m.run(100);
  REQUIRE(m["b"].get("k") != nullptr);
  const auto peers = m["b"].peers(at(m.t)).get("members").as_list();
  REQUIRE(peers.size() == 1);
  CHECK(peers[0].get("identity").as_string() == crypto::fingerprint(identity_of(1).pk));
  CHECK(m["a"].security().get("identity").as_string() == crypto::fingerprint(identity_of(1).pk));
  // Honest traffic is never taken for a replay, also after a restart brings
  // a new process that introduces itself again.
  m.restart("b", sealed(1, {}, 2)).join({m.addrs["a"]}, at(m.t));
  m.run(3000);
  CHECK(m["a"].member_state("b") == "alive");
  CHECK(m["a"].counters().replayed == 0);
  CHECK(m["b"].counters().replayed == 0);
}

TEST_CASE("security: forged, bit-flipped, truncated and replayed datagrams are refused and counted") {
  Mesh m;
  m.add("a", sealed(1));
  m.add("b", sealed(1));
  m["b"].join({m.addrs["a"]}, at(m.t));
  m.run(500);
  REQUIRE(m["b"].member_state("a") == "alive");
  const Captured c = capture_write(m, "a", "b", "x");
  Engine& b = m["b"];
  const std::string digest_before = b.status(at(m.t)).get("digest").as_string();

  uint64_t before = rejected(b.counters());
  // Every single-bit flip, anywhere in the datagram.
  size_t flips = 0;
  for (size_t i = 0; i < c.bytes.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      wire::Bytes bad = c.bytes;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      m.deliver("b", c.from, bad);
      ++flips;
    }
  }
  CHECK(rejected(b.counters()) - before == flips);
  CHECK(b.counters().auth_failed > 0);
  // Every truncation.
  before = rejected(b.counters());
  for (size_t n = 0; n < c.bytes.size(); ++n) {
    wire::Bytes cut(c.bytes.begin(), c.bytes.begin() + static_cast<long>(n));
    m.deliver("b", c.from, cut);
  }
  CHECK(rejected(b.counters()) - before == c.bytes.size());
  // A forgery with a valid-looking header and random body.
  before = b.counters().auth_failed;
  wire::Bytes forged = c.bytes;
  for (size_t i = 28; i < forged.size(); ++i) forged[i] = static_cast<uint8_t>(i * 31 + 7);
  m.deliver("b", c.from, forged);
  CHECK(b.counters().auth_failed == before + 1);
  // An unsealed message, as an old or foreign node would send it.
  before = b.counters().unsealed;
  wire::Push plain;
  plain.msg_seq = 1;
  plain.chunk.origin = 555;
  crdt::Entry evil;
  evil.hlc = crdt::Hlc::make(1'700'000'000'000, 0);
  evil.dot = crdt::Dot{555, 1};
  evil.value = "evil";
  plain.chunk.entries.push_back({"evil", evil});
  m.deliver("b", c.from, wire::encode(wire::Envelope{wire::kVersion, 555, plain}));
  CHECK(b.counters().unsealed == before + 1);
  CHECK(b.get("evil") == nullptr);
  CHECK(b.get("x") == nullptr);
  CHECK(b.status(at(m.t)).get("digest").as_string() == digest_before);

  // The genuine datagram is accepted once, and its replay is refused.
  m.deliver("b", c.from, c.bytes);
  REQUIRE(b.get("x") != nullptr);
  before = b.counters().replayed;
  for (int i = 0; i < 3; ++i) m.deliver("b", c.from, c.bytes);
  CHECK(b.counters().replayed == before + 3);
}

TEST_CASE("security: a datagram captured before the receiver restarted is refused") {
  Mesh m;
  m.add("a", sealed(1));
  m.add("b", sealed(1));
  m["b"].join({m.addrs["a"]}, at(m.t));
  m.run(500);
  const Captured c = capture_write(m, "a", "b", "x");
  Engine& b2 = m.restart("b", sealed(1));
  m.deliver("b", c.from, c.bytes);
  CHECK(b2.counters().stale_session == 1);
  CHECK(b2.get("x") == nullptr);
  // The restarted process rejoins and gets the write the honest way.
  b2.join({m.addrs["a"]}, at(m.t));
  m.run(2000);
  CHECK(b2.get("x") != nullptr);
}

TEST_CASE("security: wrong and removed keys are refused; rotation keeps the mesh up") {
  Mesh m;
  node::Security both = sealed(1);
  both.keys.push_back(key_of(2));
  m.add("a", both);
  m.add("b", sealed(1));
  m.add("c", sealed(3));  // another mesh's key
  m["b"].join({m.addrs["a"]}, at(m.t));
  m["c"].join({m.addrs["a"]}, at(m.t));
  m.run(1000);
  CHECK(m["a"].member_state("b") == "alive");
  CHECK(m["a"].member_state("c") == "");
  CHECK(m["a"].counters().unknown_key > 0);
  REQUIRE(m["c"].set("from-c", "x", at(m.t)).ok());
  m.run(500);
  CHECK(m["a"].get("from-c") == nullptr);

  // Rolling rotation from key 1 to key 2 without losing a write.
  REQUIRE(m["b"].install_key(key_of(2)).ok());
  REQUIRE(m["a"].use_key(key_of(2).id).ok());
  REQUIRE(m["a"].set("during", "1", at(m.t)).ok());
  m.run(200);
  REQUIRE(m["b"].use_key(key_of(2).id).ok());
  REQUIRE(m["b"].set("after", "2", at(m.t)).ok());
  m.run(200);
  CHECK(m["b"].get("during") != nullptr);
  CHECK(m["a"].get("after") != nullptr);
  CHECK_FALSE(m["a"].remove_key(key_of(2).id).ok());  // it seals
  REQUIRE(m["a"].remove_key(key_of(1).id).ok());
  REQUIRE(m["b"].remove_key(key_of(1).id).ok());
  m.run(2000);
  CHECK(m["a"].member_state("b") == "alive");
  CHECK(m["b"].member_state("a") == "alive");

  // A datagram sealed with the removed key is refused.
  node::Security old = sealed(1);
  m.add("d", old);
  m["d"].join({m.addrs["a"]}, at(m.t));
  const uint64_t before = m["a"].counters().unknown_key;
  m.run(500);
  CHECK(m["a"].counters().unknown_key > before);
  CHECK(m["a"].member_state("d") == "");
}

TEST_CASE("security: a member outside allowed_peers is refused and no state of it is relayed") {
  Mesh m;
  const auto pa = identity_of(1).pk, pb = identity_of(2).pk;
  m.add("a", sealed(1, {pa, pb}, 1));
  m.add("b", sealed(1, {pa, pb}, 2));
  m.add("e", sealed(1, {}, 9));  // holds the cluster key, not on the list
  m["b"].join({m.addrs["a"]}, at(m.t));
  m["e"].join({m.addrs["a"]}, at(m.t));
  m.run(1000);
  CHECK(m["a"].member_state("b") == "alive");
  CHECK(m["a"].member_state("e") == "");
  CHECK(m["b"].member_state("e") == "");
  CHECK(m["a"].counters().refused_peers > 0);
  REQUIRE(m["e"].set("intruder", "x", at(m.t)).ok());
  REQUIRE(m["a"].set("legit", "y", at(m.t)).ok());
  m.run(2000);
  CHECK(m["a"].get("intruder") == nullptr);
  CHECK(m["b"].get("intruder") == nullptr);
  CHECK(m["b"].get("legit") != nullptr);
  CHECK(m["e"].get("legit") == nullptr);  // nothing flows to it either
}
