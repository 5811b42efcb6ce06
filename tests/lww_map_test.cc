// The flat key index and packed storage of crdt::LwwMap (issue 19): erased
// slots are reused, copies and moves keep the table pointed at their own
// slots, find() results stay valid while other keys are added, and arena
// bytes freed by replacements and erasures are used again.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crdt/lww_map.h"

using namespace meshkv::crdt;

namespace {
Entry val(uint64_t seq, std::string v) { return Entry{Hlc::make(100 + seq, 0), Dot{3, seq}, false, std::move(v)}; }

// Every key of `m` is found under itself, with its own value.
void check_self_consistent(const LwwMap& m) {
  size_t n = 0;
  m.for_each([&](std::string_view k, const EntryView& e) {
    ++n;
    EntryPtr f = m.find(k);
    REQUIRE(f != nullptr);
    CHECK(*f == e);
    CHECK(f->value.data() == e.value.data());  // the same stored entry
  });
  CHECK(n == m.size());
}
}  // namespace

TEST_CASE("lww map: erased slots are reused and the origin index follows them") {
  LwwMap m;
  for (uint64_t i = 1; i <= 100; ++i) m.merge("k" + std::to_string(i), val(i, "v" + std::to_string(i)));
  for (uint64_t i = 1; i <= 100; i += 2) CHECK(m.erase("k" + std::to_string(i)));
  CHECK(m.size() == 50);
  CHECK(m.find("k1") == nullptr);
  for (uint64_t i = 101; i <= 150; ++i) m.merge("n" + std::to_string(i), val(i, "w" + std::to_string(i)));
  CHECK(m.size() == 100);
  REQUIRE(m.find("n120") != nullptr);
  CHECK(m.find("n120")->value == "w120");
  CHECK(m.find("k2")->value == "v2");
  // The origin's scan sees exactly the live winners, in seq order.
  uint64_t last = 0;
  size_t seen = 0;
  m.scan_origin(3, 0, [&](std::string_view k, const EntryView& e) {
    CHECK(e.dot.seq > last);
    last = e.dot.seq;
    CHECK(m.find(k)->value.data() == e.value.data());
    ++seen;
    return true;
  });
  CHECK(seen == 100);
  m.shrink();
  check_self_consistent(m);
}

TEST_CASE("lww map: a copy and a moved-to map each answer from their own entries") {
  LwwMap a;
  for (uint64_t i = 1; i <= 2000; ++i) a.merge("key-" + std::to_string(i), val(i, "value-" + std::to_string(i)));
  EntryPtr kept = a.find("key-5");
  for (uint64_t i = 2001; i <= 4000; ++i) a.merge("key-" + std::to_string(i), val(i, "x"));
  CHECK(a.find("key-5")->value.data() == kept->value.data());  // growth moves no entry
  CHECK(kept->value == "value-5");

  LwwMap b = a;
  b.merge("key-5", val(9000, "newer"));
  CHECK(a.find("key-5")->value == "value-5");
  CHECK(b.find("key-5")->value == "newer");
  CHECK(a.digest().root() != b.digest().root());
  check_self_consistent(a);
  check_self_consistent(b);

  LwwMap c = std::move(b);
  CHECK(c.size() == 4000);
  CHECK(c.find("key-5")->value == "newer");
  CHECK(b.size() == 0);  // NOLINT(bugprone-use-after-move): left empty and usable
  b.merge("again", val(1, "v"));
  CHECK(b.find("again") != nullptr);
  CHECK(b.find("key-5") == nullptr);
  c = LwwMap();
  CHECK(c.size() == 0);
  CHECK(c.find("key-5") == nullptr);
  check_self_consistent(b);
}

TEST_CASE("lww map: replaced and erased entries' bytes are used again") {
  LwwMap m;
  auto key = [](uint64_t i) { return "key-" + std::to_string(i % 1000); };
  // 1000 keys, each replaced 200 times by a value of one of three sizes,
  // a tenth erased and written again each round: without reuse the arena
  // would grow by every record ever written (about 7 MB).
  uint64_t seq = 0;
  size_t peak = 0;
  for (int round = 0; round < 200; ++round) {
    for (uint64_t i = 0; i < 1000; ++i) {
      ++seq;
      m.merge(key(i), val(seq, std::string(20 + (seq % 3) * 9, 'v')));
      if (i % 10 == static_cast<uint64_t>(round % 10)) CHECK(m.erase(key(i)));
    }
    peak = std::max(peak, m.arena_block_bytes());
  }
  CHECK(m.size() == 900);
  CHECK(m.arena_live_bytes() <= 900 * 64);
  CHECK(peak <= 4 * 900 * 64);
  check_self_consistent(m);

  // Sizes that drift (every record longer than all before it) leave free
  // lists no new record takes: the map packs them away.
  for (int round = 0; round < 40; ++round) {
    for (uint64_t i = 0; i < 1000; ++i) m.merge(key(i), val(++seq, std::string(60 + round * 8, 'w')));
    peak = std::max(peak, m.arena_block_bytes());
  }
  CHECK(m.size() == 1000);
  CHECK(m.find("key-7")->value == std::string(60 + 39 * 8, 'w'));
  CHECK(m.arena_block_bytes() <= 3 * m.arena_live_bytes() + (size_t{2} << 20));
  m.shrink();
  CHECK(m.arena_block_bytes() <= 2 * m.arena_live_bytes() + (size_t{1} << 20));
  check_self_consistent(m);
}

TEST_CASE("lww map: stores the fields of an entry exactly, large values and ttl included") {
  LwwMap m;
  Entry e{Hlc::make(500, 7), Dot{0xfeedfacecafebeefULL, 1ull << 40}, false, std::string(300000, 'x'), 12345, true};
  m.merge("big", e);
  Entry t{Hlc::make(501, 0), Dot{9, 2}, true, "", 0, false, true};
  m.merge("gone", t);
  m.merge("", val(5, ""));  // an empty key and value
  REQUIRE(m.find("big") != nullptr);
  CHECK(m.find("big")->to_entry() == e);
  CHECK(m.find("gone")->to_entry() == t);
  CHECK(m.find("")->value.empty());
  CHECK(m.tombstones() == 1);
  // Replaced by a small value and back: in place and across the size limit.
  Entry small = e;
  small.hlc = Hlc::make(600, 0);
  small.value = "short";
  small.ttl_ms = 0;
  m.merge("big", small);
  CHECK(m.find("big")->to_entry() == small);
  LwwMap copy = m;
  Entry large = small;
  large.hlc = Hlc::make(700, 0);
  large.value = std::string(100000, 'y');
  m.merge("big", large);
  CHECK(copy.find("big")->to_entry() == small);
  CHECK(m.find("big")->to_entry() == large);
  CHECK(copy.digest().root() != m.digest().root());
  LwwMap moved = std::move(m);
  CHECK(moved.find("big")->value.size() == 100000);
  check_self_consistent(moved);
  check_self_consistent(copy);
}

TEST_CASE("lww map: past the small chunks of slots, copies and shrinking keep every entry") {
  LwwMap m;
  for (uint64_t i = 1; i <= 140000; ++i) m.merge("k" + std::to_string(i), val(i, "v" + std::to_string(i)));
  for (uint64_t i = 70001; i <= 140000; ++i) CHECK(m.erase("k" + std::to_string(i)));
  m.shrink();  // the erased slots at the end go, chunks with them
  CHECK(m.size() == 70000);
  LwwMap c = m;
  for (uint64_t i = 140001; i <= 150000; ++i) c.merge("n" + std::to_string(i), val(i, "w"));
  CHECK(c.size() == 80000);
  CHECK(m.find("n140001") == nullptr);
  CHECK(c.find("k69999")->value == "v69999");
  CHECK(m.find("k65537")->value == "v65537");
  check_self_consistent(m);
  check_self_consistent(c);
}

TEST_CASE("lww map: the origin index answers scans across seqs of every size") {
  // Seqs are kept as their lower 32 bits under groups of their upper 32:
  // scans must cross groups, and start inside one, at every boundary.
  std::mt19937_64 rng(1919);
  const uint64_t two32 = uint64_t{1} << 32;
  auto random_seq = [&]() -> uint64_t {
    switch (rng() % 5) {
      case 0: return 1 + rng() % 2000;
      case 1: return two32 - 1000 + rng() % 2000;
      case 2: return 3 * two32 + rng() % 100;
      case 3: return UINT64_MAX - rng() % 100;
      default: return rng();
    }
  };
  LwwMap m;
  std::map<std::string, Dot> winner;  // the reference: each key's winning dot
  std::set<std::pair<uint64_t, uint64_t>> used;
  for (uint64_t step = 1; step <= 20'000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 3000);
    if (rng() % 8 == 0) {
      CHECK(m.erase(key) == (winner.erase(key) == 1));
      continue;
    }
    Dot d{1 + rng() % 3, random_seq()};
    if (!used.insert({d.origin, d.seq}).second) continue;  // dots are unique
    m.merge(key, Entry{Hlc::make(1000 + step, 0), d, false, "v"});  // later hlc: always wins
    winner[key] = d;
    if (step % 5000 == 0) m.shrink();
  }
  for (uint64_t origin = 1; origin <= 3; ++origin) {
    std::vector<uint64_t> want_all;
    for (const auto& [k, d] : winner) {
      if (d.origin == origin) want_all.push_back(d.seq);
    }
    std::sort(want_all.begin(), want_all.end());
    for (uint64_t after : {uint64_t{0}, uint64_t{1000}, two32 - 1, two32, two32 + 5, 3 * two32 + 50,
                           UINT64_MAX - 50, UINT64_MAX, want_all.empty() ? 0 : want_all[want_all.size() / 2]}) {
      INFO("origin " << origin << " after " << after);
      std::vector<uint64_t> got;
      m.scan_origin(origin, after, [&](std::string_view k, const EntryView& e) {
        CHECK(winner.at(std::string(k)) == e.dot);
        got.push_back(e.dot.seq);
        return true;
      });
      std::vector<uint64_t> want;
      for (uint64_t s : want_all) {
        if (s > after) want.push_back(s);
      }
      CHECK(got == want);
    }
  }
  check_self_consistent(m);
}

TEST_CASE("lww map: the origin index goes sparse when its winners spread out, and dense again") {
  // Origin 1 writes 3,000 keys in order (dense), then rewrites 10 hot keys
  // over and over (its cold winners spread out: sparse) and writes 2,000
  // new keys; then origin 2 rewrites the cold and hot keys, and origin 1's
  // winners, the new keys, are close again: dense after a compaction.
  // Late and out-of-order writes, gaps and erasures all along; every phase
  // checked against a reference of each key's winning dot.
  std::mt19937_64 rng(2024);
  LwwMap m;
  std::map<std::string, Dot> winner;
  uint64_t hlc = 1000;
  uint64_t next[3] = {0, 1, 1};
  auto write = [&](const std::string& key, uint64_t origin, uint64_t seq) {
    m.merge(key, Entry{Hlc::make(++hlc, 0), Dot{origin, seq}, false, "v" + std::to_string(seq)});
    winner[key] = Dot{origin, seq};
  };
  auto check_scans = [&](const char* phase) {
    INFO(phase);
    std::set<Origin> have;
    for (const auto& [k, d] : winner) have.insert(d.origin);
    CHECK(m.origins() == std::vector<Origin>(have.begin(), have.end()));
    for (uint64_t origin = 1; origin <= 2; ++origin) {
      std::vector<uint64_t> all;
      for (const auto& [k, d] : winner) {
        if (d.origin == origin) all.push_back(d.seq);
      }
      std::sort(all.begin(), all.end());
      const uint64_t afters[] = {0, 1, 500, all.empty() ? 7 : all[all.size() / 3], all.empty() ? 9 : all.back(),
                                 UINT64_MAX};
      for (uint64_t after : afters) {
        INFO("origin " << origin << " after " << after);
        std::vector<uint64_t> got, want;
        m.scan_origin(origin, after, [&](std::string_view k, const EntryView& e) {
          CHECK(winner.at(std::string(k)) == e.dot);
          got.push_back(e.dot.seq);
          return true;
        });
        for (uint64_t q : all) {
          if (q > after) want.push_back(q);
        }
        CHECK(got == want);
      }
    }
    check_self_consistent(m);
  };
  // Phase 1: in order, with a few gaps and a few writes arriving late.
  std::vector<uint64_t> late;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t seq = next[1]++;
    if (i % 500 == 7) continue;  // a gap: a write of another key, lost
    if (i % 300 == 5) {
      late.push_back(seq);
      continue;
    }
    write("c" + std::to_string(i), 1, seq);
  }
  for (uint64_t seq : late) write("late" + std::to_string(seq), 1, seq);
  CHECK(m.index_form(1) == LwwMap::IndexForm::kDense);
  check_scans("in order");
  // Phase 2: hot keys rewritten by origin 1; a few cold keys erased.
  for (int i = 0; i < 30'000; ++i) {
    write("hot" + std::to_string(rng() % 10), 1, next[1]++);
    if (i % 3000 == 0) {
      const std::string k = "c" + std::to_string(rng() % 3000);
      CHECK(m.erase(k) == (winner.erase(k) == 1));
    }
  }
  CHECK(m.index_form(1) == LwwMap::IndexForm::kSparse);
  for (int i = 0; i < 2000; ++i) write("n" + std::to_string(i), 1, next[1]++);
  check_scans("spread out");
  // Phase 3: origin 2 takes the cold and hot keys over, in order.
  for (int i = 0; i < 3000; ++i) {
    if (winner.count("c" + std::to_string(i))) write("c" + std::to_string(i), 2, next[2]++);
  }
  for (uint64_t seq : late) write("late" + std::to_string(seq), 2, next[2]++);
  for (int i = 0; i < 10; ++i) write("hot" + std::to_string(i), 2, next[2]++);
  CHECK(m.index_form(2) == LwwMap::IndexForm::kDense);
  check_scans("taken over");
  m.shrink();
  CHECK(m.index_form(1) == LwwMap::IndexForm::kDense);
  check_scans("close again");
  // Phase 4: everything of origin 1 goes: its number is freed.
  for (int i = 0; i < 2000; ++i) {
    const std::string k = "n" + std::to_string(i);
    CHECK(m.erase(k) == (winner.erase(k) == 1));
  }
  CHECK(m.index_form(1) == LwwMap::IndexForm::kNone);
  m.shrink();
  check_scans("origin 1 gone");
  LwwMap copy(m);
  check_self_consistent(copy);
}

TEST_CASE("lww map: counts the internal keys outside sets through merge, erase, copy and move") {
  // Writes skip looking for a counter while the map holds none of its keys.
  LwwMap m;
  m.merge("plain", val(1, "v"));
  m.merge(std::string("\0sset-entry", 11), val(2, "v"));
  CHECK(m.other_internal() == 0);
  const std::string part("\0p0000000000000003key", 21);
  m.merge(part, val(3, "1"));
  m.merge(part, val(4, "2"));  // a newer value of the same key
  m.merge(std::string("\0rkey", 5), val(5, "r"));
  CHECK(m.other_internal() == 2);
  LwwMap copy(m);
  CHECK(copy.other_internal() == 2);
  CHECK(m.erase(part));
  CHECK(m.other_internal() == 1);
  CHECK(copy.other_internal() == 2);
  LwwMap moved(std::move(copy));
  CHECK(moved.other_internal() == 2);
  CHECK(copy.other_internal() == 0);  // NOLINT: a moved-from map is empty and usable
  CHECK(m.erase(std::string("\0rkey", 5)));
  CHECK(m.other_internal() == 0);
}
