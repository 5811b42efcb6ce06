// The record log: what a crash or a damaged disk leaves behind, and how it
// is read back.
#include <doctest/doctest.h>

#include "test_util.h"
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/crc32c.h"
#include "store/fault_env.h"
#include "store/record_log.h"

using namespace meshkv;
using namespace meshkv::store;

namespace {
using meshkv::testing::slurp;
using meshkv::testing::spit;
struct TempDir : meshkv::testing::TempDir {
  TempDir() : meshkv::testing::TempDir("meshkv-store-test") {}
};

std::string write_three(const std::string& path) {
  RecordWriter w;
  REQUIRE(w.open(path, 0).ok());
  w.append("first");
  w.append("");
  w.append(std::string(1000, 'x'));
  REQUIRE(w.sync().ok());
  return slurp(path);
}
}  // namespace

TEST_CASE("store: crc32c matches the standard check value") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c_portable("123456789", 9) == 0xE3069283u);
  // The instruction path agrees with the table at every length and alignment.
  std::string buf;
  for (int i = 0; i < 300; ++i) buf.push_back(static_cast<char>(i * 131 + 7));
  for (size_t off = 0; off < 9; ++off) {
    for (size_t n = 0; off + n <= buf.size(); n += 13) {
      CHECK(crc32c(buf.data() + off, n) == crc32c_portable(buf.data() + off, n));
    }
  }
}

TEST_CASE("store: records read back as written") {
  TempDir d;
  const std::string f = d.path + "/log";
  write_three(f);
  auto r = read_records(f);
  REQUIRE(r.ok());
  REQUIRE(r->records.size() == 3);
  CHECK(r->records[0] == "first");
  CHECK(r->records[1].empty());
  CHECK(r->records[2].size() == 1000);
  CHECK_FALSE(r->torn_tail);
  CHECK(r->valid_bytes == r->file_bytes);
}

TEST_CASE("store: a torn last record, cut anywhere, is reported as a torn tail") {
  TempDir d;
  const std::string f = d.path + "/log";
  const std::string whole = write_three(f);
  const size_t last_start = whole.size() - 1008;
  for (size_t cut = last_start + 1; cut < whole.size(); cut += 37) {
    spit(f, whole.substr(0, cut));
    auto r = read_records(f);
    REQUIRE(r.ok());
    CHECK(r->records.size() == 2);
    CHECK(r->torn_tail);
    CHECK(r->valid_bytes == last_start);
  }
}

TEST_CASE("store: a last record with a bad checksum is a torn tail too") {
  TempDir d;
  const std::string f = d.path + "/log";
  std::string whole = write_three(f);
  whole.back() ^= 0x40;
  spit(f, whole);
  auto r = read_records(f);
  REQUIRE(r.ok());
  CHECK(r->records.size() == 2);
  CHECK(r->torn_tail);
}

TEST_CASE("store: damage in the middle is corruption naming file and offset") {
  TempDir d;
  const std::string f = d.path + "/log";
  std::string whole = write_three(f);
  whole[10] ^= 0x01;  // inside the first record's payload
  spit(f, whole);
  auto r = read_records(f);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCorruption);
  CHECK(r.status().message().find(f) != std::string::npos);
  CHECK(r.status().message().find("offset 0") != std::string::npos);
  auto salvage = read_records(f, /*discard_damaged=*/true);
  REQUIRE(salvage.ok());
  CHECK(salvage->records.empty());
  CHECK(salvage->torn_tail);
}

TEST_CASE("store: scan_records calls every bad record damage, the last one included") {
  TempDir d;
  const std::string f = d.path + "/snapshot";
  const std::string whole = write_three(f);
  const std::vector<std::string> want{"first", "", std::string(1000, 'x')};
  {
    auto s = scan_records(f);
    REQUIRE(s.ok());
    CHECK(s->damage.empty());
    CHECK(s->complete);
    REQUIRE(s->records.size() == 3);
    CHECK(*s->records[0] == "first");
    CHECK(s->checksum == records_checksum(want));
    CHECK(records_checksum(want) != records_checksum({"first", std::string(1000, 'x')}));
  }
  const size_t last = whole.size() - 1008;
  SUBCASE("a flipped payload byte of the last record: a checksum mismatch, not a torn tail") {
    std::string bad = whole;
    bad.back() ^= 0x40;
    spit(f, bad);
    auto s = scan_records(f);
    REQUIRE(s.ok());
    REQUIRE(s->damage.size() == 1);
    CHECK(s->damage[0].record == 2);
    CHECK(s->damage[0].offset == last);
    CHECK(s->damage[0].what == "checksum mismatch");
    CHECK(s->complete);
    CHECK_FALSE(s->records[2]);
    CHECK(s->checksum == records_checksum(want));  // from the stored checksums
  }
  SUBCASE("a bad record in the middle is skipped, the ones after it kept") {
    std::string bad = whole;
    bad[10] ^= 0x01;
    spit(f, bad);
    auto s = scan_records(f);
    REQUIRE(s.ok());
    REQUIRE(s->damage.size() == 1);
    CHECK(s->damage[0].offset == 0);
    CHECK_FALSE(s->records[0]);
    REQUIRE(s->records.size() == 3);
    CHECK(*s->records[2] == want[2]);
  }
  SUBCASE("a length that runs past the end stops the reading there") {
    std::string bad = whole;
    bad[last + 1] ^= 0x10;  // 1000 + 4096
    spit(f, bad);
    auto s = scan_records(f);
    REQUIRE(s.ok());
    REQUIRE(s->damage.size() == 1);
    CHECK(s->damage[0].offset == last);
    CHECK(s->damage[0].what.find("record length 5096 runs past the end of the file") == 0);
    CHECK_FALSE(s->complete);
    CHECK(s->records.size() == 2);
  }
  SUBCASE("cut short") {
    spit(f, whole.substr(0, last + 3));
    auto s = scan_records(f);
    REQUIRE(s.ok());
    REQUIRE(s->damage.size() == 1);
    CHECK(s->damage[0].what == "3 stray bytes after the last record");
    CHECK_FALSE(s->complete);
  }
}

TEST_CASE("store: appending after a torn tail overwrites it") {
  TempDir d;
  const std::string f = d.path + "/log";
  const std::string whole = write_three(f);
  spit(f, whole.substr(0, whole.size() - 5));
  auto r = read_records(f);
  REQUIRE(r.ok());
  RecordWriter w;
  REQUIRE(w.open(f, r->valid_bytes).ok());
  w.append("again");
  REQUIRE(w.sync().ok());
  auto r2 = read_records(f);
  REQUIRE(r2.ok());
  REQUIRE(r2->records.size() == 3);
  CHECK(r2->records[2] == "again");
  CHECK_FALSE(r2->torn_tail);
}

TEST_CASE("store: atomic replacement leaves the whole new file and no temporary") {
  TempDir d;
  const std::string f = d.path + "/snap";
  REQUIRE(write_records_atomically(f, {"a", "b"}).ok());
  REQUIRE(write_records_atomically(f, {"c"}).ok());
  auto r = read_records(f);
  REQUIRE(r.ok());
  REQUIRE(r->records.size() == 1);
  CHECK(r->records[0] == "c");
  CHECK(::access((f + ".tmp").c_str(), F_OK) != 0);
}

TEST_CASE("store: a lock has one holder at a time and is free again once released") {
  TempDir d;
  Env& env = Env::posix();
  auto a = env.lock(d.path + "/LOCK");
  REQUIRE(a.ok());
  auto b = env.lock(d.path + "/LOCK");
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == Code::kUnavailable);
  a->reset();
  CHECK(env.lock(d.path + "/LOCK").ok());
}

// ---- under injected faults (store/fault_env.h) -------------------------------

namespace {
std::vector<std::string> records_of(Env& env, const std::string& path) {
  auto r = read_records(path, false, env);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return r->records;
}
}  // namespace

TEST_CASE("store: a crash at any point of an atomic write leaves the old file or the new") {
  const std::vector<std::string> old_recs = {"old-1", "old-2"}, new_recs = {"new"};
  uint64_t total = 0;
  for (uint64_t k = 0;; ++k) {
    FaultEnv env;
    REQUIRE(write_records_atomically("/snap", old_recs, env).ok());
    const uint64_t before = env.ops();
    env.power_off_after(k);
    const bool ok = write_records_atomically("/snap", new_recs, env).ok();
    total = env.ops() - before;
    env.crash();
    const auto got = records_of(env, "/snap");
    CHECK((got == old_recs || got == new_recs));
    if (ok) CHECK(got == new_recs);  // durable once it returns ok
    if (ok) break;
  }
  CHECK(total > 4);
}

TEST_CASE("store: a write torn at any byte of the last record is a torn tail") {
  const std::string last(20, 'z');
  for (size_t keep = 0; keep < kRecordHeader + last.size(); ++keep) {
    FaultEnv env;
    RecordWriter w(env);
    REQUIRE(w.open("/log", 0).ok());
    REQUIRE(env.sync_dir("/").ok());
    w.append("a");
    w.append("b");
    REQUIRE(w.sync().ok());
    env.tear_write(1, keep);
    w.append(last);
    CHECK_FALSE(w.sync().ok());
    env.crash();
    auto r = read_records("/log", false, env);
    REQUIRE(r.ok());
    CHECK(r->records == std::vector<std::string>{"a", "b"});
    CHECK(r->torn_tail == (keep > 0));
    CHECK(r->file_bytes - r->valid_bytes == keep);
  }
}

TEST_CASE("store: ENOSPC part-way through a flush leaves no partial record behind later ones") {
  FaultEnv env;
  RecordWriter w(env);
  REQUIRE(w.open("/log", 0).ok());
  w.append("before");
  REQUIRE(w.sync().ok());
  env.no_space(1, 5);
  w.append("failed once");
  const Status s = w.flush();
  CHECK(s.code() == Code::kIo);
  CHECK(s.message().find("No space left on device") != std::string::npos);
  CHECK(s.message().find("/log") != std::string::npos);
  w.append("after");
  REQUIRE(w.sync().ok());  // the retry writes what failed, then the rest
  CHECK(records_of(env, "/log") == std::vector<std::string>{"before", "failed once", "after"});
}

TEST_CASE("store: a failed sync is reported and a retry makes the records durable") {
  FaultEnv env;
  RecordWriter w(env);
  REQUIRE(w.open("/log", 0).ok());
  REQUIRE(env.sync_dir("/").ok());
  env.fail_sync(1);
  w.append("r");
  CHECK(w.sync().message().find("Input/output error") != std::string::npos);
  REQUIRE(w.sync().ok());
  env.crash();
  CHECK(records_of(env, "/log") == std::vector<std::string>{"r"});
}
