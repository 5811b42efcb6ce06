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
