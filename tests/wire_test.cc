// The wire codec: round trips, malformed input, forward compatibility and the
// size bound the chunk cutter relies on.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "crdt/entry.h"
#include "wire/codec.h"

using namespace meshkv;
using namespace meshkv::wire;

namespace {

// MESHKV_TEST_SEED=<n> replays (or varies) every randomized case here.
uint64_t test_seed() {
  if (const char* s = std::getenv("MESHKV_TEST_SEED")) return std::strtoull(s, nullptr, 0);
  return 0x6d6b'5eed;
}

// Random protocol objects that respect what the decoder enforces (name and key
// limits, zeroed tail of IPv4 addresses, tombstones without values, chunk
// entries whose dot origin is the chunk's origin).
class Gen {
 public:
  explicit Gen(uint64_t seed, size_t max_blob = 4096) : rng_(seed), max_blob_(max_blob) {}

  uint64_t next() { return rng_(); }
  uint64_t below(uint64_t n) { return n ? rng_() % n : 0; }
  bool chance(unsigned pct) { return below(100) < pct; }

  // Spread over every varint length, with the boundaries.
  uint64_t u64() {
    static constexpr uint64_t kEdges[] = {0,          1,           127,         128,
                                          16383,      16384,       UINT32_MAX,  uint64_t{1} << 63,
                                          UINT64_MAX, UINT64_MAX - 1};
    switch (below(4)) {
      case 0: return kEdges[below(std::size(kEdges))];
      case 1: return below(256);
      default: return next() >> below(64);
    }
  }
  int64_t i64() {
    static constexpr int64_t kEdges[] = {std::numeric_limits<int64_t>::min(),
                                         std::numeric_limits<int64_t>::max(),
                                         std::numeric_limits<int64_t>::min() + 1,
                                         -1,
                                         0,
                                         1,
                                         -64,
                                         63,
                                         -65,
                                         64};
    if (chance(30)) return kEdges[below(std::size(kEdges))];
    auto v = static_cast<int64_t>(next() >> below(64));
    return chance(50) ? -v : v;
  }
  // Random bytes (every value, NULs included); often empty or short,
  // sometimes exactly `max`.
  std::string blob(size_t max) {
    size_t n;
    switch (below(10)) {
      case 0: n = 0; break;
      case 1: n = max; break;
      default: n = below(std::min<size_t>(max, 40) + 1);
    }
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(next());
    return s;
  }

  Endpoint endpoint() {
    Endpoint e;
    e.family = chance(50) ? 4 : 6;
    for (size_t i = 0; i < (e.family == 6 ? 16u : 4u); ++i) e.ip[i] = static_cast<uint8_t>(next());
    e.port = static_cast<uint16_t>(next());
    return e;
  }
  MemberUpdate member() {
    MemberUpdate m;
    m.name = blob(255);
    m.uid = next();
    m.addr = endpoint();
    m.incarnation = u64();
    m.state = static_cast<MemberState>(below(4));
    return m;
  }
  std::vector<MemberUpdate> members() {
    std::vector<MemberUpdate> v(chance(10) ? below(60) : below(6));
    for (auto& m : v) m = member();
    return v;
  }

  crdt::KeyedEntry entry(crdt::Origin origin) {
    crdt::KeyedEntry ke;
    ke.key = chance(5) ? std::string(crdt::kMaxKeyBytes, 'k') : blob(40);
    if (ke.key.empty()) ke.key.push_back('k');  // keys are never empty
    ke.entry.hlc.raw = u64();
    ke.entry.dot = crdt::Dot{origin, u64()};
    ke.entry.tombstone = chance(25);
    if (!ke.entry.tombstone) ke.entry.value = blob(max_blob_);
    return ke;
  }
  crdt::Chunk chunk(bool loose) {
    crdt::Chunk c;
    c.origin = next();
    if (!loose) {
      c.from = u64();
      c.to = u64();
    }
    c.entries.resize(below(6));
    for (auto& ke : c.entries) ke = entry(c.origin);
    return c;
  }

  Value value(int depth = 0) {
    switch (below(depth >= 4 ? 4 : 6)) {
      case 0: return Value(nullptr);
      case 1: return Value(chance(50));
      case 2: return Value(i64());
      case 3: return Value(blob(64));
      case 4: {
        Value::List l(below(5));
        for (auto& x : l) x = value(depth + 1);
        return Value(std::move(l));
      }
      default: return object(depth);
    }
  }
  Value object(int depth = 0) {
    Value::Object o(below(5));
    for (auto& [k, x] : o) {
      k = blob(30);
      x = value(depth + 1);
    }
    return Value(std::move(o));
  }

  // An instance of the `index`-th alternative of Message.
  Message message(size_t index) {
    switch (index) {
      case 0: return Push{u64(), chunk(/*loose=*/true)};
      case 1: return Ack{u64()};
      case 2: {
        Digest d;
        d.reply = chance(50);
        d.counter = chance(50);
        d.resyncing = chance(20);
        d.ask_back = chance(20);
        if (chance(30)) {  // a summary carries its hash only
          d.summary = true;
          d.context_hash = next();
          if (chance(50)) d.vv_sum = u64();  // an extension field (absent when 0)
          if (chance(50)) {  // the collection fields (an extension field)
            d.gc_stated = true;
            d.horizon = u64();
            d.reconciled = u64();
            d.mesh_size = below(1000);
          }
          return d;
        }
        if (!chance(30)) {  // else the whole range, which is left out on the wire
          d.origin_lo = u64();
          d.origin_hi = u64();
        }
        for (uint64_t i = below(chance(10) ? 100 : 6); i > 0; --i) d.vv.raise(next(), u64() | 1);
        if (chance(30)) {  // retired origins (an extension field)
          d.retired_count = u64() | 1;
          d.retired_hash = next();
          for (uint64_t i = below(9); i > 0; --i) d.retired.emplace_back(next(), u64());
        }
        if (chance(30)) d.mesh_size = below(1000) + 1;  // the roster report (an extension field)
        if (chance(30)) {  // quarantine asks (an extension field)
          for (uint64_t i = below(kMaxQuarantineAsks) + 1; i > 0; --i) d.quarantine_asks.push_back({next() | 1, u64() | 1});
        }
        d.reads_summary_gc = chance(50);  // an empty extension field
        return d;
      }
      case 3: return ChunkMsg{chunk(/*loose=*/false)};
      case 4: {
        Ping p{u64(), chance(50) ? next() : 0, members(), std::nullopt};
        if (chance(30)) p.digest = std::get<Digest>(message(2));  // riding along (an extension field)
        return p;
      }
      case 5: return PingReq{u64(), next(), endpoint(), members()};
      case 6: return PingAck{u64(), next(), chance(50) ? u64() : 0, members()};
      case 7: {
        Fragment f;
        f.xfer_id = next();
        f.count = static_cast<uint32_t>(chance(20) ? UINT32_MAX : below(5000) + 1);
        f.index = static_cast<uint32_t>(below(f.count));
        f.bytes = blob(max_blob_);
        return f;
      }
      case 8: return Join{member()};
      case 9: return Members{members()};
      case 10: return CtlRequest{u64(), blob(64), object()};
      case 11: return CtlResponse{u64(), static_cast<CtlCode>(next()), blob(200), value(),
                                  chance(50)};
      case 12: return Hello{member(), std::string(32, static_cast<char>(next())),
                            std::string(64, static_cast<char>(next())), chance(50)};
      case 13: {
        const bool vector = chance(30);
        return ReadReq{u64(), vector, vector && chance(50) ? std::string() : blob(30) + "k"};
      }
      default: {
        ReadResp a;
        a.read_id = u64();
        if (chance(60)) {
          a.chunk.origin = next() | 1;
          a.chunk.entries.push_back(entry(a.chunk.origin));
        }
        if (chance(40)) {
          a.vector = true;
          for (uint64_t i = below(6); i > 0; --i) a.vv.raise(next() | 1, u64() | 1);
        }
        return a;
      }
    }
  }
  Envelope envelope(size_t index) {
    Envelope env{kVersion, u64(), message(index)};
    // A direct answer names no answerer on the wire: the sender is it.
    if (auto* a = std::get_if<PingAck>(&env.msg); a && chance(50)) a->target_uid = env.sender;
    return env;
  }

 private:
  std::mt19937_64 rng_;
  size_t max_blob_;
};

constexpr size_t kTypes = std::variant_size_v<Message>;

Bytes header(MsgType t, uint8_t version = kVersion, uint64_t sender = 7) {
  Bytes b;
  Writer w(b);
  w.u8(kMagic0);
  w.u8(kMagic1);
  w.u8(version);
  w.u8(static_cast<uint8_t>(t));
  w.u64(sender);
  return b;
}

bool is_corruption(const Result<Envelope>& r) {
  return !r.ok() && r.status().code() == Code::kCorruption;
}

bool says(const Result<Envelope>& r, const char* what) {
  return !r.ok() && r.status().message().find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("wire: every message type round-trips (200 random instances each)") {
  const uint64_t seed = test_seed();
  INFO("seed=" << seed << " (MESHKV_TEST_SEED)");
  Gen g(seed, /*max_blob=*/70'000);
  for (size_t t = 0; t < kTypes; ++t) {
    for (int i = 0; i < 200; ++i) {
      const Envelope env = g.envelope(t);
      INFO("type=" << type_name(type_of(env.msg)) << " instance=" << i);
      const Bytes b = encode(env);
      auto h = peek_header(b.data(), b.size());
      REQUIRE(h.ok());
      CHECK(h->type == type_of(env.msg));
      auto r = decode(b);
      REQUIRE_MESSAGE(r.ok(), r.status().to_string());
      CHECK(*r == env);
    }
  }
}

TEST_CASE("wire: the idle messages are small") {
  // What an idle mesh sends every second: pings, their answers, and
  // anti-entropy summaries. The header is 12 bytes.
  const uint64_t me = 0xfedcba9876543210ULL, peer = 0x0123456789abcdefULL;
  Digest summary;
  summary.summary = true;
  summary.context_hash = 0xffffffffffffffffULL;
  CHECK(encode(Envelope{kVersion, me, summary}).size() == 12 + 1 + 8);
  CHECK(encode(Envelope{kVersion, me, Digest{}}).size() == 12 + 1 + 1);  // whole range, empty
  CHECK(encode(Envelope{kVersion, me, Ping{300, 0, {}, std::nullopt}}).size() == 12 + 2 + 1 + 1);  // direct
  CHECK(encode(Envelope{kVersion, me, Ping{300, peer, {}, std::nullopt}}).size() == 12 + 2 + 1 + 8 + 1);  // relayed
  // A direct answer without a clock reading: sequence, flags, no updates.
  CHECK(encode(Envelope{kVersion, me, PingAck{300, me, 0, {}}}).size() == 12 + 2 + 1 + 1);
  // Relayed, with a clock reading: the answerer and the reading are there.
  const Bytes relayed = encode(Envelope{kVersion, me, PingAck{300, peer, 1795450159887, {}}});
  CHECK(relayed.size() == 12 + 2 + 1 + 8 + 6 + 1);
  auto r = decode(relayed);
  REQUIRE(r.ok());
  CHECK(std::get<PingAck>(r->msg).target_uid == peer);
  CHECK(std::get<PingAck>(r->msg).wall_ms == 1795450159887);
}

TEST_CASE("wire: a digest rides along in a ping, and a malformed one fails the ping") {
  const uint64_t me = 0xfedcba9876543210ULL;
  Digest summary;
  summary.summary = true;
  summary.context_hash = 0x0123456789abcdefULL;
  Ping p{300, 0, {}, summary};
  const Bytes b = encode(Envelope{kVersion, me, p});
  // The ping, then tag, length and the digest's body (flags and hash).
  CHECK(b.size() == 12 + 2 + 1 + 1 + 1 + 1 + 1 + 8);
  summary.vv_sum = 300;  // and the vector's sum: tag, length, varint
  CHECK(encode(Envelope{kVersion, me, summary}).size() == 12 + 1 + 8 + 1 + 1 + 2);
  // And the collection fields: tag, length, three varints.
  summary.gc_stated = true;
  summary.mesh_size = 5;
  CHECK(encode(Envelope{kVersion, me, summary}).size() == 12 + 1 + 8 + 1 + 1 + 2 + 1 + 1 + 3);
  auto r = decode(b);
  REQUIRE(r.ok());
  CHECK(std::get<Ping>(r->msg) == p);
  SUBCASE("a byte beyond the summary inside the field: a tag without a length") {
    Bytes bad = encode(Envelope{kVersion, me, Ping{300, 0, {}, std::nullopt}});
    Writer w(bad);
    w.varint(1);
    w.varint(10);
    w.u8(8);  // a summary
    w.u64(5);
    w.u8(0);
    CHECK(is_corruption(decode(bad)));
  }
  SUBCASE("a digest cut short inside the field") {
    Bytes bad = encode(Envelope{kVersion, me, Ping{300, 0, {}, std::nullopt}});
    Writer w(bad);
    w.varint(1);
    w.varint(5);
    w.u8(8);  // a summary whose hash is cut
    w.raw("1234", 4);
    CHECK(is_corruption(decode(bad)));
  }
  SUBCASE("a version 2 ping (no digest) still decodes") {
    Bytes old = encode(Envelope{kVersion, me, Ping{300, 0, {}, std::nullopt}});
    old[2] = 2;
    auto o = decode(old);
    REQUIRE(o.ok());
    CHECK_FALSE(std::get<Ping>(o->msg).digest.has_value());
  }
}

TEST_CASE("wire: a summary states the collection fields, or says nothing of them") {
  const uint64_t me = 0xfedcba9876543210ULL;
  Digest summary;
  summary.summary = true;
  summary.context_hash = 0x0123456789abcdefULL;
  summary.vv_sum = 4000;
  summary.gc_stated = true;
  summary.horizon = 0x18c2f6a1b2c30001ULL;
  summary.reconciled = 0x18c2f6a1b2c30000ULL;
  summary.mesh_size = 5;
  const Bytes b = encode(Envelope{kVersion, me, Ping{300, 0, {}, summary}});
  auto r = decode(b);
  REQUIRE(r.ok());
  const Digest& d = *std::get<Ping>(r->msg).digest;
  CHECK(d == summary);
  CHECK(d.horizon == summary.horizon);
  CHECK(d.mesh_size == 5);
  // All zeros are stated too: "collected nothing, counts five" is news.
  Digest zeros = summary;
  zeros.horizon = zeros.reconciled = 0;
  auto z = decode(encode(Envelope{kVersion, me, zeros}));
  REQUIRE(z.ok());
  CHECK(std::get<Digest>(z->msg).gc_stated);
  // A summary without the field (from a sender that predates it) states
  // nothing: its receiver must keep what it last heard.
  Digest older = summary;
  older.gc_stated = false;
  auto o = decode(encode(Envelope{kVersion, me, older}));
  REQUIRE(o.ok());
  CHECK_FALSE(std::get<Digest>(o->msg).gc_stated);
  CHECK(std::get<Digest>(o->msg).horizon == 0);
  CHECK(std::get<Digest>(o->msg).vv_sum == 4000);
  // In a full digest the same tag, empty, says the sender reads the field
  // (2 bytes); a payload there is for later versions and is skipped.
  Digest full;
  full.vv.raise(7, 3);
  const size_t bare = encode(Envelope{kVersion, me, full}).size();
  full.reads_summary_gc = true;
  Bytes f = encode(Envelope{kVersion, me, full});
  CHECK(f.size() == bare + 2);
  auto fr = decode(f);
  REQUIRE(fr.ok());
  CHECK(std::get<Digest>(fr->msg) == full);
  f.resize(bare);
  Writer w(f);
  w.varint(5);
  w.bytes(std::string_view("\x01\x02\x03", 3));
  fr = decode(f);
  REQUIRE(fr.ok());
  CHECK(std::get<Digest>(fr->msg) == full);
}

TEST_CASE("wire: version 1 messages are refused") {
  Bytes b = encode(Envelope{kVersion, 9, Ack{5}});
  b[2] = 1;
  CHECK(says(decode(b), "version"));
}

TEST_CASE("wire: type_of follows the variant index and MsgType numbering") {
  Gen g(test_seed());
  for (size_t t = 0; t < kTypes; ++t) {
    const Message m = g.message(t);
    CHECK(static_cast<size_t>(type_of(m)) == t + 1);
    CHECK(std::string(type_name(type_of(m))) != "?");
  }
  CHECK(std::string(type_name(static_cast<MsgType>(0))) == "?");
  CHECK(std::string(type_name(static_cast<MsgType>(kMaxWireType + 1))) == "?");
}

TEST_CASE("wire: a chunk entry's dot origin is the chunk's origin after decoding") {
  crdt::Chunk c;
  c.origin = 42;
  c.entries.push_back({"k", crdt::Entry{crdt::Hlc{5}, crdt::Dot{999, 3}, false, "v"}});
  auto r = decode(encode(Envelope{kVersion, 1, ChunkMsg{c}}));
  REQUIRE(r.ok());
  const auto& e = std::get<ChunkMsg>(r->msg).chunk.entries.at(0).entry;
  CHECK(e.dot == crdt::Dot{42, 3});
}

TEST_CASE("wire: every strict prefix of a valid message fails") {
  // Each body is exactly its required fields, read in order, so cutting it
  // anywhere makes some required read run out of input. An extension field
  // is optional: cut off whole, what is left is the message without it.
  const uint64_t seed = test_seed();
  INFO("seed=" << seed << " (MESHKV_TEST_SEED)");
  Gen g(seed + 1, /*max_blob=*/300);
  for (size_t t = 0; t < kTypes; ++t) {
    for (int i = 0; i < 20; ++i) {
      const Envelope env = g.envelope(t);
      const Bytes b = encode(env);
      size_t optional = 0;  // prefixes that are whole messages without an extension
      if (const auto* d = std::get_if<Digest>(&env.msg)) {
        // Each extension field is optional: the message cut before the
        // quarantine asks, before the roster report, and before the retired
        // origins, is whole.
        Digest bare = *d;
        for (int ext = 0; ext < 3; ++ext) {
          bool had = false;
          if (ext == 0 && (bare.gc_stated || bare.reads_summary_gc)) {  // the last field
            bare.gc_stated = bare.reads_summary_gc = false;
            if (bare.summary) bare.horizon = bare.reconciled = bare.mesh_size = 0;
            const Bytes without = encode(Envelope{env.version, env.sender, bare});
            auto r = decode(b.data(), without.size());
            REQUIRE(r.ok());
            CHECK(std::get<Digest>(r->msg) == bare);
            ++optional;
          }
          if (ext == 0 && !bare.quarantine_asks.empty()) {
            bare.quarantine_asks.clear();
            had = true;
          }
          if (ext == 0 && bare.vv_sum != 0) {  // a summary's only field
            bare.vv_sum = 0;
            had = true;
          }
          if (ext == 1 && bare.mesh_size != 0) {
            bare.mesh_size = 0;
            had = true;
          }
          if (ext == 2 && (bare.retired_count != 0 || !bare.retired.empty())) {
            bare.retired_count = bare.retired_hash = 0;
            bare.retired.clear();
            had = true;
          }
          if (!had) continue;
          const Bytes without = encode(Envelope{env.version, env.sender, bare});
          auto r = decode(b.data(), without.size());
          REQUIRE(r.ok());
          CHECK(std::get<Digest>(r->msg) == bare);
          ++optional;
        }
      }
      if (const auto* p = std::get_if<Ping>(&env.msg); p && p->digest) {
        // The digest riding along is an extension field too.
        const Ping bare{p->probe_seq, p->target_uid, p->updates, std::nullopt};
        const Bytes without = encode(Envelope{env.version, env.sender, bare});
        auto r = decode(b.data(), without.size());
        REQUIRE(r.ok());
        CHECK(std::get<Ping>(r->msg) == bare);
        ++optional;
      }
      INFO("type=" << type_name(static_cast<MsgType>(t + 1)) << " instance=" << i
                   << " size=" << b.size());
      size_t decoded = 0, other_code = 0;
      for (size_t n = 0; n < b.size(); ++n) {
        auto r = decode(b.data(), n);
        if (r.ok()) ++decoded;
        if (!r.ok() && r.status().code() != Code::kCorruption) ++other_code;
      }
      CHECK(decoded == optional);
      CHECK(other_code == 0);
      CHECK(decode(b).ok());
    }
  }
}

TEST_CASE("wire: random garbage never crashes and mostly fails") {
  const uint64_t seed = test_seed();
  INFO("seed=" << seed << " (MESHKV_TEST_SEED)");
  Gen g(seed + 2);
  const int kRuns = 20'000;
  int ok_raw = 0, ok_headed = 0, not_corruption = 0, unstable = 0;
  for (int i = 0; i < kRuns; ++i) {
    const bool headed = i % 2;
    Bytes b(g.below(96));
    for (auto& x : b) x = static_cast<uint8_t>(g.next());
    if (headed) {
      Bytes h = header(static_cast<MsgType>(g.below(kMaxMsgType) + 1),
                       static_cast<uint8_t>(g.below(3) + 1), g.next());
      b.insert(b.begin(), h.begin(), h.begin() + 4);
    }
    auto r = decode(b);
    if (!r.ok()) {
      if (r.status().code() != Code::kCorruption) ++not_corruption;
      continue;
    }
    ++(headed ? ok_headed : ok_raw);
    Envelope norm = *r;
    norm.version = kVersion;  // the encoder always writes its own version
    auto again = decode(encode(*r));
    if (!again.ok() || !(*again == norm)) ++unstable;
  }
  INFO("decoded: raw " << ok_raw << ", with header " << ok_headed << " of " << kRuns / 2);
  CHECK(not_corruption == 0);
  CHECK(unstable == 0);
  CHECK(ok_raw < 10);  // needs the magic by chance: 1 in 65536
  CHECK(ok_headed < kRuns / 2 / 100);  // about 15 in 10000 in practice
}

TEST_CASE("wire: bad magic, version 0 and unknown types fail with kCorruption") {
  const Bytes good = encode(Envelope{kVersion, 9, Ack{5}});
  REQUIRE(decode(good).ok());
  auto with = [&](size_t at, uint8_t v) {
    Bytes b = good;
    b[at] = v;
    return decode(b);
  };
  CHECK(is_corruption(with(0, 0x6E)));
  CHECK(is_corruption(with(1, 0x6C)));
  CHECK(is_corruption(with(2, 0)));
  CHECK(is_corruption(with(3, 0)));
  CHECK(is_corruption(with(3, kMaxWireType + 1)));
  CHECK(is_corruption(with(3, 255)));
  CHECK(says(with(2, 0), "version"));
  CHECK(says(with(3, kMaxWireType + 1), "type"));
}

TEST_CASE("wire: unknown extension fields after the body are skipped") {
  const uint64_t seed = test_seed();
  INFO("seed=" << seed << " (MESHKV_TEST_SEED)");
  Gen g(seed + 3, /*max_blob=*/300);
  for (size_t t = 0; t < kTypes; ++t) {
    for (int i = 0; i < 20; ++i) {
      const Envelope env = g.envelope(t);
      INFO("type=" << type_name(type_of(env.msg)) << " instance=" << i);
      Bytes b = encode(env);
      Writer w(b);
      for (uint64_t k = g.below(3) + 1; k > 0; --k) {
        w.varint(g.u64() | 64);  // tag: none the format defines (those are below 64)
        const std::string payload = g.blob(50);
        w.bytes(payload);  // length, payload
      }
      auto r = decode(b);
      REQUIRE_MESSAGE(r.ok(), r.status().to_string());
      CHECK(*r == env);
    }
  }
}

TEST_CASE("wire: a truncated extension field fails") {
  const Bytes good = encode(Envelope{kVersion, 9, Members{{}}});
  SUBCASE("length larger than what remains") {
    Bytes b = good;
    Writer w(b);
    w.varint(1);
    w.varint(11);
    w.raw("0123456789", 10);
    CHECK(is_corruption(decode(b)));
  }
  SUBCASE("huge length") {
    Bytes b = good;
    Writer w(b);
    w.varint(1);
    w.varint(UINT64_MAX);
    w.u8(0);
    CHECK(is_corruption(decode(b)));
  }
  SUBCASE("tag without a length") {
    Bytes b = good;
    Writer(b).varint(300);
    CHECK(is_corruption(decode(b)));
  }
  SUBCASE("tag varint that never ends") {
    Bytes b = good;
    b.insert(b.end(), 11, 0xFF);
    CHECK(says(decode(b), "varint"));
  }
}

TEST_CASE("wire: a higher version byte still decodes (forward compatibility)") {
  Gen g(test_seed() + 4, 300);
  for (size_t t = 0; t < kTypes; ++t) {
    const Envelope env = g.envelope(t);
    INFO("type=" << type_name(type_of(env.msg)));
    for (uint8_t v : {uint8_t{2}, uint8_t{255}}) {
      Bytes b = encode(env);
      b[2] = v;
      Writer(b).raw("\x05\x02zz", 4);  // plus a field this version does not know
      auto r = decode(b);
      REQUIRE_MESSAGE(r.ok(), r.status().to_string());
      CHECK(r->version == v);
      CHECK(r->sender == env.sender);
      CHECK(r->msg == env.msg);
    }
  }
}

TEST_CASE("wire: count lies fail before anything is reserved") {
  // A reserve() on these counts would throw or take gigabytes; the message
  // text shows the count check fired, which happens before any reserve.
  const uint64_t lies[] = {2, 1'000'000, uint64_t{1} << 40, UINT64_MAX};
  for (uint64_t lie : lies) {
    INFO("count=" << lie);
    {  // member list: one real 18-byte member, then the count says more
      Bytes b = header(MsgType::kMembers);
      Writer w(b);
      w.varint(lie);
      w.bytes("");
      w.u64(1);
      w.u8(4);
      w.raw("\x7f\0\0\1", 4);
      w.u16(80);
      w.varint(0);
      w.u8(0);
      CHECK(says(decode(b), "count exceeds the input"));
    }
    {  // chunk entries
      Bytes b = header(MsgType::kChunk);
      Writer w(b);
      w.u64(1);
      w.varint(0);
      w.varint(0);
      w.varint(lie);
      w.raw("\x01k\x00\x01\x01\x00", 6);
      CHECK(says(decode(b), "count exceeds the input"));
    }
    {  // push entries
      Bytes b = header(MsgType::kPush);
      Writer w(b);
      w.varint(1);
      w.u64(1);
      w.varint(0);
      w.varint(0);
      w.varint(lie);
      w.raw("\x01k\x01\x01\x01", 5);
      CHECK(says(decode(b), "count exceeds the input"));
    }
    {  // digest vector
      Bytes b = header(MsgType::kDigest);
      Writer w(b);
      w.u8(1);
      w.u64(0);
      w.u64(UINT64_MAX);
      w.varint(lie);
      w.u64(5);
      w.varint(1);
      CHECK(says(decode(b), "count exceeds the input"));
    }
    for (uint8_t tag : {uint8_t{5}, uint8_t{6}}) {  // value list, value object
      Bytes b = header(MsgType::kCtlRequest);
      Writer w(b);
      w.varint(1);
      w.bytes("get");
      w.u8(tag);
      w.varint(lie);
      w.u8(0);  // one null: room for one item, not two
      CHECK(says(decode(b), "count exceeds the input"));
    }
    {  // ping piggyback
      Bytes b = header(MsgType::kPing);
      Writer w(b);
      w.varint(1);
      w.u8(1);  // a target follows
      w.u64(2);
      w.varint(lie);
      w.raw("0123456789", 10);
      CHECK(says(decode(b), "count exceeds the input"));
    }
  }
  SUBCASE("byte string lengths are checked too") {
    Bytes b = header(MsgType::kFragment);
    Writer w(b);
    w.u64(1);
    w.varint(0);
    w.varint(1);
    w.varint(uint64_t{1} << 60);
    w.raw("abc", 3);
    CHECK(is_corruption(decode(b)));
    Bytes c = header(MsgType::kFragment);
    Writer wc(c);
    wc.u64(1);
    wc.varint(0);
    wc.varint(1);
    wc.varint(4);
    wc.raw("abc", 3);
    CHECK(says(decode(c), "truncated byte string"));
  }
}

TEST_CASE("wire: value nesting deeper than 32 fails cleanly") {
  auto nested = [](int levels, bool objects) {
    Value v;  // null at the bottom
    for (int i = 0; i < levels; ++i) {
      v = objects ? Value(Value::Object{{"k", std::move(v)}}) : Value(Value::List{std::move(v)});
    }
    return Envelope{kVersion, 1, CtlRequest{1, "set", std::move(v)}};
  };
  for (bool objects : {false, true}) {
    INFO("objects=" << objects);
    const Envelope ok32 = nested(32, objects);
    auto r = decode(encode(ok32));
    REQUIRE(r.ok());
    CHECK(*r == ok32);
    CHECK(says(decode(encode(nested(33, objects))), "nested too deeply"));
    CHECK(says(decode(encode(nested(200, objects))), "nested too deeply"));
  }
  SUBCASE("a million list openers do not exhaust the stack") {
    Bytes b = header(MsgType::kCtlResponse);
    Writer w(b);
    w.varint(1);
    w.u8(0);
    w.bytes("");
    w.u8(0);
    for (int i = 0; i < 1'000'000; ++i) w.raw("\x05\x01", 2);
    w.u8(0);
    CHECK(says(decode(b), "nested too deeply"));
  }
}

TEST_CASE("wire: bad enum values and fragment indexes fail") {
  SUBCASE("address family") {
    Bytes b = header(MsgType::kJoin);
    Writer w(b);
    w.bytes("n");
    w.u64(1);
    w.u8(5);
    w.raw("\1\2\3\4\0\0\0\0", 8);
    CHECK(says(decode(b), "address family"));
  }
  SUBCASE("member state") {
    Bytes b = encode(Envelope{kVersion, 1, Join{MemberUpdate{"n", 1, Endpoint::v4(1, 2, 3, 4, 5),
                                                             0, MemberState::kLeft}}});
    b.back() = 4;
    CHECK(says(decode(b), "member state"));
  }
  SUBCASE("fragment index >= count, count 0, count over 32 bits") {
    const std::pair<uint64_t, uint64_t> cases[] = {{3, 3}, {0, 0}, {0, uint64_t{UINT32_MAX} + 1}};
    for (auto [index, count] : cases) {
      Bytes b = header(MsgType::kFragment);
      Writer w(b);
      w.u64(1);
      w.varint(index);
      w.varint(count);
      w.bytes("x");
      CHECK(says(decode(b), "bad fragment index"));
    }
  }
  SUBCASE("digest origins must ascend") {
    Bytes b = header(MsgType::kDigest);
    Writer w(b);
    w.u8(1);
    w.u64(0);
    w.u64(UINT64_MAX);
    w.varint(2);
    w.u64(5);
    w.varint(1);
    w.u64(5);
    w.varint(2);
    CHECK(says(decode(b), "ascending"));
  }
  SUBCASE("varint over 64 bits") {
    Bytes b = header(MsgType::kAck);
    b.insert(b.end(), {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02});
    CHECK(says(decode(b), "varint too long"));
    b.back() = 0x01;  // exactly UINT64_MAX
    auto r = decode(b);
    REQUIRE(r.ok());
    CHECK(std::get<Ack>(r->msg).msg_seq == UINT64_MAX);
  }
  SUBCASE("names over 255 bytes") {
    Bytes b = encode(Envelope{kVersion, 1, Join{MemberUpdate{std::string(256, 'n'), 1,
                                                             Endpoint::v4(1, 2, 3, 4, 5), 0,
                                                             MemberState::kAlive}}});
    CHECK(says(decode(b), "over its limit"));
  }
  SUBCASE("messages over kMaxFrameBytes") {
    Bytes b = encode(Envelope{kVersion, 1, Ack{1}});
    b.resize(kMaxFrameBytes + 1);
    CHECK(says(decode(b), "too large"));
  }
}

TEST_CASE("wire: entry_size_bound is an upper bound of an entry's encoded size") {
  const uint64_t seed = test_seed();
  INFO("seed=" << seed << " (MESHKV_TEST_SEED)");
  Gen g(seed + 5);
  auto check_entry = [](const crdt::KeyedEntry& ke, uint64_t from, uint64_t to) {
    crdt::Chunk c{ke.entry.dot.origin, from, to, {}};
    const size_t empty = encode(Envelope{kVersion, 1, ChunkMsg{c}}).size();
    c.entries.push_back(ke);
    const size_t one = encode(Envelope{kVersion, 1, ChunkMsg{c}}).size();
    INFO("key=" << ke.key.size() << " value=" << ke.entry.value.size()
                << " tombstone=" << ke.entry.tombstone << " hlc=" << ke.entry.hlc.raw
                << " seq=" << ke.entry.dot.seq);
    CHECK(one - empty <= crdt::entry_size_bound(ke.key.size(), ke.entry.value.size()));
  };
  // The worst case: longest key, largest value, 10-byte hlc and seq.
  crdt::KeyedEntry worst{std::string(crdt::kMaxKeyBytes, 'k'),
                         crdt::Entry{crdt::Hlc{UINT64_MAX}, crdt::Dot{1, UINT64_MAX}, false,
                                     std::string(crdt::kMaxValueBytes, 'v')}};
  check_entry(worst, UINT64_MAX, UINT64_MAX);
  for (int i = 0; i < 500; ++i) {
    crdt::KeyedEntry ke;
    ke.key.assign(i % 7 == 0 ? crdt::kMaxKeyBytes : g.below(crdt::kMaxKeyBytes) + 1, 'k');
    ke.entry.hlc.raw = g.u64();
    ke.entry.dot = crdt::Dot{g.next(), g.u64()};
    ke.entry.tombstone = g.chance(20);
    if (!ke.entry.tombstone) {
      const size_t sizes[] = {0, 127, 128, 16383, 16384, g.below(5000)};
      size_t n = i < 4 ? crdt::kMaxValueBytes - static_cast<size_t>(i) : sizes[g.below(6)];
      ke.entry.value.assign(n, 'v');
    }
    check_entry(ke, g.u64(), g.u64());
  }
}

TEST_CASE("wire: peek_header reads a valid header and rejects a short one") {
  const Bytes b = encode(Envelope{kVersion, 0x0102030405060708, Ping{1, 2, {}, std::nullopt}});
  auto h = peek_header(b.data(), b.size());
  REQUIRE(h.ok());
  CHECK(h->version == kVersion);
  CHECK(h->type == MsgType::kPing);
  CHECK(h->sender == 0x0102030405060708u);
  // The header alone is enough, even though the body is missing.
  CHECK(peek_header(b.data(), kHeaderBytes).ok());
  for (size_t n = 0; n < kHeaderBytes; ++n) {
    INFO("n=" << n);
    auto s = peek_header(b.data(), n);
    CHECK(!s.ok());
    CHECK(s.status().code() == Code::kCorruption);
  }
}

// An empty key is refused by the decoder itself, wherever it appears, so a
// message decodes or not regardless of what follows it.
TEST_CASE("wire: an empty-key chunk entry is refused with or without bytes after it") {
  Bytes plain = header(MsgType::kChunk);
  Writer w(plain);
  w.u64(1);                        // origin
  w.varint(0);                     // from
  w.varint(0);                     // to
  w.varint(1);                     // one entry:
  w.raw("\x00\x01\x00\x00", 4);    // empty key, tombstone, hlc 0, seq 0
  Bytes extended = plain;
  Writer(extended).raw("\x01\x00", 2);  // plus an empty extension field
  auto a = decode(plain);
  auto b = decode(extended);
  CHECK_FALSE(a.ok());
  CHECK_FALSE(b.ok());
  CHECK(says(b, "empty key"));
}

TEST_CASE("wire: to_json is valid JSON whatever the bytes: fields that are not UTF-8 go in base64") {
  using wire::Value;
  Value v = Value::object();
  v.set("key", "k");
  v.set("value", std::string("\xff\xfe", 2));
  CHECK(v.to_json() == R"({"key":"k","value_base64":"//4="})");
  // Valid UTF-8 of every length stays text; control characters are escaped.
  Value t = Value::object();
  t.set("value", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80\x01");
  CHECK(t.to_json() == "{\"value\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80\\u0001\"}");
  // Overlong forms, surrogates, code points above U+10FFFF, truncated and
  // stray continuation bytes are not UTF-8.
  for (const std::string& bad : {std::string("\xc0\xaf"), std::string("\xe0\x80\xaf"), std::string("\xed\xa0\x80"),
                                std::string("\xf4\x90\x80\x80"), std::string("\xe2\x9c"), std::string("\x80"),
                                std::string("a\xf5z")}) {
    Value b = Value::object();
    b.set("v", bad);
    CHECK(b.to_json().find("\"v_base64\":\"") != std::string::npos);
  }
  // A NUL byte is valid UTF-8, escaped.
  Value z = Value::object();
  z.set("v", std::string("a\0b", 3));
  CHECK(z.to_json() == R"({"v":"a\u0000b"})");
  // In a list, an object; in a field name, U+FFFD for each bad byte.
  Value l = Value::list();
  l.push(std::string("\xff", 1));
  CHECK(l.to_json() == R"([{"base64":"/w=="}])");
  Value k = Value::object();
  k.set(std::string("a\xff", 2), 1);
  CHECK(k.to_json() == "{\"a\xef\xbf\xbd\":1}");
}

TEST_CASE("wire: an entry with a time to live travels in an extended type that older nodes refuse") {
  crdt::KeyedEntry ke{"k", {}};
  ke.entry.hlc = crdt::Hlc::make(1'700'000'000'000, 3);
  ke.entry.dot = crdt::Dot{77, 5};
  ke.entry.value = std::string(1, 'v');  // not = "v": GCC 12 with the sanitizers warns (-Wrestrict, a false positive)
  Push push{9, crdt::Chunk{77, 0, 0, {ke}}};
  // Without a time to live: the plain type, byte for byte as before.
  const Bytes plain = encode(Envelope{kVersion, 77, push});
  CHECK(plain[3] == static_cast<uint8_t>(MsgType::kPush));
  push.chunk.entries[0].entry.ttl_ms = 2000;
  const Bytes ext = encode(Envelope{kVersion, 77, push});
  // The type byte is past what a node before it knows (kReadResp, 15), so
  // its peek_header refuses the datagram ("unknown message type"): it is
  // counted as malformed and dropped, never read without its time to live.
  CHECK(ext[3] == static_cast<uint8_t>(MsgType::kPushExt));
  CHECK(ext[3] > 15);
  // The layout, pinned (tests/corpus/decode/*_ext_ttl.bin are built the
  // same way): flags 8, then the ttl varint after the seq.
  const char* hex = "6d6b03104d00000000000000094d00000000000000000001016b08838080c0d6fcf3c50105d00f0176";
  Bytes pinned;
  for (size_t i = 0; hex[i] != 0; i += 2) pinned.push_back(static_cast<uint8_t>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  CHECK(ext == pinned);
  auto back = decode(ext);
  REQUIRE(back.ok());
  CHECK(std::get<Push>(back->msg) == push);
  // The same for chunks and read answers.
  const Bytes chunk = encode(Envelope{kVersion, 77, ChunkMsg{push.chunk}});
  CHECK(chunk[3] == static_cast<uint8_t>(MsgType::kChunkExt));
  REQUIRE(decode(chunk).ok());
  CHECK(std::get<ChunkMsg>(decode(chunk)->msg).chunk == push.chunk);
  ReadResp rr;
  rr.read_id = 4;
  rr.chunk = push.chunk;
  const Bytes read = encode(Envelope{kVersion, 77, rr});
  CHECK(read[3] == static_cast<uint8_t>(MsgType::kReadRespExt));
  REQUIRE(decode(read).ok());
  CHECK(std::get<ReadResp>(decode(read)->msg) == rr);
  // An old-type message with the flag set reads as it always did: the flag
  // is ignored and no time to live is read from the bytes after the seq.
  Bytes forged = ext;
  forged[3] = static_cast<uint8_t>(MsgType::kPush);
  auto old = decode(forged);
  if (old.ok()) CHECK(std::get<Push>(old->msg).chunk.entries.at(0).entry.ttl_ms == 0);
  // A zero or oversized time to live under the flag is malformed (zero is
  // written without the flag: one encoding per entry).
  Push zero = push;
  zero.chunk.entries[0].entry.ttl_ms = crdt::kMaxTtlMs + 1;
  CHECK(!decode(encode(Envelope{kVersion, 77, zero})).ok());
}

TEST_CASE("wire: a digest asking about more quarantined writes than allowed is refused") {
  Digest d;
  for (uint64_t i = 1; i <= kMaxQuarantineAsks + 1; ++i) d.quarantine_asks.push_back({i, i});
  const Bytes b = encode(Envelope{kVersion, 7, d});
  auto r = decode(b);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCorruption);
  d.quarantine_asks.pop_back();
  auto ok = decode(encode(Envelope{kVersion, 7, d}));
  REQUIRE(ok.ok());
  CHECK(std::get<Digest>(ok->msg).quarantine_asks.size() == kMaxQuarantineAsks);
}

TEST_CASE("wire: quarantine asks are bounded across repeats of their field") {
  // Two fields of 10 asks each decode as 20, which no single field may
  // carry: refused, so that whatever decodes also encodes back into one
  // field that decodes (the fuzzer found the round trip broken).
  Digest d;
  for (uint64_t i = 1; i <= 10; ++i) d.quarantine_asks.push_back({i, i});
  const Bytes one = encode(Envelope{kVersion, 7, d});
  Digest empty;
  const size_t bare = encode(Envelope{kVersion, 7, empty}).size();
  Bytes twice = one;
  twice.insert(twice.end(), one.begin() + static_cast<std::ptrdiff_t>(bare), one.end());
  auto r = decode(twice);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCorruption);
  REQUIRE(decode(one).ok());
}

TEST_CASE("wire: an empty reconciled extension on a push or chunk is refused cleanly") {
  // Found by fuzzing under UBSan: an extension of length 0 was copied out
  // with memcpy from a null buffer.
  crdt::Chunk c;
  c.origin = 7;
  c.from = c.to = 1;
  c.entries.push_back({"k", crdt::Entry{crdt::Hlc{5}, crdt::Dot{7, 1}, false, "v"}});
  for (const Message& m : {Message{ChunkMsg{c}}, Message{Push{1, c}}}) {
    Bytes b = encode(Envelope{kVersion, 1, m});
    REQUIRE(decode(b).ok());
    b.push_back(1);  // the reconciled extension's tag
    b.push_back(0);  // length 0
    auto r = decode(b);
    CHECK_FALSE(r.ok());
  }
}
