// The remote subcommands: get, set, del, list, status, peers, clock, join,
// forget.
// Each sends one control request to a running node (--node, or MESHKV_NODE)
// and prints the answer for people or, with --json, for scripts.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <thread>
#include <fstream>
#include <limits>
#include <iostream>

#include "commands.h"
#include "config_file.h"
#include "crdt/counter.h"
#include "crdt/orset.h"
#include "crdt/replica.h"
#include "node/consistency.h"
#include "net/control_client.h"
#include "output.h"
#include "repl.h"

namespace meshkv::cli {

namespace {

struct ClientOptions {
  std::vector<std::string> nodes{"127.0.0.1:7946"};
  unsigned timeout_ms = 3000;
  bool json = false;
  std::string key, value, prefix;
  std::vector<std::string> peers;
  std::string member;
  std::string wait, read;  // --wait, --read (node/consistency.h); empty: not given
  int64_t max_staleness_ms = -1;
};

// The node answers a wait or quorum read by the deadline --timeout gives
// it; the client allows this much more for that answer to arrive.
constexpr unsigned kAnswerSlackMs = 2000;

// A level as --wait (counts allowed) or --read takes it.
CLI::Validator level_check(bool counts) {
  return CLI::Validator(
      [counts](std::string& v) {
        auto l = node::parse_level(v, counts);
        return l.ok() ? std::string() : l.status().message();
      },
      "");
}

void add_wait(CLI::App& sub, ClientOptions& o) {
  sub.add_option("--wait", o.wait,
                 "return once this many members have the write (this node included; acknowledged, "
                 "and appended to their log where they have a data directory): a count, quorum "
                 "(a majority of the members that have not left) or all; default 1. After "
                 "--timeout, exit 1 naming the members that had not acknowledged. A durability "
                 "wait, not a transaction: the write is never undone")
      ->type_name("N|quorum|all")
      ->check(level_check(true));
}

void add_read(CLI::App& sub, ClientOptions& o, bool list) {
  sub.add_option("--read", o.read,
                 list ? "first catch this node up with a quorum (or all) of the members: ask each "
                        "for its version vector and pull what it lacks by anti-entropy, then list; "
                        "exit 3 if too few answer and are caught up with within --timeout"
                      : "ask a quorum (or all) of the members for their entry and return the newest "
                        "(by hlc, origin); members that were behind, and this node, are sent it "
                        "(read repair); exit 3 if too few answer within --timeout")
      ->type_name("quorum|all")
      ->check(level_check(false));
}

// The consistency arguments of `req` from the options. A write always
// carries --timeout: the node holds its answer for half of it at most
// while replication is congested (backpressure).
void consistency_args(const ClientOptions& o, wire::CtlRequest& req) {
  if (!o.wait.empty()) req.args.set("wait", o.wait);
  if (!o.read.empty()) req.args.set("read", o.read);
  const bool write = req.op == "set" || req.op == "del" || req.op == "mset";
  if (write || !o.wait.empty() || !o.read.empty()) req.args.set("timeout_ms", static_cast<int64_t>(o.timeout_ms));
  if (o.max_staleness_ms >= 0) req.args.set("max_staleness_ms", o.max_staleness_ms);
}

// How long the client waits for the answer to `req`.
std::chrono::milliseconds answer_timeout(const ClientOptions& o, const wire::CtlRequest& req) {
  const bool deferred = !req.args.get("wait").is_null() || !req.args.get("read").is_null();
  return std::chrono::milliseconds(o.timeout_ms + (deferred ? kAnswerSlackMs : 0));
}

void add_common(CLI::App& sub, ClientOptions& o, bool many_nodes) {
  auto* node = sub.add_option("--node", o.nodes,
                              many_nodes ? "node to ask, HOST:PORT (repeatable; default "
                                           "127.0.0.1:7946, or $MESHKV_NODE)"
                                         : "node to ask, HOST:PORT (default 127.0.0.1:7946, "
                                           "or $MESHKV_NODE)")
                   ->type_name("HOST:PORT")
                   ->envname("MESHKV_NODE")
                   ->expected(1)
                   ->allow_extra_args(false);  // `--node A KEY VALUE`: KEY is no node
  if (many_nodes) {
    node->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  } else {
    node->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  sub.add_option("--timeout", o.timeout_ms, "give up after this long (default 3000)")
      ->type_name("MS")
      ->check(CLI::Range(1u, 3'600'000u));
  sub.add_flag("--json", o.json, "print the node's answer as one line of JSON");
}

// One request to each node in turn; the exit code is the worst outcome.
int call_nodes(const ClientOptions& o, const wire::CtlRequest& req) {
  const Style style = detect_style(1);
  int rc = kExitOk;
  for (const std::string& n : o.nodes) {
    auto ep = parse_flag_address(n);
    if (!ep) return kExitUsage;
    if (o.nodes.size() > 1 && !o.json) std::cout << "== " << ep->to_string() << "\n";
    auto r = net::call(*ep, req, answer_timeout(o, req));
    rc = std::max(rc, print_result(req, r, o.json, style, std::cout, std::cerr));
  }
  return rc;
}

// The client's own refusal of what it will not send: `message` on stderr, or
// with --json as print_result words a refusal; returns `rc`.
int refuse(const ClientOptions& o, const std::string& message, int rc) {
  if (!o.json) {
    std::cerr << message << "\n";
    return rc;
  }
  wire::Value e = wire::Value::object();
  e.set("error", message);
  e.set("code", static_cast<int64_t>(rc));
  std::cout << e.to_json() << "\n";
  return rc;
}

}  // namespace

// `set --batch FILE`: "KEY VALUE" lines ("-" is stdin): the key up to the
// first space or tab, the value the rest of the line after the blanks that
// follow it, without trailing blanks; a key or value that starts with a
// quote is read as at the prompt ('single', "double \" quotes", and the line
// must then be exactly KEY VALUE). A trailing CR (CRLF files), blank lines and
// lines starting with '#' are ignored. Errors name the file and line.
// `del --batch FILE`: one KEY per line, quoted likewise; without `force` the
// node skips keys it holds no value for, and they are counted as not found
// (exit 0 all the same: every line was handled). Sent in frames of up to
// kBatch writes and kBatchBytes bytes, far below the node's frame limit.
// Each line is checked here against the key and value limits: a bad one
// stops the batch with exit 2, saying what was written before it.
//
// One line of a batch file, or nothing for a blank line or a comment.
using BatchLine = std::optional<std::pair<std::string, std::string>>;
Result<BatchLine> parse_batch_line(std::string_view line, bool deleting) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  if (line.empty() || line.front() == '#') return BatchLine();
  const auto quote = [](char c) { return c == '"' || c == '\''; };
  size_t cut = 0;
  while (cut < line.size() && !blank(line[cut])) ++cut;
  size_t vstart = cut;
  while (vstart < line.size() && blank(line[vstart])) ++vstart;
  const size_t words = deleting ? 1 : 2;
  if (quote(line.front()) || (!deleting && vstart < line.size() && quote(line[vstart]))) {
    std::string error;
    auto w = tokenize(line, &error);
    if (!w) return Status::Invalid(error);
    if (w->size() != words) {
      return Status::Invalid(deleting ? "expected one KEY (quoted, it may hold spaces)"
                                      : "expected KEY VALUE (quote a value with spaces: k \"a b\")");
    }
    return BatchLine(std::make_pair((*w)[0], deleting ? std::string() : (*w)[1]));
  }
  if (deleting) {
    while (!line.empty() && blank(line.back())) line.remove_suffix(1);
    if (vstart < line.size()) return Status::Invalid("expected one KEY (quote a key with spaces)");
    return BatchLine(std::make_pair(std::string(line), std::string()));
  }
  if (vstart >= line.size()) return Status::Invalid("expected KEY VALUE");
  std::string_view value = line.substr(vstart);
  while (!value.empty() && blank(value.back())) value.remove_suffix(1);
  return BatchLine(std::make_pair(std::string(line.substr(0, cut)), std::string(value)));
}

int write_batch(const ClientOptions& o, const std::string& file, bool deleting, bool force) {
  constexpr size_t kBatch = 5000;
  constexpr size_t kBatchBytes = 8 * 1024 * 1024;
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file);
    if (!f) {
      std::cerr << "--batch: cannot open '" << file << "'\n";
      return kExitUsage;
    }
    in = &f;
  }
  auto ep = parse_flag_address(o.nodes.back());
  if (!ep) return kExitUsage;
  uint64_t total = 0, not_found = 0, lineno = 0;
  size_t bytes = 0;
  std::string line;
  wire::CtlRequest req = wire::make_request(wire::CtlOp::kMset);
  if (deleting && force) req.args.set("force", true);
  consistency_args(o, req);
  wire::Value batch = wire::Value::list();
  auto send = [&]() -> int {
    bytes = 0;
    if (batch.as_list().empty()) return kExitOk;
    req.args.set("entries", std::exchange(batch, wire::Value::list()));
    auto r = net::call(*ep, req, answer_timeout(o, req));
    if (!r.ok() || r->code != wire::kCtlOk) return print_result(req, r, o.json, Style{}, std::cout, std::cerr);
    total += static_cast<uint64_t>(r->body.get("written").as_int());
    not_found += static_cast<uint64_t>(r->body.get("not_found").as_int());
    return kExitOk;
  };
  auto bad_line = [&](const std::string& why) {
    return refuse(o, file + ":" + std::to_string(lineno) + ": " + why + " (stopped here; " +
                         std::to_string(total) + " keys written before this line)",
                  kExitUsage);
  };
  while (std::getline(*in, line)) {
    ++lineno;
    auto parsed = parse_batch_line(line, deleting);
    if (!parsed.ok()) return bad_line(parsed.status().message());
    if (!parsed->has_value()) continue;  // blank or a comment
    const auto& [key, value] = **parsed;
    wire::Value kv = wire::Value::list();
    if (Status st = crdt::check_key(key); !st.ok()) return bad_line(st.message());
    kv.push(key);
    if (deleting) {
      kv.push(nullptr);
    } else {
      if (Status st = crdt::check_value(value); !st.ok()) return bad_line(st.message());
      kv.push(value);
    }
    if (bytes + line.size() > kBatchBytes) {
      if (int rc = send(); rc != kExitOk) return rc;
    }
    bytes += line.size();
    batch.push(std::move(kv));
    if (batch.as_list().size() >= kBatch) {
      if (int rc = send(); rc != kExitOk) return rc;
    }
  }
  if (int rc = send(); rc != kExitOk) return rc;
  if (o.json) {
    std::cout << "{\"written\":" << total;
    if (deleting) std::cout << ",\"not_found\":" << not_found;
    std::cout << "}\n";
  } else if (!deleting) {
    std::cout << "set " << total << " keys\n";
  } else {
    std::cout << "deleted " << total << " keys";
    if (not_found > 0) std::cout << ", " << not_found << " not found (nothing written for those; --force writes tombstones)";
    std::cout << "\n";
  }
  return kExitOk;
}

// The client's own check of a key and value, so that a value over the limit
// is refused before it is sent: a message and exit 2, or 0.
int check_write(const ClientOptions& o, const char* cmd, std::string_view key, const std::string* value) {
  Status st = crdt::check_key(key);
  if (st.ok() && value != nullptr) st = crdt::check_value(*value);
  if (st.ok()) return kExitOk;
  return refuse(o, std::string(cmd) + ": " + st.message(), kExitUsage);
}

Handler setup_get(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  sub.add_option("KEY", o->key, "the key")->required();
  add_read(sub, *o, false);
  sub.add_option("--max-staleness", o->max_staleness_ms,
                 "refuse (exit 1, saying how stale) rather than answer from a node not known to "
                 "hold, within the last MS ms, everything its reachable members had")
      ->type_name("MS")
      ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}));
  add_common(sub, *o, false);
  sub.footer(
      "With --json the answer carries staleness_ms: the time since this node was last known "
      "(from anti-entropy digests) to hold every write each reachable member had incorporated, "
      "the oldest over those members; null while some reachable member was never known to be "
      "covered. It bounds what the node missed from members it can reach, not writes still in "
      "flight, nor writes held only by members it considers dead or cannot reach.");
  return [o] {
    if (!o->read.empty() && o->max_staleness_ms >= 0) {
      std::cerr << "meshkv get: --read asks the members; --max-staleness bounds a local answer: "
                   "give one\n";
      return kExitUsage;
    }
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kGet);
    req.args.set("key", o->key);
    consistency_args(*o, req);
    return call_nodes(*o, req);
  };
}

// The value of `set KEY -` (stdin) or --value-file: the bytes as they are
// (a trailing newline included), at most one byte over the limit, so that
// check_value refuses an oversized one without reading it all.
Result<std::string> read_value(const std::string& file) {
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file, std::ios::binary);
    if (!f) return Status::Invalid("--value-file: cannot open '" + file + "'");
    in = &f;
  }
  std::string v(crdt::kMaxValueBytes + 1, '\0');
  in->read(v.data(), static_cast<std::streamsize>(v.size()));
  if (in->bad()) return Status::Invalid("cannot read the value from " + (file == "-" ? std::string("stdin") : file));
  v.resize(static_cast<size_t>(in->gcount()));
  return v;
}

Handler setup_set(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto batch = std::make_shared<std::string>();
  auto value_file = std::make_shared<std::string>();
  auto* key = sub.add_option("KEY", o->key, "the key");
  auto* value = sub.add_option("VALUE", o->value,
                               "the value (quote it in the shell); '-' reads it from stdin");
  auto* b = sub.add_option("--batch", *batch,
                           "write many keys: lines of KEY VALUE from FILE ('-' for stdin)")
                ->type_name("FILE");
  auto* vf = sub.add_option("--value-file", *value_file, "read the value from FILE, byte for byte")
                 ->type_name("FILE");
  auto ttl = std::make_shared<std::string>();
  sub.add_option("--ttl", *ttl,
                 "the value expires this long after the write (500ms, 2s, 10m, 1h, 7d): from the "
                 "write's HLC time plus DURATION on, every node reads the key as deleted")
      ->type_name("DURATION")
      ->excludes(b);
  b->excludes(key)->excludes(value)->excludes(vf);
  vf->excludes(value);
  add_wait(sub, *o);
  add_common(sub, *o, false);
  sub.footer(
      "A value may start with '-' (meshkv set k -x); one that starts with '--' goes after '--' "
      "(meshkv set k -- --x). 'set KEY -' reads the value from stdin and --value-file from a "
      "file, byte for byte (a trailing newline is kept), up to the 1 MiB limit.");
  return [o, batch, key, value, value_file, ttl] {
    if (!batch->empty()) return write_batch(*o, *batch, false, false);
    if (key->count() == 0 || (value->count() == 0 && value_file->empty())) {
      std::cerr << "meshkv set: KEY and VALUE are required (or --value-file FILE, or --batch FILE)\n";
      return kExitUsage;
    }
    if (!value_file->empty() || o->value == "-") {
      auto v = read_value(value_file->empty() ? "-" : *value_file);
      if (!v.ok()) return refuse(*o, "meshkv set: " + v.status().message(), kExitUsage);
      o->value = std::move(*v);
    }
    if (int rc = check_write(*o, "set", o->key, &o->value); rc != kExitOk) return rc;
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kSet);
    req.args.set("key", o->key);
    req.args.set("value", o->value);
    if (!ttl->empty()) {
      std::string error;
      auto ms = parse_duration_ms(*ttl, &error);
      if (!ms) return refuse(*o, "meshkv set: --ttl: " + error, kExitUsage);
      req.args.set("ttl_ms", static_cast<int64_t>(*ms));
    }
    consistency_args(*o, req);
    return call_nodes(*o, req);
  };
}
Handler setup_del(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto batch = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto* key = sub.add_option("KEY", o->key, "the key");
  sub.add_option("--batch", *batch,
                 "delete many keys: one KEY per line of FILE ('-' for stdin); prints how many "
                 "were deleted and how many not found")
      ->type_name("FILE")
      ->excludes(key);
  sub.add_flag("--force", *force,
               "write a tombstone even if the node holds no value for the key (it may live on a "
               "node out of reach)");
  add_wait(sub, *o);
  add_common(sub, *o, false);
  sub.footer(
      "A key the node holds no value for (never written, or already deleted) is not found: "
      "nothing is written and del exits 1. --force writes the tombstone anyway, so that the "
      "delete wins over a value a partitioned node may still hold. With --batch, keys not found "
      "are counted and skipped, and del exits 0 once every line was handled.");
  return [o, batch, key, force] {
    if (!batch->empty()) return write_batch(*o, *batch, true, *force);
    if (key->count() == 0) {
      std::cerr << "meshkv del: KEY is required (or --batch FILE)\n";
      return kExitUsage;
    }
    if (int rc = check_write(*o, "del", o->key, nullptr); rc != kExitOk) return rc;
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kDel);
    req.args.set("key", o->key);
    if (*force) req.args.set("force", true);
    consistency_args(*o, req);
    return call_nodes(*o, req);
  };
}
// `status --check`: one line and the exit code, for scripts and service
// managers: 0 ready, 1 not ready (why), 3 unreachable.
Handler setup_status(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto check = std::make_shared<bool>(false);
  add_common(sub, *o, false);
  sub.add_flag("--check", *check,
               "print one line, whether the node is ready (joined, and not refusing writes), "
               "and exit 0 when it is, 1 when not, 3 when unreachable");
  return [o, check] {
    const wire::CtlRequest req = wire::make_request(wire::CtlOp::kStatus);
    if (!*check) return call_nodes(*o, req);
    auto ep = parse_flag_address(o->nodes.back());
    if (!ep) return kExitUsage;
    auto r = net::call(*ep, req, std::chrono::milliseconds(o->timeout_ms));
    if (!r.ok() || r->code != wire::kCtlOk) {
      // "node HOST:PORT unreachable: ...", or the node's refusal.
      std::cout << (r.ok() ? r->error : r.status().message()) << "\n";
      return kExitUnreachable;
    }
    const std::string who = r->body.get("id").as_string() + " (" + ep->to_string() + ")";
    if (r->body.get("ready").as_bool()) {
      std::cout << "ready: " << who << "\n";
      return kExitOk;
    }
    std::cout << "not ready: " << who << ": " << r->body.get("not_ready").as_string() << "\n";
    return kExitNegative;
  };
}
Handler setup_peers(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto state = std::make_shared<std::string>();
  sub.add_option("--state", *state, "only the members in this state")
      ->check(CLI::IsMember({"alive", "suspect", "dead", "left"}));
  add_common(sub, *o, false);
  sub.footer(
      "The node itself is listed first, marked self (\"self\": true in --json); its RTT, clock "
      "offset and last contact are not measured (null). status lists only the other members.");
  return [o, state] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kPeers);
    if (!state->empty()) req.args.set("state", *state);
    return call_nodes(*o, req);
  };
}

Handler setup_list(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  sub.add_option("PREFIX", o->prefix, "only keys starting with this");
  add_read(sub, *o, true);
  add_common(sub, *o, false);
  return [o] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kList);
    if (!o->prefix.empty()) req.args.set("prefix", o->prefix);
    consistency_args(*o, req);
    return call_nodes(*o, req);
  };
}

Handler setup_quarantine(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto action = std::make_shared<std::string>("list");
  auto all = std::make_shared<bool>(false);
  auto limit = std::make_shared<unsigned>(1000);
  sub.add_option("ACTION", *action,
                 "list (default): the writes kept aside; apply KEY: make the newest of them the "
                 "key's value again, as a new write; drop KEY (or --all): discard them")
      ->check(CLI::IsMember({"list", "apply", "drop"}));
  sub.add_option("KEY", o->key, "the key (apply, drop), or a key prefix (list)");
  sub.add_flag("--all", *all, "drop every quarantined write");
  sub.add_option("--limit", *limit, "list at most this many (default 1000)")
      ->type_name("N")
      ->check(CLI::Range(1u, 1'000'000u));
  add_common(sub, *o, true);
  sub.footer(
      "A write lands in quarantine when its writer was cut off from the majority for longer than "
      "the tombstone grace period and the write cannot be ordered against the deletes the others "
      "collected meanwhile: shown, it could bring a deleted key back. It is never shown and never "
      "dropped by itself; it leaves quarantine when its key gets a value again (ordinary "
      "last-writer-wins then decides), or when you apply or drop it. Quarantine is per node: "
      "list it on each (--node, repeatable).");
  return [o, action, all, limit] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kQuarantine);
    req.args.set("action", *action);
    if (*action == "list") {
      if (*all) {
        std::cerr << "quarantine list: --all is for drop\n";
        return kExitUsage;
      }
      if (!o->key.empty()) req.args.set("prefix", o->key);
      req.args.set("limit", static_cast<int64_t>(*limit));
    } else if (*action == "apply") {
      if (o->key.empty() || *all) {
        std::cerr << "quarantine apply: give one KEY\n";
        return kExitUsage;
      }
      req.args.set("key", o->key);
    } else {
      if (o->key.empty() == !*all) {
        std::cerr << "quarantine drop: give a KEY, or --all\n";
        return kExitUsage;
      }
      if (*all) {
        req.args.set("all", true);
      } else {
        req.args.set("key", o->key);
      }
    }
    return call_nodes(*o, req);
  };
}

namespace {
// `join`: asks the node to contact each address, then watches its member
// list (until every address answered, or --timeout) for an alive member at
// that address. Exit 0 if at least one was reached, 3 if none was.
int join_and_wait(const ClientOptions& o, const wire::CtlRequest& req) {
  using Clock = std::chrono::steady_clock;
  const Style style = detect_style(1);
  auto ep = parse_flag_address(o.nodes.back());
  if (!ep) return kExitUsage;
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  auto r = net::call(*ep, req, std::chrono::milliseconds(o.timeout_ms));
  if (!r.ok() || r->code != wire::kCtlOk) return print_result(req, r, o.json, style, std::cout, std::cerr);
  const wire::Value::List& asked = req.args.get("peers").as_list();
  std::vector<std::string> names(asked.size());
  std::vector<bool> reached(asked.size(), false);
  const wire::CtlRequest peers_req = wire::make_request(wire::CtlOp::kPeers);
  for (int round = 0; round < 100'000; ++round) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto p = net::call(*ep, peers_req, left);
    if (p.ok() && p->code == wire::kCtlOk) {
      for (const wire::Value& m : p->body.get("members").as_list()) {
        for (size_t i = 0; i < asked.size(); ++i) {
          if (m.get("address").as_string() == asked[i].as_string() && m.get("state").as_string() == "alive") {
            reached[i] = true;
            names[i] = m.get("name").as_string();
          }
        }
      }
    }
    if (std::count(reached.begin(), reached.end(), true) == static_cast<long>(asked.size())) break;
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(100), left));
  }
  const auto n_reached = static_cast<uint64_t>(std::count(reached.begin(), reached.end(), true));
  if (o.json) {
    wire::Value list = wire::Value::list();
    for (size_t i = 0; i < asked.size(); ++i) {
      wire::Value e = wire::Value::object();
      e.set("address", asked[i].as_string());
      e.set("reached", static_cast<bool>(reached[i]));
      e.set("name", reached[i] ? wire::Value(names[i]) : wire::Value(nullptr));
      list.push(std::move(e));
    }
    wire::Value body = wire::Value::object();
    body.set("peers", std::move(list));
    body.set("reached", n_reached);
    std::cout << body.to_json() << "\n";
  } else {
    for (size_t i = 0; i < asked.size(); ++i) {
      if (reached[i]) {
        std::cout << "reached " << asked[i].as_string() << " (" << names[i] << ")\n";
      } else {
        std::cout << "no answer from " << asked[i].as_string() << " within " << o.timeout_ms
                  << " ms (the node keeps trying; its log says why if it is refused)\n";
      }
    }
  }
  return n_reached > 0 ? kExitOk : kExitUnreachable;
}
}  // namespace

Handler setup_join(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  sub.add_option("PEER", o->peers, "members to contact, HOST:PORT")->required();
  add_common(sub, *o, false);
  sub.footer(
      "join returns once every PEER answered (it shows as an alive member at that address), or "
      "after --timeout: it prints, per address, whether it was reached, and exits 0 if at least "
      "one was, 3 if none was. The node keeps trying the addresses while it is alone; one that "
      "stays silent for 5 s is logged on the node with the likely causes (nothing listens, or a "
      "different cluster key or an allowlist refuses it: the refusing node logs which).");
  return [o] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kJoin);
    wire::Value peers = wire::Value::list();
    for (const std::string& p : o->peers) {
      auto e = parse_flag_address(p, "join");
      if (!e) return kExitUsage;
      peers.push(e->to_string());
    }
    req.args.set("peers", std::move(peers));
    return join_and_wait(*o, req);
  };
}

Handler setup_forget(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  sub.add_option("NODE", o->member, "the member's name (its --id), as peers shows it")->required();
  add_common(sub, *o, false);
  return [o] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kForget);
    req.args.set("name", o->member);
    return call_nodes(*o, req);
  };
}

// `expire KEY DURATION`: the key's live value written again, expiring
// DURATION after this write.
Handler setup_expire(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto duration = std::make_shared<std::string>();
  sub.add_option("KEY", o->key, "the key")->required();
  sub.add_option("DURATION", *duration, "how long the value lives from now: 500ms, 2s, 10m, 1h, 7d")
      ->required();
  add_wait(sub, *o);
  add_common(sub, *o, false);
  sub.footer(
      "expire is a new write of the key's current value (last-writer-wins, as set) that expires "
      "DURATION after its own HLC time; a later set without --ttl makes the key permanent again. "
      "A key this node holds no live value for is not found (exit 1). Only plain values expire.");
  return [o, duration] {
    std::string error;
    auto ms = parse_duration_ms(*duration, &error);
    if (!ms) return refuse(*o, "meshkv expire: " + error, kExitUsage);
    if (int rc = check_write(*o, "expire", o->key, nullptr); rc != kExitOk) return rc;
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kExpire);
    req.args.set("key", o->key);
    req.args.set("ttl_ms", static_cast<int64_t>(*ms));
    consistency_args(*o, req);
    return call_nodes(*o, req);
  };
}

// `ttl KEY`: what is left of the key's time to live.
Handler setup_ttl(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  sub.add_option("KEY", o->key, "the key")->required();
  add_common(sub, *o, true);
  sub.footer(
      "Prints the milliseconds left before the key expires, by the node's hybrid logical clock, "
      "or 'no expiry'; with --json {key, ttl_ms, expires} (null for a key that never expires). "
      "A key the node holds no live value for is not found (exit 1).");
  return [o] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kTtl);
    req.args.set("key", o->key);
    return call_nodes(*o, req);
  };
}

// `incr KEY [N]` and `decr KEY [N]`: one handler, the sign told apart.
Handler setup_counter(CLI::App& sub, bool down) {
  auto o = std::make_shared<ClientOptions>();
  auto by = std::make_shared<int64_t>(1);
  auto repeat = std::make_shared<int64_t>(1);
  sub.add_option("KEY", o->key, "the counter's key")->required();
  sub.add_option("N", *by, down ? "how much to subtract (default 1)" : "how much to add (default 1)")
      ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
  sub.add_option("--repeat", *repeat,
                 "send the same request COUNT times, each a write of its own (load tests); "
                 "prints the last answer, stops at the first refusal")
      ->type_name("COUNT")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  add_wait(sub, *o);
  add_common(sub, *o, false);
  sub.footer(
      "A counter sums the increments made on every node exactly, whatever the loss, duplication, "
      "partitions or restarts: each node writes only its own running totals. Prints the total "
      "this node knows after the write (other nodes' increments in flight are not in it yet). "
      "A key holding a value (set) is refused (exit 2): del it first. 'meshkv get KEY' reads the "
      "total; 'meshkv del KEY' resets it (an increment made concurrently, not seen by the del, "
      "survives it); 'meshkv set KEY VALUE' replaces the counter with a value.");
  return [o, by, repeat, down] {
    if (Status st = crdt::check_counter_key(o->key); !st.ok()) {
      return refuse(*o, std::string(down ? "decr" : "incr") + ": " + st.message(), kExitUsage);
    }
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kIncr);
    req.args.set("key", o->key);
    req.args.set("by", down ? -*by : *by);
    consistency_args(*o, req);
    auto ep = parse_flag_address(o->nodes.back());
    if (!ep) return kExitUsage;
    Result<wire::CtlResponse> r = Status::Invalid("no request sent");
    for (int64_t i = 0; i < *repeat; ++i) {
      r = net::call(*ep, req, answer_timeout(*o, req));
      if (!r.ok() || r->code != wire::kCtlOk) break;
    }
    return print_result(req, r, o->json, detect_style(1), std::cout, std::cerr);
  };
}

Handler setup_incr(CLI::App& sub) { return setup_counter(sub, false); }
Handler setup_decr(CLI::App& sub) { return setup_counter(sub, true); }

// `sadd KEY MEMBER...` and `srem KEY MEMBER...`: one handler, the op told
// apart. With --members-file the members are read one per line ("-":
// stdin) and sent in requests of up to kBatch members; the counts add up.
Handler setup_set_members(CLI::App& sub, bool removing) {
  auto o = std::make_shared<ClientOptions>();
  auto members = std::make_shared<std::vector<std::string>>();
  auto file = std::make_shared<std::string>();
  sub.add_option("KEY", o->key, "the set's key")->required();
  sub.add_option("MEMBER", *members, removing ? "members to remove" : "members to add");
  sub.add_option("--members-file", *file,
                 "read the members from FILE, one per line ('-': standard input), and send them in "
                 "requests of 1000")
      ->type_name("FILE");
  add_wait(sub, *o);
  add_common(sub, *o, false);
  sub.footer(removing
                 ? "Removes the members this node has seen added: an add made concurrently elsewhere, "
                   "not yet seen here, survives (add wins). Prints how many of the members were in the "
                   "set here and are no longer (--json: {key, type, removed}); a member that is not there "
                   "writes nothing. A key holding a value or a counter is refused (exit 2)."
                 : "Adds the members (any bytes, not empty) to the set KEY, creating it. Every add is a "
                   "write, even of a member already there: it survives removes that did not see it. "
                   "Prints how many of the members were not in the set here before (--json: {key, type, "
                   "added}). A key holding a value or a counter is refused (exit 2): del it first, or "
                   "set replaces it.");
  return [o, members, file, removing] {
    const std::string cmd = removing ? "srem" : "sadd";
    std::vector<std::string> all = *members;
    if (!file->empty()) {
      std::ifstream f;
      std::istream* in = &std::cin;
      if (*file != "-") {
        f.open(*file);
        if (!f) return refuse(*o, cmd + ": --members-file: cannot open '" + *file + "'", kExitUsage);
        in = &f;
      }
      for (std::string line; std::getline(*in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
        if (!line.empty()) all.push_back(std::move(line));
      }
    }
    if (all.empty()) return refuse(*o, cmd + ": no members given", kExitUsage);
    if (Status st = crdt::check_set_key(o->key); !st.ok()) return refuse(*o, cmd + ": " + st.message(), kExitUsage);
    for (const auto& m : all) {
      if (Status st = crdt::check_member(m); !st.ok()) return refuse(*o, cmd + ": " + st.message(), kExitUsage);
    }
    auto ep = parse_flag_address(o->nodes.back());
    if (!ep) return kExitUsage;
    constexpr size_t kBatch = 1000;
    wire::CtlRequest req = wire::make_request(removing ? wire::CtlOp::kSrem : wire::CtlOp::kSadd);
    req.args.set("key", o->key);
    consistency_args(*o, req);
    const char* field = removing ? "removed" : "added";
    int64_t changed = 0;
    Result<wire::CtlResponse> r = Status::Invalid("no request sent");
    for (size_t at = 0; at < all.size(); at += kBatch) {
      wire::Value list = wire::Value::list();
      for (size_t i = at; i < std::min(all.size(), at + kBatch); ++i) list.push(all[i]);
      req.args.set("members", std::move(list));
      r = net::call(*ep, req, answer_timeout(*o, req));
      if (!r.ok() || r->code != wire::kCtlOk) break;
      changed += r->body.get(field).as_int();
    }
    if (r.ok() && r->code == wire::kCtlOk) r->body.set(field, changed);
    return print_result(req, r, o->json, detect_style(1), std::cout, std::cerr);
  };
}

Handler setup_sadd(CLI::App& sub) { return setup_set_members(sub, false); }
Handler setup_srem(CLI::App& sub) { return setup_set_members(sub, true); }

Handler setup_smembers(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  sub.add_option("KEY", o->key, "the set's key")->required();
  add_common(sub, *o, true);
  sub.footer(
      "Prints the members this node holds, one per line, sorted by their bytes (--json: {key, type, "
      "members, count, hlc, origin, seq}). A set with no member, or a key never written, is not "
      "found (exit 1); a key holding a value or a counter is refused (exit 2).");
  return [o] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kSmembers);
    req.args.set("key", o->key);
    return call_nodes(*o, req);
  };
}

Handler setup_sismember(CLI::App& sub) {
  auto o = std::make_shared<ClientOptions>();
  auto member = std::make_shared<std::string>();
  sub.add_option("KEY", o->key, "the set's key")->required();
  sub.add_option("MEMBER", *member, "the member")->required();
  add_common(sub, *o, true);
  sub.footer(
      "Prints true or false (--json: {key, member, present}) and exits 0 either way; a missing key "
      "holds no member. A key holding a value or a counter is refused (exit 2).");
  return [o, member] {
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kSismember);
    req.args.set("key", o->key);
    req.args.set("member", *member);
    return call_nodes(*o, req);
  };
}

}  // namespace meshkv::cli
