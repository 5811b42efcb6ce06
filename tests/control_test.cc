// The control-op table, and the engine's ops through handle_control as the
// shell calls it, no sockets.
#include <doctest/doctest.h>

#include <string>

#include "crdt/counter.h"
#include "node/control.h"

using namespace meshkv;
using node::Engine;
using node::Now;
using wire::Value;

namespace {
Now at(uint64_t ms) { return Now{ms * 1000, 1'700'000'000'000 + ms}; }

struct Node {
  Engine engine{node::Config{}, 11, Endpoint::v4(127, 0, 0, 1, 9001), 1, at(0)};
  wire::CtlResponse call(const std::string& op, Value args) {
    return node::handle_control(engine, wire::CtlRequest{7, op, std::move(args)}, at(1));
  }
  // True when no write of any kind reached the engine.
  bool untouched() const { return engine.replica().last_seq() == 0 && engine.list("").empty(); }
};

Value pair(Value k, Value v) {
  Value p = Value::list();
  p.push(std::move(k));
  p.push(std::move(v));
  return p;
}

// An mset whose first entries are fine and whose last one is `bad`.
Value batch_ending_with(Value bad) {
  Value entries = Value::list();
  entries.push(pair("a", "1"));
  entries.push(pair("b", nullptr));
  entries.push(pair("c", "3"));
  entries.push(std::move(bad));
  Value args = Value::object();
  args.set("entries", std::move(entries));
  return args;
}
}  // namespace

TEST_CASE("control: mset applies nothing when its last entry would fail") {
  const std::string big_key(crdt::kMaxKeyBytes + 1, 'k');
  const std::string big_value(crdt::kMaxValueBytes + 1, 'v');
  const struct {
    const char* what;
    Value bad;
  } cases[] = {
      {"empty key", pair("", "x")},
      {"key over the limit", pair(big_key, "x")},
      {"value over the limit", pair("d", big_value)},
      {"value neither string nor null", pair("d", 5)},
      {"key not a string", pair(5, "x")},
      {"not a pair", Value::list()},
      {"not a list", Value("d")},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    Node n;
    const wire::CtlResponse r = n.call("mset", batch_ending_with(c.bad));
    CHECK(r.code == wire::kCtlBadRequest);
    CHECK(r.req_id == 7);
    CHECK(r.error.rfind("mset: ", 0) == 0);
    CHECK(n.untouched());
  }
}

TEST_CASE("control: mset without a list of entries is a bad request, not an empty batch") {
  Node n;
  CHECK(n.call("mset", Value::object()).code == wire::kCtlBadRequest);
  Value args = Value::object();
  args.set("entries", "a b");
  CHECK(n.call("mset", args).code == wire::kCtlBadRequest);
  CHECK(n.untouched());
}

TEST_CASE("control: mset applies a valid batch whole, deletes included") {
  Node n;
  REQUIRE(n.call("set", [] {
             Value a = Value::object();
             a.set("key", "b");
             a.set("value", "old");
             return a;
           }()).code == wire::kCtlOk);
  Value entries = Value::list();
  entries.push(pair("a", "1"));
  entries.push(pair("b", nullptr));
  entries.push(pair("c", ""));
  Value args = Value::object();
  args.set("entries", std::move(entries));
  const wire::CtlResponse r = n.call("mset", args);
  REQUIRE(r.code == wire::kCtlOk);
  CHECK(r.body.get("written").as_int() == 3);
  const auto live = n.engine.list("");
  REQUIRE(live.size() == 2);
  CHECK(live[0].first == "a");
  CHECK(live[1].first == "c");
  CHECK(n.engine.get("b")->tombstone);
}

TEST_CASE("control: every op's name finds the op again, and names are unique") {
  for (const wire::OpSpec& s : wire::kCtlOps) {
    CAPTURE(s.name);
    CHECK(wire::find_op(s.name) == s.op);
    CHECK(!s.name.empty());
  }
  CHECK(!wire::find_op("GET"));
  CHECK(!wire::find_op(""));
}

TEST_CASE("control: arguments are checked against the table before a handler runs") {
  Node n;
  Value int_prefix = Value::object();
  int_prefix.set("prefix", 3);
  Value list_of_ints = Value::object();
  list_of_ints.set("peers", Value(Value::List{Value(1)}));
  const struct {
    const char* op;
    Value args;
    const char* error;
  } cases[] = {
      {"nope", Value::object(), "unknown operation 'nope'"},
      {"get", Value::object(), "get: missing 'key'"},
      {"get", Value::list(), "get: arguments must be an object"},
      {"set", [] {
         Value a = Value::object();
         a.set("key", "k");
         return a;
       }(), "set: missing 'value'"},
      {"list", int_prefix, "list: 'prefix' must be a string"},
      {"join", list_of_ints, "join: 'peers' must be a list of strings"},
      {"trace_status", Value::object(), "trace_status: missing 'id'"},
      {"keys", Value::object(), "keys: answered by a node's control port, not its engine"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.op);
    const wire::CtlResponse r = n.call(c.op, c.args);
    CHECK(r.code == wire::kCtlBadRequest);
    CHECK(r.error == c.error);
    CHECK(r.req_id == 7);
  }
  CHECK(n.untouched());
}

TEST_CASE("control: optional arguments may be left out, and a request without arguments is fine") {
  Node n;
  CHECK(n.call("list", Value()).code == wire::kCtlOk);
  CHECK(n.call("status", Value()).code == wire::kCtlOk);
  Value absent = Value::object();
  absent.set("key", "nobody");
  const wire::CtlResponse r = n.call("get", absent);
  CHECK(r.code == wire::kCtlNotFound);
  CHECK(r.error == "key not found: nobody");
}

namespace {
Value key_args(const std::string& key, bool force = false) {
  Value a = Value::object();
  a.set("key", key);
  if (force) a.set("force", true);
  return a;
}
}  // namespace

TEST_CASE("control: del of a key with no value here writes nothing, unless force") {
  Node n;
  // Never written.
  wire::CtlResponse r = n.call("del", key_args("ghost"));
  CHECK(r.code == wire::kCtlNotFound);
  CHECK(r.req_id == 7);
  CHECK(r.error == "not found: ghost (nothing deleted; --force writes a tombstone anyway)");
  CHECK(n.untouched());
  CHECK(n.engine.get("ghost") == nullptr);

  // Present: deleted, with the dot of the tombstone in the answer.
  Value kv = key_args("k");
  kv.set("value", "v");
  REQUIRE(n.call("set", kv).code == wire::kCtlOk);
  r = n.call("del", key_args("k"));
  REQUIRE(r.code == wire::kCtlOk);
  CHECK(r.body.get("key").as_string() == "k");
  CHECK(r.body.get("seq").as_int() == 2);
  REQUIRE(n.engine.get("k") != nullptr);
  CHECK(n.engine.get("k")->tombstone);

  // Already a tombstone: nothing new, the seq stays.
  r = n.call("del", key_args("k"));
  CHECK(r.code == wire::kCtlNotFound);
  CHECK(n.engine.replica().last_seq() == 2);

  // force writes a tombstone for an absent key, and again over a tombstone.
  r = n.call("del", key_args("ghost", true));
  REQUIRE(r.code == wire::kCtlOk);
  CHECK(r.body.get("seq").as_int() == 3);
  REQUIRE(n.engine.get("ghost") != nullptr);
  CHECK(n.engine.get("ghost")->tombstone);
  CHECK(n.call("del", key_args("k", true)).code == wire::kCtlOk);
  CHECK(n.engine.replica().last_seq() == 4);

  // A malformed key is still the client's mistake, not a negative answer.
  CHECK(n.call("del", key_args("")).code == wire::kCtlBadRequest);
  Value bad_force = key_args("k");
  bad_force.set("force", "yes");
  CHECK(n.call("del", bad_force).code == wire::kCtlBadRequest);
}

TEST_CASE("control: mset skips and counts deletes of absent keys, unless force") {
  Node n;
  Value entries = Value::list();
  entries.push(pair("a", "1"));
  entries.push(pair("a", nullptr));    // present at its turn: deleted
  entries.push(pair("a", nullptr));    // a tombstone by now: skipped
  entries.push(pair("gone", nullptr));  // never written: skipped
  Value args = Value::object();
  args.set("entries", entries);
  wire::CtlResponse r = n.call("mset", args);
  REQUIRE(r.code == wire::kCtlOk);
  CHECK(r.body.get("written").as_int() == 2);
  CHECK(r.body.get("not_found").as_int() == 2);
  CHECK(n.engine.replica().last_seq() == 2);
  CHECK(n.engine.get("gone") == nullptr);

  args.set("force", true);
  r = n.call("mset", args);
  REQUIRE(r.code == wire::kCtlOk);
  CHECK(r.body.get("written").as_int() == 4);
  CHECK(r.body.get("not_found").as_int() == 0);
  REQUIRE(n.engine.get("gone") != nullptr);
  CHECK(n.engine.get("gone")->tombstone);
}

TEST_CASE("control: a value set with ttl_ms reads as deleted from its HLC plus the ttl on, for get, list, del and ttl") {
  Node n;
  auto call = [&](const std::string& op, Value args, uint64_t ms) {
    return node::handle_control(n.engine, wire::CtlRequest{7, op, std::move(args)}, at(ms));
  };
  auto key = [](const char* k) {
    Value a = Value::object();
    a.set("key", k);
    return a;
  };
  Value set = key("session");
  set.set("value", "abc");
  set.set("ttl_ms", 2000);
  auto w = call("set", set, 100);
  REQUIRE(w.code == wire::kCtlOk);
  CHECK(w.body.get("ttl_ms").as_int() == 2000);
  // The write's HLC is at wall ms 100 (at(100)); it expires at 2100.
  CHECK(call("get", key("session"), 2099).code == wire::kCtlOk);
  auto t = call("ttl", key("session"), 1100);
  REQUIRE(t.code == wire::kCtlOk);
  CHECK(t.body.get("ttl_ms").as_int() == 1000);
  CHECK(call("get", key("session"), 2100).code == wire::kCtlNotFound);
  CHECK(call("ttl", key("session"), 2100).code == wire::kCtlNotFound);
  CHECK(n.engine.list("", at(2100).wall_ms).empty());
  CHECK(call("del", key("session"), 2200).code == wire::kCtlNotFound);
  Value again = key("session");
  again.set("ttl_ms", 1000);
  CHECK(call("expire", again, 2200).code == wire::kCtlNotFound);  // nothing live to expire
  // A value without a ttl: ttl says null; expire gives it one, from the new write.
  Value plain = key("p");
  plain.set("value", "x");
  REQUIRE(call("set", plain, 3000).code == wire::kCtlOk);
  auto none = call("ttl", key("p"), 3001);
  REQUIRE(none.code == wire::kCtlOk);
  CHECK(none.body.get("ttl_ms").is_null());
  Value ex = key("p");
  ex.set("ttl_ms", 500);
  auto e = call("expire", ex, 4000);
  REQUIRE(e.code == wire::kCtlOk);
  CHECK(e.body.get("value").as_string() == "x");
  CHECK(call("get", key("p"), 4499).code == wire::kCtlOk);
  CHECK(call("get", key("p"), 4500).code == wire::kCtlNotFound);
  // Bad ttls are refused, nothing written.
  Value bad = key("q");
  bad.set("value", "x");
  bad.set("ttl_ms", 0);
  CHECK(call("set", bad, 5000).code == wire::kCtlBadRequest);
  bad.set("ttl_ms", static_cast<int64_t>(crdt::kMaxTtlMs + 1));
  CHECK(call("set", bad, 5000).code == wire::kCtlBadRequest);
  CHECK(n.engine.get("q") == nullptr);
}

TEST_CASE("control: counters through the ops: incr, decr, get, list, del, and one key one type") {
  Node n;
  auto args = [](const std::string& key, int64_t by) {
    Value a = Value::object();
    a.set("key", key);
    a.set("by", by);
    return a;
  };
  auto key = [](const std::string& k) {
    Value a = Value::object();
    a.set("key", k);
    return a;
  };
  CHECK(n.call("incr", args("hits", 5)).body.get("value").as_string() == "5");
  CHECK(n.call("incr", args("hits", -7)).body.get("value").as_string() == "-2");
  CHECK(n.call("incr", args("hits", 0)).code == wire::kCtlBadRequest);
  wire::CtlResponse g = n.call("get", key("hits"));
  CHECK(g.body.get("value").as_string() == "-2");
  CHECK(g.body.get("type").as_string() == "counter");
  // list shows the counter once, by its key; values carry their type.
  Value set = Value::object();
  set.set("key", "plain");
  set.set("value", "v");
  REQUIRE(n.call("set", set).code == wire::kCtlOk);
  const wire::CtlResponse list = n.call("list", Value::object());
  const Value::List& listed = list.body.get("entries").as_list();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].get("key").as_string() == "hits");
  CHECK(listed[0].get("type").as_string() == "counter");
  CHECK(listed[1].get("type").as_string() == "register");
  // One key, one type.
  wire::CtlResponse refused = n.call("incr", args("plain", 1));
  CHECK(refused.code == wire::kCtlBadRequest);
  CHECK(refused.error.find("holds a value") != std::string::npos);
  Value expire = key("hits");
  expire.set("ttl_ms", 1000);
  CHECK(n.call("expire", expire).code == wire::kCtlBadRequest);
  // Reserved keys: neither written nor deleted by users, whatever the op.
  const std::string reserved = crdt::counter_part_key("hits", n.engine.replica().self());
  Value forged = Value::object();
  forged.set("key", reserved);
  forged.set("value", std::string(16, '\xff'));
  CHECK(n.call("set", forged).code == wire::kCtlBadRequest);
  Value force = key(reserved);
  force.set("force", true);
  CHECK(n.call("del", force).code == wire::kCtlBadRequest);
  Value entries = Value::list();
  entries.push(pair(reserved, "x"));
  Value mset = Value::object();
  mset.set("entries", std::move(entries));
  CHECK(n.call("mset", mset).code == wire::kCtlBadRequest);
  CHECK(n.call("get", key("hits")).body.get("value").as_string() == "-2");
  // del resets: absent, answered under the counter's key; then from zero.
  wire::CtlResponse d = n.call("del", key("hits"));
  CHECK(d.code == wire::kCtlOk);
  CHECK(d.body.get("key").as_string() == "hits");
  CHECK(n.call("get", key("hits")).code == wire::kCtlNotFound);
  CHECK(n.call("del", key("hits")).code == wire::kCtlNotFound);
  CHECK(n.call("incr", args("hits", 3)).body.get("value").as_string() == "3");
  // set replaces a counter.
  Value over = Value::object();
  over.set("key", "hits");
  over.set("value", "text");
  REQUIRE(n.call("set", over).code == wire::kCtlOk);
  g = n.call("get", key("hits"));
  CHECK(g.body.get("value").as_string() == "text");
  CHECK(g.body.get("type").as_string() == "register");
}

TEST_CASE("control: sets through the ops: sadd, srem, smembers, sismember, get, list, set and del") {
  Node n;
  auto members = [](const std::string& key, std::initializer_list<std::string> ms) {
    Value a = Value::object();
    a.set("key", key);
    Value l = Value::list();
    for (const auto& m : ms) l.push(m);
    a.set("members", std::move(l));
    return a;
  };
  auto key = [](const std::string& k) {
    Value a = Value::object();
    a.set("key", k);
    return a;
  };
  auto listed = [&](const std::string& k) {
    std::vector<std::string> out;
    const wire::CtlResponse r = n.call("smembers", key(k));  // the list lives in it
    for (const Value& m : r.body.get("members").as_list()) out.push_back(m.as_string());
    return out;
  };
  CHECK(n.call("sadd", members("team", {"bob", "alice", "bob"})).body.get("added").as_int() == 2);
  CHECK(n.call("sadd", members("team", {"alice"})).body.get("added").as_int() == 0);  // written all the same
  CHECK(listed("team") == std::vector<std::string>{"alice", "bob"});
  CHECK(n.call("srem", members("team", {"bob", "zed"})).body.get("removed").as_int() == 1);
  CHECK(listed("team") == std::vector<std::string>{"alice"});
  Value is = key("team");
  is.set("member", "alice");
  CHECK(n.call("sismember", is).body.get("present").as_bool());
  const wire::CtlResponse g = n.call("get", key("team"));
  CHECK(g.body.get("type").as_string() == "set");
  CHECK(g.body.get("count").as_int() == 1);
  CHECK(n.call("sadd", members("team", {""})).code == wire::kCtlBadRequest);
  CHECK(n.call("smembers", key("none")).code == wire::kCtlNotFound);
  // One key, one type.
  Value set = Value::object();
  set.set("key", "plain");
  set.set("value", "v");
  REQUIRE(n.call("set", set).code == wire::kCtlOk);
  CHECK(n.call("sadd", members("plain", {"x"})).code == wire::kCtlBadRequest);
  CHECK(n.call("srem", members("plain", {"x"})).code == wire::kCtlBadRequest);
  CHECK(n.call("smembers", key("plain")).code == wire::kCtlBadRequest);
  Value incr = key("team");
  incr.set("by", 1);
  CHECK(n.call("incr", incr).code == wire::kCtlBadRequest);
  const wire::CtlResponse list = n.call("list", Value::object());
  const Value::List& entries = list.body.get("entries").as_list();
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].get("key").as_string() == "team");
  CHECK(entries[1].get("type").as_string() == "set");
  // set replaces a set; del of a set removes its members, and it can grow again.
  REQUIRE(n.call("sadd", members("s2", {"a", "b"})).code == wire::kCtlOk);
  Value over = key("s2");
  over.set("value", "text");
  REQUIRE(n.call("set", over).code == wire::kCtlOk);
  CHECK(n.call("get", key("s2")).body.get("value").as_string() == "text");
  CHECK(n.call("smembers", key("s2")).code == wire::kCtlBadRequest);
  REQUIRE(n.call("del", key("team")).code == wire::kCtlOk);
  CHECK(n.call("get", key("team")).code == wire::kCtlNotFound);
  CHECK(n.call("del", key("team")).code == wire::kCtlNotFound);
  REQUIRE(n.call("sadd", members("team", {"carol"})).code == wire::kCtlOk);
  CHECK(listed("team") == std::vector<std::string>{"carol"});
}
