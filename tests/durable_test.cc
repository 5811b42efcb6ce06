// A node's data directory and key files under power loss, failed syncs,
// full disks and torn writes (store::FaultEnv): whatever happens, a reopen
// finds every write acknowledged before it, and starts.
//
// Acknowledged: appended, then a sync() that returned ok, as the server
// acknowledges a local write (src/net/storage.cc).
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "node/durable.h"
#include "store/fault_env.h"

using namespace meshkv;
using meshkv::node::Durable;
using meshkv::store::FaultEnv;

namespace {
const std::string kDir = "/data";

node::LogOp write_op(int i) {
  node::LogOp op;
  op.local = true;
  const auto n = static_cast<uint64_t>(i);
  op.ke = crdt::KeyedEntry{"k" + std::to_string(i),
                           crdt::Entry{crdt::Hlc::make(1000 + n, 0), crdt::Dot{7, n + 1}, false, "v"}};
  return op;
}

// The writer's side of one run: what it holds and what it acknowledged.
struct Writer {
  std::vector<crdt::KeyedEntry> entries;
  std::vector<std::string> pending;  // appended, not yet acknowledged
  std::set<std::string> acked;
  std::vector<std::string> errors;

  void note(const Status& s) {
    if (!s.ok()) errors.push_back(s.message());
  }
  void append(Durable& d, int i) {
    d.append({write_op(i)});
    entries.push_back(write_op(i).ke);
    pending.push_back(entries.back().key);
  }
  void sync(Durable& d) {
    const Status s = d.sync();
    note(s);
    if (s.ok()) acked.insert(pending.begin(), pending.end());
    if (s.ok()) pending.clear();
  }
  void snapshot(Durable& d) {
    node::Snapshot s;
    s.id = "n1";
    s.entries = entries;
    note(d.snapshot(std::move(s)));
  }
};

// A node's life: open a new directory and snapshot it at once (as the
// server does), 8 writes synced in pairs, and two compactions (snapshot, new
// segment, removal of the segments before it). Stops at nothing: after a
// power loss every call fails, as the process would be gone.
void workload(FaultEnv& env, Writer& w) {
  Durable::Opened o;
  auto d = Durable::open(kDir, false, o, env);
  if (!d.ok()) return w.note(d.status());
  w.snapshot(**d);
  for (int i = 0; i < 8; ++i) {
    w.append(**d, i);
    if (i % 2 == 1) w.sync(**d);
    if (i == 3 || i == 5) w.snapshot(**d);
  }
}

// Every key a reopen of the directory recovers. REQUIREs that it opens.
std::set<std::string> recovered(FaultEnv& env, std::vector<std::string>* warnings = nullptr) {
  Durable::Opened o;
  auto d = Durable::open(kDir, false, o, env);
  REQUIRE_MESSAGE(d.ok(), d.status().to_string());
  std::set<std::string> keys;
  if (o.snapshot) {
    for (const auto& ke : o.snapshot->entries) keys.insert(ke.key);
  }
  for (const auto& op : o.ops) keys.insert(op.ke.key);
  if (warnings) *warnings = o.warnings;
  return keys;
}

bool holds_all(const std::set<std::string>& got, const std::set<std::string>& want) {
  for (const auto& k : want) {
    if (got.count(k) == 0) return false;
  }
  return true;
}

// After recovery the directory takes new writes that survive the next crash.
void check_usable_after_recovery(FaultEnv& env, const std::set<std::string>& acked) {
  {
    Durable::Opened o;
    auto d = Durable::open(kDir, false, o, env);
    REQUIRE(d.ok());
    (*d)->append({write_op(99)});
    REQUIRE((*d)->sync().ok());
  }
  env.crash();
  const auto got = recovered(env);
  CHECK(holds_all(got, acked));
  CHECK(got.count("k99") == 1);
}
}  // namespace

TEST_CASE("durable: a power loss after any operation keeps every acknowledged write") {
  FaultEnv probe;
  Writer whole;
  workload(probe, whole);
  REQUIRE(whole.errors.empty());
  REQUIRE(whole.acked.size() == 8);
  const uint64_t total = probe.ops();
  for (uint64_t k = 0; k <= total; ++k) {
    CAPTURE(k);
    FaultEnv env;
    env.power_off_after(k);
    Writer w;
    workload(env, w);
    env.crash();
    const auto got = recovered(env);
    CHECK(holds_all(got, w.acked));
    check_usable_after_recovery(env, w.acked);
  }
}

TEST_CASE("durable: a failed sync is reported and its write not acknowledged") {
  FaultEnv env;
  Durable::Opened o;
  auto d = Durable::open(kDir, false, o, env);
  REQUIRE(d.ok());
  (*d)->append({write_op(0)});
  REQUIRE((*d)->sync().ok());
  env.fail_sync(1);
  (*d)->append({write_op(1)});
  const Status s = (*d)->sync();
  CHECK(s.code() == Code::kIo);
  CHECK(s.message().find("Input/output error") != std::string::npos);
  CHECK((*d)->dirty());
  SUBCASE("a power loss now may take the write") {
    env.crash();
    CHECK(recovered(env) == std::set<std::string>{"k0"});
  }
  SUBCASE("a sync that then succeeds makes it durable") {
    REQUIRE((*d)->sync().ok());
    env.crash();
    CHECK(recovered(env) == std::set<std::string>{"k0", "k1"});
  }
}

TEST_CASE("durable: ENOSPC on any write is an error, and loses nothing acknowledged") {
  FaultEnv probe;
  Writer whole;
  workload(probe, whole);
  // Each write of the workload in turn (log records and snapshot files).
  for (uint64_t n = 1; n < 40; ++n) {
    for (size_t part : {size_t{0}, size_t{5}}) {
      CAPTURE(n);
      CAPTURE(part);
      FaultEnv env;
      env.no_space(n, part);
      Writer w;
      workload(env, w);
      const bool hit = !w.errors.empty();
      if (hit) CHECK(w.errors.front().find("No space left on device") != std::string::npos);
      const auto restarted = recovered(env);  // no power loss
      CHECK(holds_all(restarted, w.acked));
      env.crash();
      const auto rebooted = recovered(env);
      CHECK(holds_all(rebooted, w.acked));
      if (!hit) return;  // n is past the workload's last write
    }
  }
  FAIL("the workload has more writes than the test tries");
}

TEST_CASE("durable: a write torn at any byte of the last record is cut on reopen with a warning") {
  const size_t record = node::encode_op(write_op(3)).size() + store::kRecordHeader;
  for (size_t keep = 0; keep < record; ++keep) {
    CAPTURE(keep);
    FaultEnv env;
    {
      Durable::Opened o;
      auto d = Durable::open(kDir, false, o, env);
      REQUIRE(d.ok());
      for (int i = 0; i < 3; ++i) (*d)->append({write_op(i)});
      REQUIRE((*d)->sync().ok());
      env.tear_write(1, keep);
      (*d)->append({write_op(3)});
    }
    env.crash();
    std::vector<std::string> warnings;
    CHECK(recovered(env, &warnings) == std::set<std::string>{"k0", "k1", "k2"});
    if (keep == 0) {
      CHECK(warnings.empty());
    } else {
      REQUIRE(warnings.size() == 1);
      CHECK(warnings[0].find("cut off " + std::to_string(keep) + " bytes") != std::string::npos);
    }
    check_usable_after_recovery(env, {"k0", "k1", "k2"});
  }
}

TEST_CASE("durable: a data directory has one holder, and a power loss frees it") {
  FaultEnv env;
  Durable::Opened o1, o2;
  auto a = Durable::open(kDir, false, o1, env);
  REQUIRE(a.ok());
  auto b = Durable::open(kDir, false, o2, env);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == Code::kUnavailable);
  CHECK(b.status().message().find("in use by another meshkv process") != std::string::npos);
  env.crash();
  CHECK(Durable::open(kDir, false, o2, env).ok());
}

// ---- key files ------------------------------------------------------------------

TEST_CASE("keys: a power loss at any point of replacing a key file leaves the old key or the new") {
  const std::string path = "/meshkv.key";
  const crypto::ClusterKey old_key = crypto::new_cluster_key(), new_key = crypto::new_cluster_key();
  for (uint64_t k = 0;; ++k) {
    CAPTURE(k);
    FaultEnv env;
    REQUIRE(crypto::write_cluster_key(path, old_key, false, env).ok());
    env.power_off_after(k);
    const bool replaced = crypto::write_cluster_key(path, new_key, true, env).ok();
    env.crash();
    auto loaded = crypto::load_cluster_key(path, env);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
    CHECK((loaded->key == old_key.key || loaded->key == new_key.key));
    if (replaced) {
      CHECK(loaded->key == new_key.key);
      break;
    }
  }
}

TEST_CASE("keys: a full disk fails the write with a clear error and leaves no file") {
  FaultEnv env;
  env.no_space(1, 10);
  const Status s = crypto::write_identity("/meshkv.identity", crypto::new_identity(), false, env);
  CHECK(s.message().find("No space left on device") != std::string::npos);
  CHECK_FALSE(env.exists("/meshkv.identity"));
}

TEST_CASE("persist: the collection state survives a snapshot and the log") {
  node::Snapshot s;
  s.id = "n1";
  s.horizon = crdt::Hlc::make(5000, 3).raw;
  s.reconciled = crdt::Hlc::make(4000, 0).raw;
  s.quarantine.push_back({"k", crdt::Entry{crdt::Hlc::make(3000, 0), crdt::Dot{9, 2}, false, "aside"}});
  s.excluded.emplace_back("n3", s.horizon);
  s.roster = {"n2", "n3"};
  s.entries.push_back({"live", crdt::Entry{crdt::Hlc::make(6000, 0), crdt::Dot{9, 3}, false, "v", true}});
  auto back = node::decode_snapshot(node::encode_snapshot(s));
  REQUIRE(back.ok());
  CHECK(back->horizon == s.horizon);
  CHECK(back->reconciled == s.reconciled);
  CHECK(back->quarantine == s.quarantine);
  CHECK(back->excluded == s.excluded);
  CHECK(back->roster == s.roster);
  CHECK(back->entries == s.entries);  // the vouched mark included
  for (const node::LogOp& op : {
           node::LogOp{node::LogOp::Kind::kHorizon, false, {}, 0, 7, 9},
           node::LogOp{node::LogOp::Kind::kQuarantine, false, s.quarantine[0], 0, 0, 0},
           node::LogOp{node::LogOp::Kind::kRelease, false, {"k", {{}, {9, 2}, false, {}}}, 0, 0, 0},
           node::LogOp{node::LogOp::Kind::kExcluded, false, {"n3", {}}, 0, 0, 42},
           node::LogOp{node::LogOp::Kind::kRoster, false, {"n2", {}}, 0, 0, 1}}) {
    auto d = node::decode_op(node::encode_op(op));
    REQUIRE(d.ok());
    CHECK(d->kind == op.kind);
    CHECK(d->ke.key == op.ke.key);
    CHECK(d->ke.entry.dot == op.ke.entry.dot);
    CHECK(d->from == op.from);
    CHECK(d->to == op.to);
  }
}
