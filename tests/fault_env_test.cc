// The fault-injecting file system keeps the promises other tests rely on:
// what a power loss keeps and drops, and how each fault fires.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "store/env.h"
#include "store/fault_env.h"

using namespace meshkv;
using namespace meshkv::store;

namespace {
// Appends `data` to `path` (creating it), syncing the file if asked.
Status put(Env& env, const std::string& path, const std::string& data, bool sync_file, uint64_t keep = 0) {
  auto f = env.open_writable(path, {.keep = keep});
  if (!f.ok()) return f.status();
  if (Status s = (*f)->append(data); !s.ok()) return s;
  return sync_file ? (*f)->sync() : Status::Ok();
}

std::string get(Env& env, const std::string& path) {
  auto r = read_file(env, path);
  return r.ok() ? *r : "<" + r.status().message() + ">";
}
}  // namespace

TEST_CASE("fault env: a crash keeps synced bytes and drops the rest") {
  FaultEnv env;
  REQUIRE(put(env, "/f", "synced", true).ok());
  REQUIRE(env.sync_dir("/").ok());
  REQUIRE(put(env, "/f", "-lost", false, 6).ok());
  CHECK(get(env, "/f") == "synced-lost");
  env.crash();
  CHECK(get(env, "/f") == "synced");
}

TEST_CASE("fault env: a new name needs its directory synced") {
  FaultEnv env;
  REQUIRE(put(env, "/a", "x", true).ok());
  env.crash();
  CHECK_FALSE(env.exists("/a"));
  REQUIRE(put(env, "/a", "x", true).ok());
  REQUIRE(env.sync_dir("/").ok());
  env.crash();
  CHECK(get(env, "/a") == "x");
}

TEST_CASE("fault env: a rename or remove not synced in its directory is undone") {
  FaultEnv env;
  REQUIRE(put(env, "/old", "1", true).ok());
  REQUIRE(put(env, "/new", "2", true).ok());
  REQUIRE(env.sync_dir("/").ok());
  REQUIRE(env.rename("/new", "/old").ok());
  CHECK(get(env, "/old") == "2");
  env.crash();
  CHECK(get(env, "/old") == "1");
  CHECK(get(env, "/new") == "2");
  REQUIRE(env.remove("/new").ok());
  env.crash();
  CHECK(env.exists("/new"));
}

TEST_CASE("fault env: files in a directory whose own name was never synced are lost") {
  FaultEnv env;
  REQUIRE(env.create_dir("/d").ok());
  CHECK(env.create_dir("/d").code() == Code::kAlreadyExists);
  REQUIRE(put(env, "/d/f", "x", true).ok());
  REQUIRE(env.sync_dir("/d").ok());
  env.crash();
  CHECK_FALSE(env.exists("/d"));
  CHECK_FALSE(env.exists("/d/f"));
}

TEST_CASE("fault env: the nth sync fails with EIO and makes nothing durable") {
  FaultEnv env;
  REQUIRE(put(env, "/f", "a", true).ok());
  REQUIRE(env.sync_dir("/").ok());
  env.fail_sync(2);
  REQUIRE(put(env, "/f", "b", true, 1).ok());  // sync 1
  const Status s = put(env, "/f", "c", true, 2);
  CHECK(s.message().find("Input/output error") != std::string::npos);
  CHECK(s.message().find("/f") != std::string::npos);
  env.crash();
  CHECK(get(env, "/f") == "ab");
  CHECK(put(env, "/f", "c", true, 2).ok());  // it fired once
}

TEST_CASE("fault env: ENOSPC on the nth write, after part of it") {
  FaultEnv env;
  env.no_space(2, 3);
  REQUIRE(put(env, "/f", "first", false).ok());
  auto f = env.open_writable("/f", {.keep = 5});
  REQUIRE(f.ok());
  const Status s = (*f)->append("123456");
  CHECK(s.message().find("No space left on device") != std::string::npos);
  CHECK((*f)->size() == 8);
  CHECK(get(env, "/f") == "first123");
}

TEST_CASE("fault env: a torn write keeps what reached the disk and cuts the power") {
  FaultEnv env;
  REQUIRE(put(env, "/f", "", true).ok());
  REQUIRE(env.sync_dir("/").ok());
  env.tear_write(2, 2);
  REQUIRE(put(env, "/f", "abc", false).ok());
  CHECK_FALSE(put(env, "/f", "def", false, 3).ok());
  CHECK_FALSE(env.powered());
  CHECK_FALSE(env.sync_dir("/").ok());
  env.crash();
  CHECK(get(env, "/f") == "abcde");
}

TEST_CASE("fault env: power off after k operations, counted by ops()") {
  FaultEnv env;
  const uint64_t before = env.ops();
  REQUIRE(put(env, "/f", "x", true).ok());  // open, append, sync
  CHECK(env.ops() - before == 3);
  env.power_off_after(1);
  CHECK(env.remove("/f").ok());
  CHECK_FALSE(env.rename("/f", "/g").ok());
  CHECK_FALSE(env.powered());
  CHECK_FALSE(env.list_dir("/").ok());
  env.crash();
  CHECK(env.powered());
  CHECK(env.list_dir("/").ok());
}

TEST_CASE("fault env: a crash frees locks, and handles from before it are dead") {
  FaultEnv env;
  auto lock = env.lock("/LOCK");
  REQUIRE(lock.ok());
  CHECK(env.lock("/LOCK").status().code() == Code::kUnavailable);
  auto f = env.open_writable("/f", {});
  REQUIRE(f.ok());
  REQUIRE(env.sync_dir("/").ok());
  env.crash();
  auto again = env.lock("/LOCK");
  CHECK(again.ok());
  lock->reset();  // the dead holder's release frees nothing
  CHECK(env.lock("/LOCK").status().code() == Code::kUnavailable);
  CHECK_FALSE((*f)->append("late").ok());
  CHECK(get(env, "/f").empty());
}

TEST_CASE("fault env: reads see the file's mode, kind and size") {
  FaultEnv env;
  REQUIRE(env.open_writable("/key", {.exclusive = true, .owner_only = true}).ok());
  CHECK(env.open_writable("/key", {.exclusive = true}).status().code() == Code::kAlreadyExists);
  auto r = env.open_readable("/key");
  REQUIRE(r.ok());
  auto info = (*r)->stat();
  REQUIRE(info.ok());
  CHECK(info->regular);
  CHECK(info->mode == 0600);
  auto names = env.list_dir("/");
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"key"});
  CHECK_FALSE(env.open_readable("/missing").ok());
}
