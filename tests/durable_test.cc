// A node's data directory and key files under power loss, failed syncs,
// full disks and torn writes (store::FaultEnv): whatever happens, a reopen
// finds every write acknowledged before it, and starts.
//
// Acknowledged: appended, then a sync() that returned ok, as the server
// acknowledges a local write (src/net/storage.cc).
#include <doctest/doctest.h>

#include <algorithm>
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
    REQUIRE(node::decode_pending(*o.snapshot).ok());
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

// ---- snapshots: damaged, missing, replaced (issue 14, item 5) ---------------------

namespace {
const std::string kSnap = kDir + "/snapshot";

// A snapshot of `n` entries (records of 1024: 2500 make a header and three),
// a vector claiming them, then two writes and a range claim in the log.
void snapshot_then_log(FaultEnv& env, int n = 2500) {
  Durable::Opened o;
  auto d = Durable::open(kDir, false, o, env);
  REQUIRE(d.ok());
  node::Snapshot s;
  s.id = "n1";
  for (int i = 0; i < n; ++i) s.entries.push_back(write_op(1000 + i).ke);
  s.vv.raise(7, 1000 + static_cast<uint64_t>(n));
  REQUIRE((*d)->snapshot(std::move(s)).ok());
  node::LogOp claim;
  claim.kind = node::LogOp::Kind::kRange;
  claim.origin = 8;
  claim.from = 0;
  claim.to = 5;
  (*d)->append({write_op(0), write_op(1), claim});
  REQUIRE((*d)->sync().ok());
}

std::string contents(FaultEnv& env, const std::string& path) {
  auto c = store::read_file(env, path);
  REQUIRE(c.ok());
  return *c;
}

void rewrite(FaultEnv& env, const std::string& path, const std::string& bytes) {
  auto f = env.open_writable(path, store::WriteOptions{});
  REQUIRE(f.ok());
  REQUIRE((*f)->append(bytes).ok());
  REQUIRE((*f)->sync().ok());
  REQUIRE((*f)->close().ok());
}

// Offsets of the records of a record file.
std::vector<size_t> record_offsets(const std::string& bytes) {
  std::vector<size_t> out;
  for (size_t off = 0; off + store::kRecordHeader <= bytes.size();) {
    out.push_back(off);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + off);
    off += store::kRecordHeader + (p[0] | p[1] << 8 | p[2] << 16 | size_t{p[3]} << 24);
  }
  return out;
}

std::string first_segment(FaultEnv& env) {
  auto names = env.list_dir(kDir);
  REQUIRE(names.ok());
  std::vector<std::string> segs;
  for (const auto& n : *names) {
    if (n.rfind("wal-", 0) == 0) segs.push_back(kDir + "/" + n);
  }
  REQUIRE_FALSE(segs.empty());
  std::sort(segs.begin(), segs.end());
  return segs.front();
}

bool has(const std::vector<std::string>& lines, const std::string& words) {
  for (const auto& l : lines) {
    if (l.find(words) != std::string::npos) return true;
  }
  return false;
}

size_t count_kind(const std::vector<node::LogOp>& ops, node::LogOp::Kind k) {
  return static_cast<size_t>(std::count_if(ops.begin(), ops.end(), [k](const auto& op) { return op.kind == k; }));
}
}  // namespace

TEST_CASE("durable: a flipped byte in any snapshot record refuses the start, naming the offset") {
  FaultEnv probe;
  snapshot_then_log(probe);
  const std::vector<size_t> offsets = record_offsets(contents(probe, kSnap));
  REQUIRE(offsets.size() == 4);
  const size_t file_size = contents(probe, kSnap).size();
  for (size_t r = 0; r < offsets.size(); ++r) {
    // In the length, in the checksum, in the payload's first and last byte.
    const size_t end = r + 1 < offsets.size() ? offsets[r + 1] : file_size;
    for (size_t at : {offsets[r] + 1, offsets[r] + 5, offsets[r] + 8, end - 1}) {
      CAPTURE(r);
      CAPTURE(at);
      FaultEnv env;
      snapshot_then_log(env);
      std::string bytes = contents(env, kSnap);
      bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
      rewrite(env, kSnap, bytes);
      Durable::Opened o;
      auto d = Durable::open(kDir, false, o, env);
      REQUIRE_FALSE(d.ok());
      const std::string& m = d.status().message();
      CHECK(d.status().code() == Code::kCorruption);
      CHECK(m.find("incomplete") == std::string::npos);
      if (at == offsets[r] + 1) {
        // A longer length runs past the end, a shorter one fails the checksum.
        CHECK(m.find(kSnap + ": ") == 0);
        CHECK(m.find("at offset " + std::to_string(offsets[r]) + " ") != std::string::npos);
      } else {
        CHECK(m.find(kSnap + ": checksum mismatch at offset " + std::to_string(offsets[r]) + " (record " +
                     std::to_string(r) + ",") == 0);
      }
      CHECK(m.find("refusing to start (start with --repair") != std::string::npos);
    }
  }
}

TEST_CASE("durable: a flipped bit anywhere in the snapshot refuses the start; --repair starts") {
  FaultEnv probe;
  snapshot_then_log(probe, 1030);  // a header, a full record of entries and a short one
  const std::string whole = contents(probe, kSnap);
  const std::vector<size_t> offsets = record_offsets(whole);
  REQUIRE(offsets.size() == 3);
  size_t tried = 0;
  for (size_t at = 0; at < whole.size(); ++at) {
    // Every byte of the header and the last record, every 31st in between.
    if (at > offsets[1] + 16 && at < offsets[2] && at % 31 != 0) continue;
    CAPTURE(at);
    FaultEnv env;
    snapshot_then_log(env, 1030);
    std::string bytes = contents(env, kSnap);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << (at % 8)));
    rewrite(env, kSnap, bytes);
    Durable::Opened refused, o;
    REQUIRE_FALSE(Durable::open(kDir, false, refused, env).ok());
    auto d = Durable::open(kDir, true, o, env);
    REQUIRE_MESSAGE(d.ok(), d.status().to_string());
    CHECK(o.repaired);
    CHECK(o.node == "n1");
    CHECK(has(o.warnings, "--repair dropped"));
    if (o.snapshot) CHECK(o.snapshot->vv.items().empty());
    ++tried;
  }
  CHECK(tried > 500);
}

TEST_CASE("durable: --repair keeps the snapshot records that verify and says what it dropped") {
  FaultEnv env;
  snapshot_then_log(env);
  std::string bytes = contents(env, kSnap);
  const std::vector<size_t> offsets = record_offsets(bytes);
  bytes[offsets[2] + 20] = static_cast<char>(bytes[offsets[2] + 20] ^ 1);  // entries 1024..2047
  rewrite(env, kSnap, bytes);
  Durable::Opened o;
  auto d = Durable::open(kDir, true, o, env);
  REQUIRE_MESSAGE(d.ok(), d.status().to_string());
  REQUIRE(o.snapshot);
  CHECK(o.snapshot->entries.size() == 2500 - 1024);
  // The vector claimed the dropped entries: kept, it would tell peers never
  // to send them again. So it goes, and so do the log's range claims.
  CHECK(o.snapshot->vv.items().empty());
  CHECK(count_kind(o.ops, node::LogOp::Kind::kRange) == 0);
  CHECK(count_kind(o.ops, node::LogOp::Kind::kEntry) == 2);
  CHECK(o.repaired);
  CHECK(o.node == "n1");
  CHECK(has(o.warnings, kSnap + ": checksum mismatch at offset " + std::to_string(offsets[2])));
  CHECK(has(o.warnings, "--repair dropped 1024 of 2500 entries (records 2) and the snapshot's version vector "
                        "(1 origin); kept 1476 entries"));
  CHECK(has(o.warnings, "--repair skipped 1 range claim of the log"));
  // The shell writes a new snapshot at once; then a start needs no --repair.
  REQUIRE((*d)->snapshot(*o.snapshot).ok());
  (*d).reset();  // unlocks the directory
  Durable::Opened again;
  REQUIRE(Durable::open(kDir, false, again, env).ok());
  CHECK(again.warnings.empty());
  REQUIRE(node::decode_pending(*again.snapshot).ok());
  CHECK(again.snapshot->entries.size() == 1476);
}

TEST_CASE("durable: --repair of a snapshot whose header is damaged drops it and keeps the node's name") {
  FaultEnv env;
  snapshot_then_log(env);
  std::string bytes = contents(env, kSnap);
  bytes[12] = static_cast<char>(bytes[12] ^ 1);
  rewrite(env, kSnap, bytes);
  Durable::Opened o;
  auto d = Durable::open(kDir, true, o, env);
  REQUIRE_MESSAGE(d.ok(), d.status().to_string());
  CHECK_FALSE(o.snapshot);
  CHECK(o.node == "n1");  // from the log segment's header
  CHECK(has(o.warnings, "--repair dropped the whole snapshot"));
  CHECK(count_kind(o.ops, node::LogOp::Kind::kEntry) == 2);
  CHECK(count_kind(o.ops, node::LogOp::Kind::kRange) == 0);
}

TEST_CASE("durable: a missing snapshot that the log continues refuses the start, naming both") {
  FaultEnv env;
  snapshot_then_log(env);
  REQUIRE(env.remove(kSnap).ok());
  const std::string seg = first_segment(env);
  {
    Durable::Opened o;
    auto d = Durable::open(kDir, false, o, env);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Code::kCorruption);
    const std::string& m = d.status().message();
    CHECK(m.find("snapshot ") == 0);
    CHECK(m.find(" missing: " + seg + " continues it; refusing to start (start with --repair") !=
          std::string::npos);
  }
  Durable::Opened o;
  auto d = Durable::open(kDir, true, o, env);
  REQUIRE_MESSAGE(d.ok(), d.status().to_string());
  CHECK_FALSE(o.snapshot);
  CHECK(o.node == "n1");
  CHECK(o.repaired);
  CHECK(has(o.warnings, " missing: " + seg + " continues it; --repair dropped every entry it held"));
  CHECK(count_kind(o.ops, node::LogOp::Kind::kEntry) == 2);
  CHECK(count_kind(o.ops, node::LogOp::Kind::kRange) == 0);
}

TEST_CASE("durable: a snapshot the log does not continue refuses the start") {
  FaultEnv env, other;
  snapshot_then_log(env);
  snapshot_then_log(other);  // the same node and entries, another snapshot
  rewrite(env, kSnap, contents(other, kSnap));
  Durable::Opened o;
  auto d = Durable::open(kDir, false, o, env);
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().message().find(kSnap + " is snapshot ") == 0);
  CHECK(d.status().message().find(", but " + first_segment(env) + " continues snapshot ") != std::string::npos);
  Durable::Opened r;
  REQUIRE(Durable::open(kDir, true, r, env).ok());
  REQUIRE(r.snapshot);
  CHECK(r.snapshot->entries.size() == 2500);  // they verify: merges keep them
  CHECK(r.snapshot->vv.items().empty());
}

TEST_CASE("durable: a directory written before segment headers and snapshot uids still opens") {
  FaultEnv env;
  REQUIRE(env.create_dir(kDir).ok());
  node::Snapshot s;
  s.id = "old";
  s.wal_segment = 2;
  s.entries.push_back(write_op(5).ke);
  s.vv.raise(7, 6);
  std::vector<std::string> recs = node::encode_snapshot(s);
  recs[0].resize(recs[0].size() - 8);  // no uid: the old header ends before it
  REQUIRE(store::write_records_atomically(kSnap, recs, env).ok());
  {
    store::RecordWriter w(env);
    REQUIRE(w.open(kDir + "/wal-00000002.log", 0).ok());
    w.append(node::encode_op(write_op(6)));  // no header record
    REQUIRE(w.sync().ok());
  }
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    Durable::Opened o;
    auto d = Durable::open(kDir, false, o, env);
    REQUIRE_MESSAGE(d.ok(), d.status().to_string());
    CHECK(o.warnings.empty());
    CHECK(o.node == "old");
    REQUIRE(o.snapshot);
    REQUIRE(node::decode_pending(*o.snapshot).ok());
    CHECK(o.snapshot->entries.size() == (round == 0 ? 1u : 2u));
    CHECK(o.snapshot->vv.get(7) == 6);
    if (round == 0) {
      REQUIRE(o.ops.size() == 1);
      // Compacting writes the new format; the next start checks it.
      o.snapshot->entries.push_back(o.ops[0].ke);
      REQUIRE((*d)->snapshot(*o.snapshot).ok());
    }
  }
  // The old log alone (its snapshot lost): nothing says one existed.
  FaultEnv bare;
  REQUIRE(bare.create_dir(kDir).ok());
  {
    store::RecordWriter w(bare);
    REQUIRE(w.open(kDir + "/wal-00000002.log", 0).ok());
    w.append(node::encode_op(write_op(6)));
    REQUIRE(w.sync().ok());
  }
  Durable::Opened o;
  REQUIRE(Durable::open(kDir, false, o, bare).ok());
  CHECK(o.ops.size() == 1);
}

TEST_CASE("durable: an old snapshot (no uid) is still checked by its checksum") {
  FaultEnv env;
  REQUIRE(env.create_dir(kDir).ok());
  auto old_snapshot = [&](int key) {
    node::Snapshot s;
    s.id = "old";
    s.wal_segment = 2;
    s.entries.push_back(write_op(key).ke);
    std::vector<std::string> recs = node::encode_snapshot(s);
    recs[0].resize(recs[0].size() - 8);  // no uid
    REQUIRE(store::write_records_atomically(kSnap, recs, env).ok());
  };
  old_snapshot(1);
  {
    Durable::Opened o;
    auto d = Durable::open(kDir, false, o, env);  // makes wal-2, whose header names the checksum
    REQUIRE(d.ok());
    (*d)->append({write_op(2)});
    REQUIRE((*d)->sync().ok());
  }
  old_snapshot(3);  // another snapshot in its place
  Durable::Opened o;
  auto d = Durable::open(kDir, false, o, env);
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().message().find(kSnap + ": checksum mismatch: its records sum to ") == 0);
  CHECK(d.status().message().find(", the snapshot " + kDir + "/wal-00000002.log continues to ") !=
        std::string::npos);
}

TEST_CASE("persist: a segment header round-trips, and is no log operation") {
  node::SegmentHeader h{true, 0x1234567890abcdefULL, 0xdeadbeef, "n1"};
  const std::string rec = node::encode_segment_header(h);
  CHECK(node::is_segment_header(rec));
  auto back = node::decode_segment_header(rec);
  REQUIRE(back.ok());
  CHECK(back->continues);
  CHECK(back->snapshot_uid == h.snapshot_uid);
  CHECK(back->snapshot_checksum == h.snapshot_checksum);
  CHECK(back->node == "n1");
  CHECK_FALSE(node::decode_op(rec).ok());
  CHECK_FALSE(node::is_segment_header(node::encode_op(write_op(1))));
  CHECK_FALSE(node::decode_segment_header(rec.substr(0, 5)).ok());
}
