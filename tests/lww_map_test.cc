// The flat key index of crdt::LwwMap (issue 19): erased slots are reused,
// copies and moves keep the table pointed at their own slots, and find()
// results stay valid while other keys are added.
#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "crdt/lww_map.h"

using namespace meshkv::crdt;

namespace {
Entry val(uint64_t seq, std::string v) { return Entry{Hlc::make(100 + seq, 0), Dot{3, seq}, false, std::move(v)}; }

// Every key of `m` is found under itself, with its own value.
void check_self_consistent(const LwwMap& m) {
  size_t n = 0;
  m.for_each([&](const std::string& k, const Entry& e) {
    ++n;
    const Entry* f = m.find(k);
    REQUIRE(f != nullptr);
    CHECK(f == &e);
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
  m.scan_origin(3, 0, [&](const std::string& k, const Entry& e) {
    CHECK(e.dot.seq > last);
    last = e.dot.seq;
    CHECK(m.find(k) == &e);
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
  const Entry* kept = a.find("key-5");
  for (uint64_t i = 2001; i <= 4000; ++i) a.merge("key-" + std::to_string(i), val(i, "x"));
  CHECK(a.find("key-5") == kept);  // growth moves no entry

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
