#include "node/control.h"

namespace meshkv::node {

using wire::CtlResponse;
using wire::Value;

namespace {
CtlResponse fail(uint64_t id, uint8_t code, std::string msg) {
  CtlResponse r;
  r.req_id = id;
  r.code = code;
  r.error = std::move(msg);
  return r;
}

Value entry_value(const std::string& key, const crdt::Entry& e) {
  Value v = Value::object();
  v.set("key", key);
  if (!e.tombstone) v.set("value", e.value);
  v.set("hlc", format_hlc(e.hlc));
  v.set("origin", format_uid(e.dot.origin));
  v.set("seq", e.dot.seq);
  return v;
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

// Both a missing argument and a wrong type are the client's mistake: code 2.
bool need_string(const Value& args, const char* name, std::string& out) {
  const Value& v = args.get(name);
  if (!v.is_string()) return false;
  out = v.as_string();
  return true;
}
}  // namespace

CtlResponse handle_control(Engine& engine, const wire::CtlRequest& req, Now now) {
  const uint64_t id = req.req_id;
  const Value& a = req.args;
  CtlResponse r;
  r.req_id = id;
  std::string key, value;
  if (req.op == "get") {
    if (!need_string(a, "key", key)) return fail(id, 2, "get: missing 'key'");
    const crdt::Entry* e = engine.get(key);
    if (!e || e->tombstone) return fail(id, 1, "key not found: " + key);
    r.body = entry_value(key, *e);
  } else if (req.op == "set" || req.op == "del") {
    if (!need_string(a, "key", key)) return fail(id, 2, req.op + ": missing 'key'");
    if (req.op == "set" && !need_string(a, "value", value)) return fail(id, 2, "set: missing 'value'");
    auto w = req.op == "set" ? engine.set(key, value, now) : engine.del(key, now);
    if (!w.ok()) return fail(id, 2, req.op + ": " + w.status().message());
    r.body = entry_value(w->key, w->entry);
  } else if (req.op == "mset") {
    // Validate everything first: a batch is applied whole or not at all.
    const auto& items = a.get("entries").as_list();
    for (const Value& kv : items) {
      const auto& pair = kv.as_list();
      // [key, value] writes; [key, null] deletes.
      if (pair.size() != 2 || !pair[0].is_string() || !(pair[1].is_string() || pair[1].is_null())) {
        return fail(id, 2, "mset: entries must be [key, value or null] pairs");
      }
      if (Status st = crdt::check_key(pair[0].as_string()); !st.ok()) return fail(id, 2, "mset: " + st.message());
      if (Status st = crdt::check_value(pair[1].is_null() ? "" : pair[1].as_string()); !st.ok()) {
        return fail(id, 2, "mset: " + st.message());
      }
    }
    for (const Value& kv : items) {
      const auto& pair = kv.as_list();
      const auto w = pair[1].is_null() ? engine.del(pair[0].as_string(), now)
                                       : engine.set(pair[0].as_string(), pair[1].as_string(), now);
      if (!w.ok()) return fail(id, 3, "mset: write failed");
    }
    r.body = Value::object();
    r.body.set("written", static_cast<uint64_t>(items.size()));
  } else if (req.op == "trace") {
    if (!need_string(a, "key", key) || !need_string(a, "value", value)) {
      return fail(id, 2, "trace: missing 'key' or 'value'");
    }
    auto t = engine.traced_set(key, value, now);
    if (!t.ok()) return fail(id, 2, "trace: " + t.status().message());
    r.body = engine.trace_report(*t, now);
  } else if (req.op == "trace_status") {
    r.body = engine.trace_report(static_cast<uint64_t>(a.get("id").as_int()), now);
    if (r.body.is_null()) return fail(id, 1, "trace: unknown or expired trace id");
  } else if (req.op == "list") {
    std::string prefix;
    need_string(a, "prefix", prefix);
    Value entries = Value::list();
    for (const auto& [k, e] : engine.list(prefix)) entries.push(entry_value(k, e));
    r.body = Value::object();
    r.body.set("entries", std::move(entries));
  } else if (req.op == "status") {
    r.body = engine.status(now);
  } else if (req.op == "peers") {
    r.body = engine.peers(now);
  } else if (req.op == "clock") {
    r.body = engine.clock();
  } else if (req.op == "join") {
    std::vector<Endpoint> seeds;
    for (const Value& p : a.get("peers").as_list()) {
      auto e = Endpoint::parse(p.as_string());
      if (!e) return fail(id, 2, "join: not an address: '" + p.as_string() + "' (want HOST:PORT)");
      seeds.push_back(*e);
    }
    if (seeds.empty()) return fail(id, 2, "join: no peers given");
    engine.join(seeds, now);
    r.body = Value::object();
  } else if (req.op == "digest") {
    r.body = digest_view(engine.replica().map().digest(), a.get("groups"));
  } else if (req.op == "bucket") {
    std::vector<bool> wanted(crdt::kDigestBuckets, false);
    for (const Value& b : a.get("buckets").as_list()) {
      if (!b.is_int() || b.as_int() < 0 || static_cast<size_t>(b.as_int()) >= crdt::kDigestBuckets) {
        return fail(id, 2, "bucket: bucket numbers are 0.." + std::to_string(crdt::kDigestBuckets - 1));
      }
      wanted[static_cast<size_t>(b.as_int())] = true;
    }
    Value entries = Value::list();
    engine.replica().map().for_each([&](const std::string& k, const crdt::Entry& e) {
      const size_t b = crdt::bucket_of(k);
      if (!wanted[b]) return;
      Value v = entry_value(k, e);
      v.set("deleted", e.tombstone);
      v.set("bucket", static_cast<uint64_t>(b));
      entries.push(std::move(v));
    });
    r.body = Value::object();
    r.body.set("entries", std::move(entries));
  } else if (req.op == "loss") {
    Faults f = a.get("clear").as_bool() ? Faults{} : engine.faults();
    if (Status st = f.merge_from(a); !st.ok()) return fail(id, 2, "loss: " + st.message());
    if (Status st = engine.set_faults(f); !st.ok()) return fail(id, 2, "loss: " + st.message());
    r.body = f.to_value();
    r.body.set("active", f.active());
  } else {
    return fail(id, 2, "unknown operation '" + req.op + "'");
  }
  return r;
}

}  // namespace meshkv::node
