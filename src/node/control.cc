#include "node/control.h"

#include <array>
#include <optional>
#include <string_view>
#include <vector>

namespace meshkv::node {

using wire::CtlCode;
using wire::CtlOp;
using wire::CtlResponse;
using wire::Value;

namespace {
// A handler answers one op; handle_control fills in the request id. Its
// arguments have passed wire::check_request.
using Handler = CtlResponse (*)(Engine& engine, const Value& args, Now now);

CtlResponse ok(Value body) {
  CtlResponse r;
  r.body = std::move(body);
  return r;
}

CtlResponse fail(CtlCode code, std::string msg) { return wire::ctl_error(0, code, std::move(msg)); }

// "set: ": how an op's own refusals begin.
std::string prefix(CtlOp op) { return std::string(wire::op_name(op)) + ": "; }

}  // namespace

Value entry_view(std::string_view key, const crdt::EntryView& e) {
  Value v = Value::object();
  v.set("key", std::string(key));
  if (!e.tombstone) v.set("value", std::string(e.value));
  v.set("hlc", format_hlc(e.hlc));
  v.set("origin", format_uid(e.dot.origin));
  v.set("seq", e.dot.seq);
  // Only on expiring writes, so that other answers read as they always did.
  if (e.ttl_ms != 0) {
    v.set("ttl_ms", e.ttl_ms);
    v.set("expires", format_hlc(crdt::expires_at(e)));
  }
  return v;
}

Value counter_view(const std::string& key, const crdt::CounterView& c) {
  Value v = Value::object();
  v.set("key", key);
  v.set("value", std::to_string(c.value));
  v.set("type", "counter");
  if (c.newest != nullptr) {
    v.set("hlc", format_hlc(c.newest->hlc));
    v.set("origin", format_uid(c.newest->dot.origin));
    v.set("seq", c.newest->dot.seq);
  }
  return v;
}

Value set_view(const std::string& key, const crdt::SetView& s) {
  Value v = Value::object();
  v.set("key", key);
  v.set("type", "set");
  Value members = Value::list();
  for (const auto& [m, mv] : s.members) {
    if (mv.present) members.push(Value(m));
  }
  v.set("members", std::move(members));
  v.set("count", static_cast<uint64_t>(s.present));
  if (s.newest != nullptr) {
    v.set("hlc", format_hlc(s.newest->hlc));
    v.set("origin", format_uid(s.newest->dot.origin));
    v.set("seq", s.newest->dot.seq);
  }
  return v;
}

Value list_view(const std::vector<std::pair<std::string, crdt::Entry>>& values,
                const std::map<std::string, crdt::CounterView, std::less<>>& counters,
                const std::map<std::string, crdt::SetView, std::less<>>& sets) {
  Value entries = Value::list();
  auto c = counters.begin();
  auto t = sets.begin();
  // Counters and sets before `upto` (all that are left: nullptr), by key;
  // a key reads as one type only, so no key is in two of the three.
  auto flush_counters = [&](const std::string* upto) {
    while (true) {
      const bool more_c = c != counters.end() && (upto == nullptr || c->first < *upto);
      const bool more_t = t != sets.end() && (upto == nullptr || t->first < *upto);
      if (more_c && (!more_t || c->first < t->first)) {
        entries.push(counter_view(c->first, c->second));
        ++c;
      } else if (more_t) {
        entries.push(set_view(t->first, t->second));
        ++t;
      } else {
        return;
      }
    }
  };
  for (const auto& kv : values) {
    flush_counters(&kv.first);
    Value v = entry_view(kv.first, kv.second);
    v.set("type", "register");
    entries.push(std::move(v));
  }
  flush_counters(nullptr);
  return entries;
}

namespace {

Value entry_value(std::string_view key, const crdt::EntryView& e) { return entry_view(key, e); }

// How current this node's answers are (Engine::staleness_ms), or null.
Value staleness(const Engine& engine, Now now) {
  const auto st = engine.staleness_ms(now);
  return st ? Value(*st) : Value(nullptr);
}

// The root and the 64 group hashes; with `groups`, also the 64 bucket hashes
// under each listed group. Hashes travel as (two's complement) integers.
Value digest_view(const crdt::Digest& d, const Value& groups) {
  auto h = [](uint64_t x) { return Value(static_cast<int64_t>(x)); };
  Value v = Value::object();
  v.set("root", h(d.root()));
  Value gs = Value::list();
  for (size_t g = 0; g < crdt::kDigestFanout; ++g) gs.push(h(d.group(g)));
  v.set("groups", std::move(gs));
  Value detail = Value::list();
  for (const Value& g : groups.as_list()) {
    const int64_t gi = g.as_int();
    if (gi < 0 || static_cast<size_t>(gi) >= crdt::kDigestFanout) continue;
    Value row = Value::object();
    row.set("group", gi);
    Value bs = Value::list();
    for (size_t b = static_cast<size_t>(gi) * crdt::kDigestFanout;
         b < (static_cast<size_t>(gi) + 1) * crdt::kDigestFanout; ++b) {
      bs.push(h(d.bucket(b)));
    }
    row.set("buckets", std::move(bs));
    detail.push(std::move(row));
  }
  v.set("buckets", std::move(detail));
  return v;
}

// One write of an mset batch: a value, or a delete.
struct BatchWrite {
  std::string_view key;
  std::optional<std::string_view> value;
};

// The whole batch, each entry checked exactly as Engine::set and del check
// it (crdt::check_key, crdt::check_value), or why it cannot be applied.
Result<std::vector<BatchWrite>> parse_batch(const Value& entries) {
  std::vector<BatchWrite> batch;
  batch.reserve(entries.as_list().size());
  for (const Value& kv : entries.as_list()) {
    const Value::List& pair = kv.as_list();
    if (pair.size() != 2 || !pair[0].is_string() || !(pair[1].is_string() || pair[1].is_null())) {
      return Status::Invalid("entries must be [key, value or null] pairs");
    }
    BatchWrite w{pair[0].as_string(), std::nullopt};
    if (pair[1].is_string()) w.value = pair[1].as_string();
    if (Status st = crdt::check_user_key(w.key); !st.ok()) return st;
    if (w.value) {
      if (Status st = crdt::check_value(*w.value); !st.ok()) return st;
    }
    batch.push_back(w);
  }
  return batch;
}

// A write's refusal: the node's (clock guard: exit 3), or the request's.
CtlCode refusal_code(const Status& st) {
  switch (st.code()) {
    case Code::kNotFound: return wire::kCtlNotFound;
    case Code::kUnavailable: return wire::kCtlUnavailable;
    default: return wire::kCtlBadRequest;
  }
}

CtlResponse written(CtlOp op, const Result<crdt::KeyedEntry>& w) {
  if (!w.ok()) return fail(refusal_code(w.status()), prefix(op) + w.status().message());
  return ok(entry_value(w->key, w->entry));
}

// ---- one handler per op ----

CtlResponse get_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  const auto st = engine.staleness_ms(now);
  if (const Value& bound = args.get("max_staleness_ms"); !bound.is_null()) {
    if (bound.as_int() < 0) return fail(wire::kCtlBadRequest, "get: max_staleness_ms must not be negative");
    const auto limit = static_cast<uint64_t>(bound.as_int());
    if (!st || *st > limit) {
      CtlResponse stale = fail(wire::kCtlNotFound,
                  "get: this node's answer may be stale: " +
                      (st ? "last known in sync with every reachable member " + std::to_string(*st) + " ms ago"
                          : std::string("never known in sync with every reachable member")) +
                      " (bound " + std::to_string(limit) + " ms); not served");
      stale.body = Value::object();
      stale.body.set("stale", true);
      stale.body.set("staleness_ms", st ? Value(*st) : Value(nullptr));
      return stale;
    }
  }
  if (auto c = engine.counter(key, now.wall_ms)) {
    Value v = counter_view(key, *c);
    v.set("staleness_ms", st ? Value(*st) : Value(nullptr));
    return ok(std::move(v));
  }
  if (auto s = engine.orset(key, now.wall_ms)) {
    Value v = set_view(key, *s);
    v.set("staleness_ms", st ? Value(*st) : Value(nullptr));
    return ok(std::move(v));
  }
  crdt::EntryPtr e = engine.live(key, now.wall_ms);
  if (!e) return fail(wire::kCtlNotFound, "key not found: " + key);
  Value v = entry_value(key, *e);
  v.set("type", "register");
  v.set("staleness_ms", st ? Value(*st) : Value(nullptr));
  return ok(std::move(v));
}

// `incr KEY BY` (decr sends a negative BY).
CtlResponse incr_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  auto c = engine.incr(key, args.get("by").as_int(), now);
  if (!c.ok()) return fail(refusal_code(c.status()), prefix(CtlOp::kIncr) + c.status().message());
  Value v = Value::object();
  v.set("key", key);
  v.set("value", std::to_string(c->value));
  v.set("type", "counter");
  return ok(std::move(v));
}

// The members argument of sadd and srem.
std::vector<std::string> members_arg(const Value& args) {
  std::vector<std::string> out;
  for (const Value& m : args.get("members").as_list()) out.push_back(m.as_string());
  return out;
}

// `sadd KEY MEMBER...` and `srem KEY MEMBER...`.
CtlResponse set_write(Engine& engine, CtlOp op, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  const auto members = members_arg(args);
  auto n = op == CtlOp::kSadd ? engine.sadd(key, members, now) : engine.srem(key, members, now);
  if (!n.ok()) return fail(refusal_code(n.status()), prefix(op) + n.status().message());
  Value v = Value::object();
  v.set("key", key);
  v.set("type", "set");
  v.set(op == CtlOp::kSadd ? "added" : "removed", static_cast<uint64_t>(*n));
  return ok(std::move(v));
}
CtlResponse sadd_op(Engine& engine, const Value& args, Now now) { return set_write(engine, CtlOp::kSadd, args, now); }
CtlResponse srem_op(Engine& engine, const Value& args, Now now) { return set_write(engine, CtlOp::kSrem, args, now); }

// smembers and sismember of a key that reads as a value or counter: refused
// (exit 2), as a write of the wrong type is.
std::optional<CtlResponse> not_a_set(const Engine& engine, CtlOp op, const std::string& key, Now now) {
  if (engine.counter(key, now.wall_ms)) {
    return fail(wire::kCtlBadRequest, prefix(op) + "key '" + key + "' is a counter, not a set");
  }
  if (engine.live(key, now.wall_ms) != nullptr) {
    return fail(wire::kCtlBadRequest, prefix(op) + "key '" + key + "' holds a value, not a set");
  }
  return std::nullopt;
}

CtlResponse smembers_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  if (auto refused = not_a_set(engine, CtlOp::kSmembers, key, now)) return *refused;
  auto s = engine.orset(key, now.wall_ms);
  if (!s) return fail(wire::kCtlNotFound, prefix(CtlOp::kSmembers) + "key not found: " + key);
  return ok(set_view(key, *s));
}

CtlResponse sismember_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  const std::string& member = args.get("member").as_string();
  if (auto refused = not_a_set(engine, CtlOp::kSismember, key, now)) return *refused;
  Value v = Value::object();
  v.set("key", key);
  v.set("member", member);
  v.set("present", engine.sismember(key, member, now.wall_ms));
  return ok(std::move(v));
}

// A ttl_ms argument: absent is 0 (never expires); otherwise 1..kMaxTtlMs.
Result<uint64_t> ttl_arg(const Value& args) {
  const Value& t = args.get("ttl_ms");
  if (t.is_null()) return uint64_t{0};
  if (t.as_int() < 1) return Status::Invalid("ttl_ms must be positive");
  const auto ttl = static_cast<uint64_t>(t.as_int());
  if (Status st = crdt::check_ttl(ttl); !st.ok()) return st;
  return ttl;
}

CtlResponse set_op(Engine& engine, const Value& args, Now now) {
  auto ttl = ttl_arg(args);
  if (!ttl.ok()) return fail(wire::kCtlBadRequest, prefix(CtlOp::kSet) + ttl.status().message());
  return written(CtlOp::kSet, engine.set(args.get("key").as_string(), args.get("value").as_string(), now, *ttl));
}

// Whether this node holds a value for `key` now: an entry that is neither a
// tombstone nor expired.
bool present(const Engine& engine, std::string_view key, Now now) {
  return engine.live(key, now.wall_ms) != nullptr || engine.counter(key, now.wall_ms).has_value() ||
         engine.orset(key, now.wall_ms).has_value();
}

// expire and ttl of a key that reads as a counter or set: refused (exit 2),
// since their entries never expire.
std::optional<CtlResponse> not_a_counter(const Engine& engine, CtlOp op, const std::string& key, Now now) {
  if (engine.counter(key, now.wall_ms)) {
    return fail(wire::kCtlBadRequest, prefix(op) + "'" + key + "' is a counter; counters do not expire");
  }
  if (engine.live(key, now.wall_ms) == nullptr && engine.orset(key, now.wall_ms)) {
    return fail(wire::kCtlBadRequest, prefix(op) + "'" + key + "' is a set; sets do not expire");
  }
  return std::nullopt;
}

// `expire KEY`: the live value written again, expiring ttl_ms after this
// write (last-writer-wins, as any set). An absent or expired key is not found.
CtlResponse expire_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  auto ttl = ttl_arg(args);
  if (!ttl.ok()) return fail(wire::kCtlBadRequest, prefix(CtlOp::kExpire) + ttl.status().message());
  if (auto refused = not_a_counter(engine, CtlOp::kExpire, key, now)) return *refused;
  crdt::EntryPtr e = engine.live(key, now.wall_ms);
  if (e == nullptr) return fail(wire::kCtlNotFound, prefix(CtlOp::kExpire) + "key not found: " + key);
  const std::string value(e->value);  // the write below replaces *e
  return written(CtlOp::kExpire, engine.set(key, value, now, *ttl));
}

// `ttl KEY`: how long the live value has left by this node's HLC reading
// (ttl_ms null: it never expires).
CtlResponse ttl_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  if (auto refused = not_a_counter(engine, CtlOp::kTtl, key, now)) return *refused;
  crdt::EntryPtr e = engine.live(key, now.wall_ms);
  if (e == nullptr) return fail(wire::kCtlNotFound, prefix(CtlOp::kTtl) + "key not found: " + key);
  Value v = Value::object();
  v.set("key", key);
  if (e->ttl_ms == 0) {
    v.set("ttl_ms", nullptr);
    v.set("expires", nullptr);
  } else {
    const uint64_t at = crdt::expires_at(*e).physical();
    const uint64_t reading = engine.replica().reading(now.wall_ms).physical();
    v.set("ttl_ms", at > reading ? at - reading : uint64_t{0});
    v.set("expires", format_hlc(crdt::expires_at(*e)));
  }
  return ok(std::move(v));
}

CtlResponse del_op(Engine& engine, const Value& args, Now now) {
  const std::string& key = args.get("key").as_string();
  if (!args.get("force").as_bool() && crdt::check_key(key).ok() && !present(engine, key, now)) {
    return fail(wire::kCtlNotFound,
                "not found: " + key + " (nothing deleted; --force writes a tombstone anyway)");
  }
  return written(CtlOp::kDel, engine.del(key, now));
}

CtlResponse mset_op(Engine& engine, const Value& args, Now now) {
  auto batch = parse_batch(args.get("entries"));
  if (!batch.ok()) return fail(wire::kCtlBadRequest, prefix(CtlOp::kMset) + batch.status().message());
  // Engine::set and del refuse only what parse_batch refused (engine.h), so
  // no write below fails and the batch applies whole. Were that contract
  // ever to widen, the answer says how far the batch got rather than hide it.
  // Without force a delete of an absent key is skipped, judged when its turn
  // comes (an earlier entry of the batch may have set or deleted it).
  // A node that refuses writes refuses the batch whole, before any of it.
  if (Status st = engine.write_refusal(now); !st.ok()) {
    return fail(wire::kCtlUnavailable, prefix(CtlOp::kMset) + st.message() + " (nothing written)");
  }
  const bool force = args.get("force").as_bool();
  uint64_t written = 0, not_found = 0;
  for (size_t i = 0; i < batch->size(); ++i) {
    const BatchWrite& w = (*batch)[i];
    if (!w.value && !force && !present(engine, w.key, now)) {
      ++not_found;
      continue;
    }
    const auto r = w.value ? engine.set(w.key, *w.value, now) : engine.del(w.key, now);
    if (!r.ok()) {
      return fail(wire::kCtlUnavailable, prefix(CtlOp::kMset) + "entry " + std::to_string(i + 1) +
                                             " failed after " + std::to_string(i) +
                                             " were applied: " + r.status().message());
    }
    ++written;
  }
  Value body = Value::object();
  body.set("written", written);
  body.set("not_found", not_found);
  return ok(std::move(body));
}

CtlResponse trace_op(Engine& engine, const Value& args, Now now) {
  auto t = engine.traced_set(args.get("key").as_string(), args.get("value").as_string(), now);
  if (!t.ok()) return fail(refusal_code(t.status()), prefix(CtlOp::kTrace) + t.status().message());
  return ok(engine.trace_report(*t, now));
}

CtlResponse trace_status_op(Engine& engine, const Value& args, Now now) {
  Value report = engine.trace_report(static_cast<uint64_t>(args.get("id").as_int()), now);
  if (report.is_null()) {
    return fail(wire::kCtlNotFound, prefix(CtlOp::kTrace) + "unknown or expired trace id");
  }
  return ok(std::move(report));
}

CtlResponse list_op(Engine& engine, const Value& args, Now now) {
  const std::string& pre = args.get("prefix").as_string();
  Value body = Value::object();
  body.set("entries", list_view(engine.list(pre, now.wall_ms), engine.counters(pre, now.wall_ms),
                                engine.orsets(pre, now.wall_ms)));
  body.set("staleness_ms", staleness(engine, now));
  return ok(std::move(body));
}

CtlResponse status_op(Engine& engine, const Value&, Now now) {
  Value v = engine.status(now);
  const std::string why = engine.readiness(now);
  v.set("ready", why.empty());
  v.set("not_ready", why.empty() ? Value(nullptr) : Value(why));  // null when ready
  return ok(std::move(v));
}
CtlResponse peers_op(Engine& engine, const Value& args, Now now) {
  Value body = engine.peers(now);
  Value all = Value::list();
  all.push(engine.self_member(now));
  for (const Value& m : body.get("members").as_list()) all.push(m);
  body.set("members", std::move(all));
  if (args.get("state").is_null()) return ok(std::move(body));
  const std::string& want = args.get("state").as_string();
  if (want != "alive" && want != "suspect" && want != "dead" && want != "left") {
    return fail(wire::kCtlBadRequest,
                prefix(CtlOp::kPeers) + "no state '" + want + "' (want alive, suspect, dead or left)");
  }
  Value kept = Value::list();
  for (const Value& m : body.get("members").as_list()) {
    if (m.get("state").as_string() == want) kept.push(m);
  }
  body.set("members", std::move(kept));
  return ok(std::move(body));
}
CtlResponse clock_op(Engine& engine, const Value&, Now) { return ok(engine.clock()); }

CtlResponse join_op(Engine& engine, const Value& args, Now now) {
  std::vector<Endpoint> seeds;
  for (const Value& p : args.get("peers").as_list()) {
    auto e = Endpoint::parse(p.as_string());
    if (!e) {
      return fail(wire::kCtlBadRequest,
                  prefix(CtlOp::kJoin) + "not an address: '" + p.as_string() + "' (want HOST:PORT)");
    }
    seeds.push_back(*e);
  }
  if (seeds.empty()) return fail(wire::kCtlBadRequest, prefix(CtlOp::kJoin) + "no peers given");
  engine.join(seeds, now);
  return ok(Value::object());
}

CtlResponse digest_op(Engine& engine, const Value& args, Now) {
  return ok(digest_view(engine.replica().map().digest(), args.get("groups")));
}

CtlResponse bucket_op(Engine& engine, const Value& args, Now now) {
  std::vector<bool> wanted(crdt::kDigestBuckets, false);
  for (const Value& b : args.get("buckets").as_list()) {
    if (b.as_int() < 0 || static_cast<size_t>(b.as_int()) >= crdt::kDigestBuckets) {
      return fail(wire::kCtlBadRequest, prefix(CtlOp::kBucket) + "bucket numbers are 0.." +
                                            std::to_string(crdt::kDigestBuckets - 1));
    }
    wanted[static_cast<size_t>(b.as_int())] = true;
  }
  Value entries = Value::list();
  const crdt::Hlc at = engine.replica().reading(now.wall_ms);
  engine.replica().map().for_each([&](std::string_view k, const crdt::EntryView& e) {
    const size_t b = crdt::bucket_of(k);
    if (!wanted[b]) return;
    Value v = entry_value(k, e);
    v.set("deleted", crdt::dead(e, at));
    v.set("bucket", static_cast<uint64_t>(b));
    entries.push(std::move(v));
  });
  Value body = Value::object();
  body.set("entries", std::move(entries));
  return ok(std::move(body));
}

CtlResponse loss_op(Engine& engine, const Value& args, Now) {
  Faults f = args.get("clear").as_bool() ? Faults{} : engine.faults();
  Status st = f.merge_from(args);
  if (st.ok()) st = engine.set_faults(f);
  if (!st.ok()) return fail(wire::kCtlBadRequest, prefix(CtlOp::kLoss) + st.message());
  Value body = f.to_value();
  body.set("active", f.active());
  return ok(std::move(body));
}

CtlResponse quarantine_op(Engine& engine, const Value& args, Now now) {
  const std::string action = args.get("action").is_null() ? "list" : args.get("action").as_string();
  const std::string& key = args.get("key").as_string();
  if (action == "list") {
    const int64_t limit = args.get("limit").is_null() ? 1000 : args.get("limit").as_int();
    if (limit <= 0) return fail(wire::kCtlBadRequest, prefix(CtlOp::kQuarantine) + "limit must be positive");
    Value body = Value::object();
    body.set("entries", engine.quarantine(args.get("prefix").as_string(), static_cast<size_t>(limit)));
    body.set("total", static_cast<uint64_t>(engine.replica().quarantined()));
    return ok(std::move(body));
  }
  if (action == "apply") {
    if (key.empty()) return fail(wire::kCtlBadRequest, prefix(CtlOp::kQuarantine) + "apply needs a key");
    auto w = engine.quarantine_apply(key, now);
    if (!w.ok()) {
      return fail(refusal_code(w.status()), prefix(CtlOp::kQuarantine) + w.status().message());
    }
    Value body = entry_value(w->key, w->entry);
    body.set("deleted", w->entry.tombstone);
    return ok(std::move(body));
  }
  if (action == "drop") {
    const bool all = args.get("all").as_bool();
    if (key.empty() == !all) {
      return fail(wire::kCtlBadRequest, prefix(CtlOp::kQuarantine) + "drop needs a key, or all (not both)");
    }
    const size_t n = engine.quarantine_drop(all ? std::string_view() : std::string_view(key), now);
    if (n == 0 && !all) {
      return fail(wire::kCtlNotFound, prefix(CtlOp::kQuarantine) + "nothing of key '" + key + "' is in quarantine");
    }
    Value body = Value::object();
    body.set("dropped", static_cast<uint64_t>(n));
    return ok(std::move(body));
  }
  return fail(wire::kCtlBadRequest,
              prefix(CtlOp::kQuarantine) + "unknown action '" + action + "' (list, apply or drop)");
}

CtlResponse forget_op(Engine& engine, const Value& args, Now now) {
  auto r = engine.forget(args.get("name").as_string(), now);
  if (!r.ok()) {
    const CtlCode code = r.status().code() == Code::kNotFound ? wire::kCtlNotFound : wire::kCtlBadRequest;
    return fail(code, prefix(CtlOp::kForget) + r.status().message());
  }
  return ok(std::move(*r));
}

// Every op of wire::kCtlOps, in its order; the shell's ops have no handler.
struct Route {
  CtlOp op;
  Handler handler;
};
constexpr std::array<Route, wire::kCtlOpCount> kRoutes = {{
    {CtlOp::kGet, get_op},
    {CtlOp::kSet, set_op},
    {CtlOp::kDel, del_op},
    {CtlOp::kMset, mset_op},
    {CtlOp::kTrace, trace_op},
    {CtlOp::kTraceStatus, trace_status_op},
    {CtlOp::kList, list_op},
    {CtlOp::kStatus, status_op},
    {CtlOp::kPeers, peers_op},
    {CtlOp::kClock, clock_op},
    {CtlOp::kJoin, join_op},
    {CtlOp::kDigest, digest_op},
    {CtlOp::kBucket, bucket_op},
    {CtlOp::kLoss, loss_op},
    {CtlOp::kKeys, nullptr},
    {CtlOp::kWatch, nullptr},
    {CtlOp::kQuarantine, quarantine_op},
    {CtlOp::kForget, forget_op},
    {CtlOp::kExpire, expire_op},
    {CtlOp::kTtl, ttl_op},
    {CtlOp::kIncr, incr_op},
    {CtlOp::kSadd, sadd_op},
    {CtlOp::kSrem, srem_op},
    {CtlOp::kSmembers, smembers_op},
    {CtlOp::kSismember, sismember_op},
}};

constexpr bool routes_follow_table() {
  for (size_t i = 0; i < kRoutes.size(); ++i) {
    const wire::OpSpec& s = wire::kCtlOps[i];
    if (kRoutes[i].op != s.op) return false;
    if ((kRoutes[i].handler != nullptr) != (s.answerer == wire::Answerer::kEngine)) return false;
  }
  return true;
}
static_assert(routes_follow_table(),
              "kRoutes must list kCtlOps in order, with a handler for exactly the engine's ops");
}  // namespace

namespace {
// The deadline a request gives its wait or quorum read (the client's --timeout).
Result<uint64_t> wait_timeout(const Value& args) {
  const Value& t = args.get("timeout_ms");
  if (t.is_null()) return kDefaultWaitMs;
  if (t.as_int() < 1 || static_cast<uint64_t>(t.as_int()) > kMaxWaitMs) {
    return Status::Invalid("timeout_ms must be 1.." + std::to_string(kMaxWaitMs));
  }
  return static_cast<uint64_t>(t.as_int());
}

// A write op with a wait (set, del, mset): the write is made as without
// one; the answer waits (Engine::await_writes) unless it is refused or
// wrote nothing.
CtlResponse waited_write(Engine& engine, CtlOp op, const wire::CtlRequest& req, Handler h, Now now,
                         uint64_t* deferred) {
  auto level = parse_level(req.args.get("wait").as_string());
  auto timeout = wait_timeout(req.args);
  if (!level.ok()) return fail(wire::kCtlBadRequest, prefix(op) + "wait: " + level.status().message());
  if (!timeout.ok()) return fail(wire::kCtlBadRequest, prefix(op) + timeout.status().message());
  if (deferred == nullptr) {
    return fail(wire::kCtlBadRequest, prefix(op) + "a wait is answered only on a control port");
  }
  const uint64_t before = engine.last_local_seq();
  CtlResponse r = h(engine, req.args, now);
  const uint64_t after = engine.last_local_seq();
  if (r.code != wire::kCtlOk || after == before) return r;
  r.req_id = req.req_id;
  auto id = engine.await_writes(*level, before + 1, after, *timeout, r, now);
  if (!id.ok()) return fail(wire::kCtlUnavailable, prefix(op) + id.status().message());
  *deferred = *id;
  return r;
}

// get or list with --read: a quorum read (Engine::quorum_read).
CtlResponse quorum_read(Engine& engine, CtlOp op, const wire::CtlRequest& req, Now now, uint64_t* deferred) {
  auto level = parse_level(req.args.get("read").as_string(), false);
  auto timeout = wait_timeout(req.args);
  if (!level.ok()) return fail(wire::kCtlBadRequest, prefix(op) + "read: " + level.status().message());
  if (!timeout.ok()) return fail(wire::kCtlBadRequest, prefix(op) + timeout.status().message());
  if (deferred == nullptr) {
    return fail(wire::kCtlBadRequest, prefix(op) + "a quorum read is answered only on a control port");
  }
  const bool list = op == CtlOp::kList;
  const std::string& key = req.args.get(list ? "prefix" : "key").as_string();
  if (!list && key.empty()) return fail(wire::kCtlBadRequest, prefix(op) + "empty key");
  // A quorum read asks members for one entry; a counter is many (its parts).
  if (!list && engine.counter(key, now.wall_ms)) {
    return fail(wire::kCtlBadRequest, prefix(op) + "'" + key + "' is a counter: --read is for values only");
  }
  if (!list && engine.orset(key, now.wall_ms)) {
    return fail(wire::kCtlBadRequest, prefix(op) + "'" + key + "' is a set: --read is for values only");
  }
  auto id = engine.quorum_read(*level, list, key, *timeout, req.req_id, now);
  if (!id.ok()) return fail(wire::kCtlUnavailable, prefix(op) + id.status().message());
  *deferred = *id;
  return CtlResponse{};
}
}  // namespace

CtlResponse handle_control(Engine& engine, const wire::CtlRequest& req, Now now, uint64_t* deferred) {
  const Result<CtlOp> op = wire::check_request(req.op, req.args);
  CtlResponse r;
  const bool waits = op.ok() &&
                     (*op == CtlOp::kSet || *op == CtlOp::kDel || *op == CtlOp::kMset || *op == CtlOp::kExpire ||
                      *op == CtlOp::kIncr || *op == CtlOp::kSadd || *op == CtlOp::kSrem) &&
                     !req.args.get("wait").is_null();
  const bool reads = op.ok() && (*op == CtlOp::kGet || *op == CtlOp::kList) && !req.args.get("read").is_null();
  if (deferred != nullptr) *deferred = 0;
  if (!op.ok()) {
    r = fail(wire::kCtlBadRequest, op.status().message());
  } else if (waits) {
    r = waited_write(engine, *op, req, kRoutes[static_cast<size_t>(*op)].handler, now, deferred);
  } else if (reads) {
    r = quorum_read(engine, *op, req, now, deferred);
  } else if (const Handler h = kRoutes[static_cast<size_t>(*op)].handler) {
    const bool writes = *op == CtlOp::kSet || *op == CtlOp::kDel || *op == CtlOp::kMset || *op == CtlOp::kIncr ||
                        *op == CtlOp::kSadd || *op == CtlOp::kSrem;
    const uint64_t before = engine.last_local_seq();
    r = h(engine, req.args, now);
    // Backpressure: the answer to a write waits while replication toward a
    // member is congested, for half the client's timeout at most, so that it
    // arrives before the client gives up.
    auto timeout = wait_timeout(req.args);
    if (writes && deferred != nullptr && r.code == wire::kCtlOk && engine.last_local_seq() != before &&
        timeout.ok()) {
      r.req_id = req.req_id;
      *deferred = engine.hold_write(*timeout / 2, r, now);
    }
  } else {
    r = fail(wire::kCtlBadRequest, prefix(*op) + "answered by a node's control port, not its engine");
  }
  r.req_id = req.req_id;
  return r;
}

}  // namespace meshkv::node
