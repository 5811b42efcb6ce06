// Edge cases of the CRDT pieces, one behaviour per case.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>

#include "crdt/replica.h"

using namespace meshkv::crdt;

TEST_CASE("hlc: issues strictly increasing timestamps while the wall clock stands still") {
  HlcClock c;
  Hlc a = c.now(1000), b = c.now(1000), d = c.now(999);
  CHECK(a < b);
  CHECK(b < d);
  CHECK(d.physical() == 1000);
}

TEST_CASE("hlc: follows a remote clock that is ahead, within the skew bound") {
  HlcClock c(/*max_skew_ms=*/500);
  CHECK(c.observe(Hlc::make(1400, 7), 1000));
  Hlc t = c.now(1000);
  CHECK(t > Hlc::make(1400, 7));
  CHECK(c.skew_rejections() == 0);
}

TEST_CASE("hlc: refuses to adopt a remote clock beyond the skew bound and counts it") {
  HlcClock c(/*max_skew_ms=*/500);
  CHECK_FALSE(c.observe(Hlc::make(1501, 0), 1000));
  CHECK(c.skew_rejections() == 1);
  CHECK(c.now(1000).physical() == 1000);
}

TEST_CASE("hlc: logical overflow borrows a millisecond instead of wrapping") {
  HlcClock c;
  c.restore(Hlc::make(5000, Hlc::kLogicalMask));
  Hlc t = c.now(5000);
  CHECK(t == Hlc::make(5001, 0));
}

TEST_CASE("hlc: skewed replicas still order causally related writes") {
  // Replica B's wall clock runs 300 ms behind A's; a write on B made after
  // seeing A's write must still win over it.
  std::mt19937_64 rng(7);
  for (int round = 0; round < 1000; ++round) {
    Replica a(1), b(2);
    uint64_t now = 1'000'000 + rng() % 1000;
    auto wa = a.write("k", "from-a", now + 300);
    b.apply_entry(wa->key, wa->entry, now);
    auto wb = b.write("k", "from-b", now);
    REQUIRE(wins(wb->entry, wa->entry));
    a.apply_entry(wb->key, wb->entry, now + 300);
    CHECK(a.map().find("k")->value == "from-b");
  }
}

TEST_CASE("causal context: out-of-order dots are absorbed once the gap closes") {
  CausalContext cc;
  cc.add({9, 3});
  cc.add({9, 2});
  CHECK(cc.vv().get(9) == 0);
  CHECK(cc.covers({9, 3}));
  cc.add({9, 1});
  CHECK(cc.vv().get(9) == 3);
  CHECK(cc.cloud_size() == 0);
}

TEST_CASE("causal context: a range is claimed only from a covered start") {
  CausalContext cc;
  CHECK_FALSE(cc.add_range(9, 5, 10));
  CHECK(cc.vv().get(9) == 0);
  CHECK(cc.add_range(9, 0, 4));
  CHECK(cc.add_range(9, 4, 10));
  CHECK(cc.vv().get(9) == 10);
}

TEST_CASE("causal context: the cloud is bounded per origin") {
  CausalContext cc;
  for (uint64_t s = 2; s < 2 + 2 * CausalContext::kMaxCloudPerOrigin; ++s) cc.add({1, s});
  CHECK(cc.cloud_size() == CausalContext::kMaxCloudPerOrigin);
  cc.add({1, 1});
  CHECK(cc.vv().get(1) == CausalContext::kMaxCloudPerOrigin + 1);
}

TEST_CASE("causal context: the fingerprint tells contexts apart, not the order they were built in") {
  CausalContext a, b;
  CHECK(a.fingerprint() == b.fingerprint());
  for (uint64_t s : {1, 2, 3, 5, 9}) a.add({7, s});
  for (uint64_t s : {9, 3, 1, 5, 2}) b.add({7, s});
  REQUIRE(a == b);
  CHECK(a.fingerprint() == b.fingerprint());
  // Same vector (7:3), different clouds: anti-entropy must see a difference.
  CausalContext c = a;
  c.add({7, 6});
  CHECK(c.vv() == a.vv());
  CHECK(c.fingerprint() != a.fingerprint());
  // A vector item and a cloud dot with the same numbers differ too.
  CausalContext v, w;
  v.add({7, 1});
  v.add({7, 2});
  w.add({7, 2});
  CHECK(v.fingerprint() != w.fingerprint());
  // Other origins, other seqs.
  CausalContext o = a;
  o.add({8, 1});
  CHECK(o.fingerprint() != a.fingerprint());
  CausalContext p = a;
  p.add({7, 4});  // closes the gap: 7:6 with 9 beyond
  CHECK(p.fingerprint() != a.fingerprint());
}

TEST_CASE("replica: keys over 1 KiB and values over 1 MiB are refused and change nothing") {
  Replica r(1);
  auto big_key = r.write(std::string(kMaxKeyBytes + 1, 'k'), "v", 1);
  CHECK(big_key.status().code() == meshkv::Code::kTooLarge);
  auto big_val = r.write("k", std::string(kMaxValueBytes + 1, 'v'), 1);
  CHECK(big_val.status().code() == meshkv::Code::kTooLarge);
  CHECK(big_val.status().message().find("1 MiB") != std::string::npos);
  CHECK(r.write("", "v", 1).status().code() == meshkv::Code::kInvalidArgument);
  CHECK(r.map().size() == 0);
  CHECK(r.last_seq() == 0);
  CHECK(r.write(std::string(kMaxKeyBytes, 'k'), std::string(kMaxValueBytes, 'v'), 1).ok());
}

TEST_CASE("replica: a delete leaves a tombstone that wins over the value") {
  Replica r(1);
  REQUIRE(r.write("k", "v", 10).ok());
  REQUIRE(r.write("k", std::nullopt, 10).ok());
  CHECK(r.map().find("k")->tombstone);
  CHECK(r.map().live() == 0);
  CHECK(r.map().tombstones() == 1);
}

TEST_CASE("delta: lists only what the peer misses, in seq order, labelled up to our vector") {
  Replica a(1);
  for (int i = 0; i < 100; ++i) REQUIRE(a.write("k" + std::to_string(i), "v", 10).ok());
  REQUIRE(a.write("k99", "again", 10).ok());  // seq 101 supersedes seq 100
  VersionVector peer;
  peer.raise(1, 95);
  auto chunks = a.delta(peer, 1 << 20);
  REQUIRE(chunks.size() == 1);
  CHECK(chunks[0].from == 95);
  CHECK(chunks[0].to == 101);
  REQUIRE(chunks[0].entries.size() == 5);  // seqs 96..99 and 101
  CHECK(chunks[0].entries.front().entry.dot.seq == 96);
  CHECK(chunks[0].entries.back().entry.dot.seq == 101);
}

TEST_CASE("delta: chunks respect the byte budget and chain their ranges") {
  Replica a(1);
  for (int i = 0; i < 50; ++i) REQUIRE(a.write("key" + std::to_string(i), std::string(40, 'x'), 10).ok());
  auto chunks = a.delta(VersionVector{}, 300);
  REQUIRE(chunks.size() > 5);
  uint64_t expect_from = 0;
  for (const auto& c : chunks) {
    size_t bytes = 0;
    for (const auto& ke : c.entries) bytes += entry_size_bound(ke.key.size(), ke.entry.value.size());
    CHECK(bytes <= 300);
    CHECK(c.from == expect_from);
    expect_from = c.to;
  }
  CHECK(expect_from == 50);
}

TEST_CASE("delta: an origin whose writes were all superseded still lets the peer catch up") {
  Replica a(1), b(2);
  auto w = b.write("k", "old", 10);
  a.apply_entry(w->key, w->entry, 20);
  REQUIRE(a.write("k", "new", 20).ok());
  VersionVector peer;
  auto chunks = a.delta(peer, 1400);
  Replica c(3);
  for (const auto& ch : chunks) REQUIRE(c.apply_chunk(ch, 30).ok());
  CHECK(c.vv() == a.vv());
  CHECK(c.map().find("k")->value == "new");
}

TEST_CASE("delta: entries held above our own vector travel without claiming a range") {
  Replica a(1), b(2);
  auto w1 = b.write("x", "1", 10);
  auto w2 = b.write("y", "2", 10);
  a.apply_entry(w2->key, w2->entry, 10);  // seq 2 before seq 1
  auto chunks = a.delta(VersionVector{}, 1400);
  Replica c(3);
  for (const auto& ch : chunks) REQUIRE(c.apply_chunk(ch, 10).ok());
  CHECK(c.vv().get(2) == 0);
  CHECK(c.context().covers(w2->entry.dot));
  CHECK(c.map().find("y") != nullptr);
}

TEST_CASE("retired origins: the row goes, the dots stay covered, and a write beyond brings it back") {
  Replica a(1), b(2);
  for (int i = 0; i < 3; ++i) {
    auto w = b.write("k" + std::to_string(i), "v", 10);
    a.apply_entry(w->key, w->entry, 10);
  }
  CHECK_FALSE(a.retire(2, 2));  // not its row
  CHECK_FALSE(a.retire(1, 0));  // never our own origin
  const uint64_t before = a.context().fingerprint();
  REQUIRE(a.retire(2, 3));
  CHECK(a.vv().size() == 0);
  CHECK(a.context().retired_at(2) == 3);
  CHECK(a.context().fingerprint() != before);
  CHECK(a.context().retired_hash() == retired_term(2, 3));
  // A late copy of a retired write is refused; its entry keeps its origin.
  auto late = Entry{};
  late.hlc = Hlc{5};
  late.dot = Dot{2, 2};
  late.value = "late";
  CHECK(a.apply("k1", late, 10) == Replica::Applied::kSkipped);
  CHECK(a.map().find("k1")->dot.origin == 2);
  CHECK(a.vv().size() == 0);
  // A dot beyond the final seq is not covered.
  CHECK_FALSE(a.context().covers(Dot{2, 4}));
  // A peer without the retirement is sent the retired origin's winners, up
  // to its final seq, only when asked for; then it can take the retirement.
  CHECK(a.delta(VersionVector{}, 1400).empty());
  Replica c(3);
  for (const auto& ch : a.delta(VersionVector{}, 1400, 0, ~Origin{0}, ~size_t{0}, true)) {
    REQUIRE(c.apply_chunk(ch, 10).ok());
  }
  CHECK(c.vv().get(2) == 3);
  CHECK(c.map().size() == 3);
  REQUIRE(c.retire(2, 3));
  CHECK(c.context() == a.context());
  // A write of the retired origin beyond its final seq: the row is back.
  auto w = b.write("k9", "after", 10);
  CHECK(a.apply_entry(w->key, w->entry, 10));
  CHECK(a.vv().get(2) == 4);
  CHECK(a.context().retired().empty());
  CHECK(a.context().retired_hash() == 0);
}

TEST_CASE("apply_chunk: malformed chunks are refused whole") {
  Replica a(1), r(2);
  auto w = a.write("k", "v", 10);
  Chunk wrong_origin{5, 0, 1, {*w}};
  CHECK(r.apply_chunk(wrong_origin, 10).code() == meshkv::Code::kCorruption);
  Chunk outside{1, 1, 2, {*w}};
  CHECK(r.apply_chunk(outside, 10).code() == meshkv::Code::kCorruption);
  Chunk backwards{1, 3, 2, {}};
  CHECK_FALSE(r.apply_chunk(backwards, 10).ok());
  KeyedEntry bad = *w;
  bad.entry.tombstone = true;
  Chunk tomb_with_value{1, 0, 1, {bad}};
  CHECK_FALSE(r.apply_chunk(tomb_with_value, 10).ok());
  CHECK(r.map().size() == 0);
  CHECK(r.vv().empty());
}

TEST_CASE("hash64: the tail's overlapping loads hash as the byte-wise word did") {
  // Digests are compared between nodes of different builds: hash64 must
  // not change its values. The reference reads the last 0-7 bytes as the
  // first version did.
  auto reference = [](std::string_view b, uint64_t seed) {
    uint64_t h = mix64(seed ^ (0x9e3779b97f4a7c15ULL * (b.size() + 1)));
    size_t i = 0;
    for (; i + 8 <= b.size(); i += 8) {
      uint64_t w = 0;
      for (size_t k = 0; k < 8; ++k) w |= static_cast<uint64_t>(static_cast<unsigned char>(b[i + k])) << (8 * k);
      h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
    }
    uint64_t tail = 0;
    for (size_t k = 0; i + k < b.size(); ++k) tail |= static_cast<uint64_t>(static_cast<unsigned char>(b[i + k])) << (8 * k);
    return mix64(h ^ tail ^ (static_cast<uint64_t>(b.size() - i) << 56));
  };
  std::mt19937_64 rng(7);
  for (size_t len = 0; len <= 40; ++len) {
    for (int rep = 0; rep < 20; ++rep) {
      std::string s(len, '\0');
      for (char& c : s) c = static_cast<char>(rng());
      for (uint64_t seed : {0, 1, 2}) {
        CAPTURE(len);
        CHECK(hash64(s, seed) == reference(s, seed));
      }
    }
  }
}

TEST_CASE("digest: equal states have equal digests whatever the merge order") {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::pair<std::string, Entry>> writes;
    for (int i = 0; i < 200; ++i) {
      Entry e;
      e.hlc = Hlc::make(1000 + rng() % 50, static_cast<uint64_t>(i));  // (hlc, origin) unique per write
      e.dot = {1 + rng() % 3, 1 + static_cast<uint64_t>(i)};
      e.tombstone = rng() % 4 == 0;
      if (!e.tombstone) e.value = "v" + std::to_string(rng() % 5);
      writes.emplace_back("k" + std::to_string(rng() % 40), e);
    }
    LwwMap a, b;
    for (const auto& [k, e] : writes) a.merge(k, e);
    std::shuffle(writes.begin(), writes.end(), rng);
    for (const auto& [k, e] : writes) b.merge(k, e);
    REQUIRE(a.digest().root() == b.digest().root());
  }
}

TEST_CASE("digest: one differing entry changes exactly its bucket, group and the root") {
  LwwMap a, b;
  for (int i = 0; i < 1000; ++i) {
    Entry e{Hlc::make(5, 0), Dot{1, static_cast<uint64_t>(i + 1)}, false, "v"};
    a.merge("key" + std::to_string(i), e);
    b.merge("key" + std::to_string(i), e);
  }
  REQUIRE(a.digest().root() == b.digest().root());
  b.merge("key7", Entry{Hlc::make(6, 0), Dot{2, 1}, false, "changed"});
  CHECK(a.digest().root() != b.digest().root());
  size_t groups = 0, buckets = 0;
  for (size_t g = 0; g < kDigestFanout; ++g) groups += a.digest().group(g) != b.digest().group(g);
  for (size_t k = 0; k < kDigestBuckets; ++k) buckets += a.digest().bucket(k) != b.digest().bucket(k);
  CHECK(groups == 1);
  CHECK(buckets == 1);
  CHECK(a.digest().bucket(bucket_of("key7")) != b.digest().bucket(bucket_of("key7")));
  // Erasing returns the digest to what it was without the key.
  a.erase("key7");
  b.erase("key7");
  CHECK(a.digest().root() == b.digest().root());
}

TEST_CASE("replica: a collected tombstone keeps its delete: a late copy of the older write stays out") {
  Replica a(1), b(2);
  auto w = a.write("k", std::string_view("old"), 1000);
  REQUIRE(w.ok());
  REQUIRE(b.apply_entry(w->key, w->entry, 1000));
  auto d = b.write("k", std::nullopt, 2000);
  REQUIRE(d.ok());
  CHECK(b.map().tombstones() == 1);
  CHECK_FALSE(b.collect("k", Dot{1, 1}));  // not the tombstone's dot: kept
  CHECK(b.collect("k", d->entry.dot));
  CHECK(b.map().size() == 0);
  CHECK(b.context().covers(d->entry.dot));
  // The older write arrives again (a late retransmission, or a peer that
  // never saw the delete): its dot is covered, so it is not merged.
  CHECK_FALSE(b.apply_entry(w->key, w->entry, 3000));
  CHECK(b.map().find("k") == nullptr);
  // A newer write of the key is, of course.
  auto again = a.write("k", std::string_view("new"), 4000);
  REQUIRE(again.ok());
  CHECK(b.apply_entry(again->key, again->entry, 4000));
}

TEST_CASE("replica: reset_to keeps the given entries, the clock and the write counter") {
  Replica a(7);
  auto x = a.write("x", std::string_view("1"), 1000);
  auto y = a.write("y", std::string_view("2"), 1000);
  REQUIRE((x.ok() && y.ok()));
  const Hlc before = a.clock().last();
  a.reset_to({*y});
  CHECK(a.map().size() == 1);
  CHECK(a.map().find("x") == nullptr);
  CHECK(a.context().covers(y->entry.dot));
  CHECK_FALSE(a.context().covers(x->entry.dot));  // x can come back from peers
  auto z = a.write("z", std::string_view("3"), 500);  // wall clock went back
  REQUIRE(z.ok());
  CHECK(z->entry.dot.seq == 3);  // no dot reused
  CHECK(z->entry.hlc > before);  // no time reused
}

TEST_CASE("replica: a delta capped at a few chunks per round still syncs everything, round after round") {
  Replica a(1), b(2);
  for (int i = 0; i < 3000; ++i) {
    REQUIRE(a.write("k" + std::to_string(i), std::string_view("value"), 1000).ok());
  }
  for (int i = 0; i < 3000; i += 3) REQUIRE(a.write("k" + std::to_string(i), std::nullopt, 1001).ok());
  int rounds = 0;
  for (; rounds < 1000; ++rounds) {
    const auto chunks = a.delta(b.vv(), 256, 0, ~Origin{0}, 4);
    REQUIRE(chunks.size() <= 4);
    if (chunks.empty()) break;
    for (const auto& c : chunks) REQUIRE(b.apply_chunk(c, 2000).ok());
  }
  CHECK(rounds < 1000);
  CHECK(b.vv() == a.vv());
  CHECK(b.map().size() == a.map().size());
  a.map().for_each([&](std::string_view k, const EntryView& e) {
    EntryPtr got = b.map().find(k);
    REQUIRE(got != nullptr);
    CHECK(*got == e);
  });
}

// ---- the quarantine rule (crdt/replica.h) ---------------------------------------------

namespace {
Entry value_at(uint64_t phys, Origin o, uint64_t seq, std::string v) {
  return Entry{Hlc::make(phys, 0), Dot{o, seq}, false, std::move(v)};
}
// A replica that collected a delete of "gone" at 5000 ms: horizon 5000.
Replica collected_at_5000() {
  Replica r(1);
  REQUIRE(r.write("gone", std::nullopt, 5000).ok());
  EntryPtr t = r.map().find("gone");
  REQUIRE(r.collect("gone", t->dot));
  REQUIRE(r.horizon().physical() == 5000);
  return r;
}
}  // namespace

TEST_CASE("quarantine: a judged write older than a collected delete of an absent key is kept aside") {
  Replica r = collected_at_5000();
  const Entry old = value_at(4000, 9, 1, "older than the delete");
  CHECK(r.apply("gone", old, 6000, /*judge=*/true) == Replica::Applied::kQuarantined);
  CHECK(r.map().find("gone") == nullptr);  // never shown
  CHECK(r.quarantined() == 1);
  CHECK_FALSE(r.context().covers(old.dot));  // open: a node that holds it may send it again
  CHECK(r.take_quarantined().size() == 1);
  // Judged again: still aside, once.
  CHECK(r.apply("gone", old, 6000, true) == Replica::Applied::kQuarantined);
  CHECK(r.quarantined() == 1);
  CHECK(r.take_quarantined().empty());
}

TEST_CASE("quarantine: without judging, or above the horizon, or with the key present, writes merge") {
  Replica r = collected_at_5000();
  CHECK(r.apply("gone", value_at(4000, 9, 1, "trusted"), 6000, false) == Replica::Applied::kWon);
  Replica s = collected_at_5000();
  CHECK(s.apply("new", value_at(5001, 9, 1, "after"), 6000, true) == Replica::Applied::kWon);
  CHECK(s.map().find("new")->vouched);  // judged and ordered: the verdict travels
  REQUIRE(s.write("live", "now", 6000).ok());
  CHECK(s.apply("live", value_at(4000, 9, 2, "old"), 6000, true) == Replica::Applied::kLost);
  CHECK(s.quarantined() == 0);
}

TEST_CASE("quarantine: a key that gets a value orders its quarantined writes") {
  Replica r = collected_at_5000();
  REQUIRE(r.apply("k", value_at(3000, 9, 1, "older"), 6000, true) == Replica::Applied::kQuarantined);
  REQUIRE(r.apply("k", value_at(4000, 8, 1, "newer"), 6000, true) == Replica::Applied::kQuarantined);
  // A replicated value above the horizon arrives: both are ordered against it and lose.
  CHECK(r.apply("k", value_at(5500, 7, 1, "live"), 6000, false) == Replica::Applied::kWon);
  CHECK(r.quarantined() == 0);
  auto released = r.take_released();
  REQUIRE(released.size() == 2);
  CHECK_FALSE(released[0].won);
  CHECK_FALSE(released[1].won);
  CHECK(r.map().find("k")->value == "live");
}

TEST_CASE("quarantine: a copy from a node that holds it, or a vouched copy, releases it") {
  Replica r = collected_at_5000();
  const Entry w = value_at(4000, 9, 1, "ordered elsewhere");
  REQUIRE(r.apply("k", w, 6000, true) == Replica::Applied::kQuarantined);
  Entry vouched = w;
  vouched.vouched = true;
  CHECK(r.apply("k", vouched, 6000, /*judge=*/false) == Replica::Applied::kWon);
  CHECK(r.map().find("k")->value == "ordered elsewhere");
  CHECK(r.quarantined() == 0);
  CHECK(r.context().covers(w.dot));
  Replica s = collected_at_5000();
  REQUIRE(s.apply("k", w, 6000, true) == Replica::Applied::kQuarantined);
  CHECK(s.apply("k", w, 6000, /*judge=*/false) == Replica::Applied::kWon);
  CHECK(s.quarantined() == 0);
}

TEST_CASE("quarantine: a vouched mark from a member that must reconcile counts for nothing") {
  // The write was vouched for when some node ordered it, before a newer
  // delete of its key was collected without the member that still holds it.
  // Taking the mark would show it again, older than that delete.
  Replica r = collected_at_5000();
  Entry stale = value_at(4000, 9, 1, "stale");
  stale.vouched = true;
  CHECK(r.apply("k", stale, 6000, /*judge=*/true) == Replica::Applied::kQuarantined);
  CHECK(r.map().find("k") == nullptr);
  CHECK_FALSE(r.context().covers(stale.dot));
  // The same write marked unordered and vouched (no sender sends that, but
  // the mark must not make it more trusted): judged too.
  Replica s = collected_at_5000();
  Entry both = stale;
  both.unordered = true;
  CHECK(s.apply("k", both, 6000, /*judge=*/true) == Replica::Applied::kQuarantined);
}

TEST_CASE("quarantine: a judged chunk's range claim is not taken") {
  Replica r = collected_at_5000();
  Chunk c{9, 0, 3, {KeyedEntry{"k", value_at(4000, 9, 2, "stale")}}};
  REQUIRE(r.apply_chunk(c, 6000, nullptr, /*judge=*/true).ok());
  CHECK(r.vv().get(9) == 0);
  CHECK(r.quarantined() == 1);
  REQUIRE(r.apply_chunk(c, 6000, nullptr, /*judge=*/false).ok());  // from a node that holds it
  CHECK(r.vv().get(9) == 3);
  CHECK(r.quarantined() == 0);
}

TEST_CASE("quarantine: a writer's own quarantined write travels inside its claims, for each peer to judge") {
  // A node that reconciled put its own delete of "k" (dot 1:2) aside and
  // recorded the dot (node/gc.cc). A peer that holds an older value of "k"
  // and has not seen the delete must not be told it has: it would keep the
  // value, and the delete's holders would collect it on the peer's word.
  // It must get the delete itself, marked unordered, and judge it.
  Replica r = collected_at_5000();  // its own dot 1:1 collected
  REQUIRE(r.write("a", "before", 6000).ok());  // 1:2
  REQUIRE(r.write("k", std::nullopt, 6050).ok());  // 1:3
  REQUIRE(r.write("b", "after", 6100).ok());  // 1:4
  const Entry del = r.map().find("k")->to_entry();
  // What node/gc.cc's resync does with it: the rest kept, the delete aside.
  r.reset_to({KeyedEntry{"a", r.map().find("a")->to_entry()}, KeyedEntry{"b", r.map().find("b")->to_entry()}});
  r.record_dot(Dot{1, 1});
  REQUIRE(r.quarantine_entry("k", del));
  r.record_dot(del.dot);
  REQUIRE(r.vv().get(1) == 4);
  Replica peer(2);
  REQUIRE(peer.apply("k", value_at(4000, 9, 1, "older than the delete"), 6000, false) == Replica::Applied::kWon);
  for (const Chunk& c : r.delta(peer.vv(), 1200)) REQUIRE(peer.apply_chunk(c, 6200, nullptr, false).ok());
  // The delete came inside the claim, marked unordered: the peer judged it
  // against the value it holds, and it won.
  REQUIRE(peer.map().find("k") != nullptr);
  CHECK(peer.map().find("k")->tombstone);
  CHECK(peer.map().find("k")->vouched);  // the verdict travels on
  CHECK(peer.context().covers(del.dot));
  CHECK(peer.map().find("a") != nullptr);
  CHECK(peer.map().find("b") != nullptr);
  CHECK(peer.vv().get(1) == 4);
  // A peer that cannot order it (key absent, below its horizon) keeps it
  // aside, never shown; the claim is taken, as the writer took it.
  Replica far(3);
  REQUIRE(far.write("x", std::nullopt, 7000).ok());  // a delete above it, collected
  REQUIRE(far.collect("x", far.map().find("x")->dot));
  for (const Chunk& c : r.delta(far.vv(), 1200)) REQUIRE(far.apply_chunk(c, 6200, nullptr, false).ok());
  CHECK(far.map().find("k") == nullptr);
  CHECK(far.quarantined() == 1);
  // A peer that already covers the dot is sent nothing of it.
  for (const Chunk& c : r.delta(peer.vv(), 1200)) CHECK(c.from >= 4);
}

TEST_CASE("quarantine: a local write of an absent key goes above the horizon, whatever the clock says") {
  Replica r = collected_at_5000();
  r.raise_horizon(Hlc::make(90'000, 0));  // learned from a peer whose clock runs ahead
  auto w = r.write("k", "written with a clock far behind", 1000);
  REQUIRE(w.ok());
  CHECK(w->entry.hlc > r.horizon());
}

TEST_CASE("quarantine: bounded, and the overflow is counted") {
  Replica r = collected_at_5000();
  for (uint64_t i = 1; i <= Replica::kMaxQuarantined + 10; ++i) {
    r.apply("k" + std::to_string(i % 1000), value_at(4000, 9, i, "v"), 6000, true);
  }
  CHECK(r.quarantined() == Replica::kMaxQuarantined);
  CHECK(r.quarantine_overflow() == 10);
}

TEST_CASE("quarantine: bounded in bytes too: large values cannot exhaust memory") {
  Replica r = collected_at_5000();
  const std::string big(kMaxValueBytes, 'x');
  size_t kept = 0;
  for (uint64_t i = 1; i <= 80; ++i) {
    r.apply("k" + std::to_string(i), value_at(4000, 9, i, big), 6000, true);
    kept = r.quarantined();
  }
  CHECK(kept * kMaxValueBytes <= Replica::kMaxQuarantinedBytes);
  CHECK(kept >= 60);
  CHECK(r.quarantine_overflow() == 80 - kept);
  // Leaving quarantine gives the room back.
  r.unquarantine("k1", Dot{});
  r.apply("k100", value_at(4000, 9, 100, big), 6000, true);
  CHECK(r.quarantined() == kept);
}

TEST_CASE("starting over: a dropped delete keeps older writes of its key from showing") {
  // The node showed a delete of "k" at 4500, then started over from a peer
  // that holds it: the delete was dropped (the peer sends it again). A
  // member lagging behind sends an older value of "k" first.
  Replica r = collected_at_5000();
  r.reset_to({});
  r.shadow_delete("k", Hlc::make(4500, 0));
  const Entry older = value_at(4000, 9, 1, "older");
  CHECK(r.apply("k", older, 6000, /*judge=*/false) == Replica::Applied::kLost);
  CHECK(r.map().find("k") == nullptr);
  CHECK(r.context().covers(older.dot));  // beaten, as the delete would have
  // The delete comes back, then a newer value: both taken as usual.
  Entry del{Hlc::make(4500, 0), Dot{8, 1}, true, {}};
  CHECK(r.apply("k", del, 6000, false) == Replica::Applied::kWon);
  CHECK(r.shadow_deletes() == 0);
  CHECK(r.apply("k", value_at(5500, 9, 2, "newer"), 6000, false) == Replica::Applied::kWon);
  CHECK(r.map().find("k")->value == "newer");
  // A value newer than the dropped delete is shown at once, and ends it.
  Replica s = collected_at_5000();
  s.reset_to({});
  s.shadow_delete("j", Hlc::make(4500, 0));
  CHECK(s.apply("j", value_at(4600, 9, 3, "after"), 6000, false) == Replica::Applied::kWon);
  CHECK(s.shadow_deletes() == 0);
}
