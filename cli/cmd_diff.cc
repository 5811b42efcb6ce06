// meshkv diff A B: compares two nodes' states through their digests: roots
// first, then only the groups and buckets that differ, then the entries of
// differing buckets. Exit 0 identical, 1 different, 3 unreachable.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <tuple>

#include "commands.h"
#include "config_file.h"
#include "crdt/counter.h"
#include "crdt/orset.h"
#include "crdt/digest.h"
#include "net/control_client.h"
#include "output.h"
#include "wire/codec.h"

namespace meshkv::cli {

namespace {

struct Side {
  Endpoint at;
  std::string name;
};

struct Session {
  std::chrono::milliseconds timeout;
  uint64_t bytes = 0;  // control frames both ways, as sent on the wire

  Result<wire::Value> ask(const Side& s, wire::CtlOp op, wire::Value args) {
    wire::CtlRequest req = wire::make_request(op);
    req.args = std::move(args);
    auto r = net::call(s.at, req, timeout);
    if (!r.ok()) return r.status();
    bytes += 8 + wire::encode({wire::kVersion, 0, req}).size() +
             wire::encode({wire::kVersion, 0, *r}).size();
    if (r->code != wire::kCtlOk) return Status::Unavailable(s.name + ": " + r->error);
    return r->body;
  }

  // The same request to both nodes (b only if a answered); on failure says
  // why on stderr and returns nothing.
  std::optional<std::pair<wire::Value, wire::Value>> ask_both(const Side& a, const Side& b,
                                                              wire::CtlOp op, const wire::Value& args) {
    auto ra = ask(a, op, args);
    auto rb = ra.ok() ? ask(b, op, args) : ra;
    if (!ra.ok() || !rb.ok()) {
      std::cerr << (!ra.ok() ? ra : rb).status().message() << "\n";
      return std::nullopt;
    }
    return std::make_pair(std::move(*ra), std::move(*rb));
  }
};

// Orders entries as last-writer-wins does: by (physical, logical, origin).
std::tuple<uint64_t, uint64_t, uint64_t> order_key(const wire::Value& e) {
  const std::string& hlc = e.get("hlc").as_string();
  const auto dot = hlc.find('.');
  const uint64_t phys = std::strtoull(hlc.substr(0, dot).c_str(), nullptr, 10);
  const uint64_t logical = dot == std::string::npos ? 0 : std::strtoull(hlc.c_str() + dot + 1, nullptr, 10);
  return {phys, logical, std::strtoull(e.get("origin").as_string().c_str(), nullptr, 16)};
}

// A key as people read it: a counter's part or reset (crdt/counter.h) by the
// counter's key. --json keeps the entry's own key.
std::string shown_key(const std::string& key) {
  char origin[17];
  if (auto sk = crdt::parse_set_key(key)) {
    std::snprintf(origin, sizeof origin, "%016llx", static_cast<unsigned long long>(sk->origin));
    return escape(std::string(sk->set)) + (sk->remove ? " (set remove by " : " (set add by ") + origin + ")";
  }
  auto ik = crdt::parse_internal_key(key);
  if (!ik) return escape(key);
  const std::string counter = escape(std::string(ik->counter));
  if (ik->kind == crdt::InternalKey::Kind::kReset) return counter + " (counter reset)";
  std::snprintf(origin, sizeof origin, "%016llx", static_cast<unsigned long long>(ik->origin));
  return counter + " (counter part of " + origin + ")";
}

std::string describe(const wire::Value& e) {
  // Cut like list cuts it: diff is read by people; --json has the full value.
  // A counter's part or reset holds binary totals: named, not printed.
  const bool counter = crdt::internal_key(e.get("key").as_string());
  const bool set = crdt::set_key(e.get("key").as_string());
  const std::string v = e.get("deleted").as_bool() ? "(deleted)"
                        : set                      ? "(set member counts)"
                        : counter                  ? "(counter totals)"
                                                   : fit_value(escape(e.get("value").as_string()), Style{}, 0);
  return v + "  hlc " + e.get("hlc").as_string() + "  origin " + e.get("origin").as_string();
}

wire::Value int_list(const std::vector<size_t>& xs) {
  wire::Value l = wire::Value::list();
  for (size_t x : xs) l.push(static_cast<uint64_t>(x));
  return l;
}

// Indices where two lists of hashes differ.
std::vector<size_t> differing(const wire::Value& a, const wire::Value& b, size_t offset = 0) {
  std::vector<size_t> out;
  const auto& la = a.as_list();
  const auto& lb = b.as_list();
  for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    if (i >= la.size() || i >= lb.size() || !(la[i] == lb[i])) out.push_back(offset + i);
  }
  return out;
}

int run_diff(const Side& a, const Side& b, Session& s, bool json) {
  auto roots = s.ask_both(a, b, wire::CtlOp::kDigest, wire::Value::object());
  if (!roots) return kExitUnreachable;
  std::map<std::string, wire::Value> ea, eb;
  if (!(roots->first.get("root") == roots->second.get("root"))) {
    wire::Value args = wire::Value::object();
    args.set("groups", int_list(differing(roots->first.get("groups"), roots->second.get("groups"))));
    auto groups = s.ask_both(a, b, wire::CtlOp::kDigest, args);
    if (!groups) return kExitUnreachable;
    std::vector<size_t> buckets;
    const auto& ra = groups->first.get("buckets").as_list();
    const auto& rb = groups->second.get("buckets").as_list();
    for (size_t i = 0; i < std::min(ra.size(), rb.size()); ++i) {
      const size_t base = static_cast<size_t>(ra[i].get("group").as_int()) * crdt::kDigestFanout;
      for (size_t x : differing(ra[i].get("buckets"), rb[i].get("buckets"), base)) buckets.push_back(x);
    }
    wire::Value bargs = wire::Value::object();
    bargs.set("buckets", int_list(buckets));
    auto entries = s.ask_both(a, b, wire::CtlOp::kBucket, bargs);
    if (!entries) return kExitUnreachable;
    for (const auto& e : entries->first.get("entries").as_list()) ea[e.get("key").as_string()] = e;
    for (const auto& e : entries->second.get("entries").as_list()) eb[e.get("key").as_string()] = e;
  }
  wire::Value only_a = wire::Value::list(), only_b = wire::Value::list(), diff = wire::Value::list();
  for (const auto& [k, e] : ea) {
    auto it = eb.find(k);
    if (it == eb.end()) {
      only_a.push(e);
    } else if (!(order_key(e) == order_key(it->second)) ||
               !(e.get("value") == it->second.get("value"))) {
      wire::Value d = wire::Value::object();
      d.set("key", k);
      d.set("a", e);
      d.set("b", it->second);
      d.set("winner", order_key(e) > order_key(it->second) ? "a" : "b");
      diff.push(std::move(d));
    }
  }
  for (const auto& [k, e] : eb) {
    if (!ea.count(k)) only_b.push(e);
  }
  const size_t n = only_a.as_list().size() + only_b.as_list().size() + diff.as_list().size();
  if (json) {
    wire::Value out = wire::Value::object();
    out.set("identical", n == 0);
    out.set("a", a.name);
    out.set("b", b.name);
    out.set("only_a", std::move(only_a));
    out.set("only_b", std::move(only_b));
    out.set("differ", std::move(diff));
    out.set("bytes", s.bytes);
    std::cout << out.to_json() << "\n";
    return n == 0 ? kExitOk : kExitNegative;
  }
  if (n == 0) {
    std::cout << "identical (" << s.bytes << " bytes compared)\n";
    return kExitOk;
  }
  for (const auto& e : only_a.as_list()) std::cout << "only in " << a.name << ": " << shown_key(e.get("key").as_string()) << " = " << describe(e) << "\n";
  for (const auto& e : only_b.as_list()) std::cout << "only in " << b.name << ": " << shown_key(e.get("key").as_string()) << " = " << describe(e) << "\n";
  for (const auto& d : diff.as_list()) {
    const bool a_wins = d.get("winner").as_string() == "a";
    std::cout << "differs: " << shown_key(d.get("key").as_string()) << "\n"
              << "  " << a.name << ": " << describe(d.get("a")) << (a_wins ? "  (wins)" : "") << "\n"
              << "  " << b.name << ": " << describe(d.get("b")) << (a_wins ? "" : "  (wins)") << "\n";
  }
  std::cout << n << " difference" << (n == 1 ? "" : "s") << " (" << s.bytes << " bytes transferred)\n";
  return kExitNegative;
}

}  // namespace

Handler setup_diff(CLI::App& sub) {
  struct Options {
    std::string a, b;
    unsigned timeout_ms = 3000;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub.footer("Compares digests first (root, then 64 groups, then 4096 buckets) and fetches only\n"
             "the entries of buckets that differ, so the traffic follows the difference, not\n"
             "the state. Deleted keys count: a tombstone on one side only is a difference.\n"
             "Exit 0 identical, 1 different, 3 a node unreachable.");
  sub.add_option("A", o->a, "first node, HOST:PORT")->required();
  sub.add_option("B", o->b, "second node, HOST:PORT")->required();
  sub.add_option("--timeout", o->timeout_ms, "give up on a node after this long (default 3000)")->type_name("MS");
  sub.add_flag("--json", o->json, "print the differences as JSON");
  return [o] {
    auto ea = parse_address(o->a);
    auto eb = parse_address(o->b);
    if (!ea || !eb) {
      std::cerr << "diff: expected two HOST:PORT addresses, got '" << o->a << "' and '" << o->b << "'\n";
      return kExitUsage;
    }
    Session s{std::chrono::milliseconds(o->timeout_ms)};
    return run_diff({*ea, ea->to_string()}, {*eb, eb->to_string()}, s, o->json);
  };
}

}  // namespace meshkv::cli
