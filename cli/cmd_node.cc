// `meshkv node` (and bare `meshkv`): start a mesh node. Flags override the
// config file; both are checked before anything binds. With a terminal on
// stdin and stdout (in the foreground) the node runs the prompt, otherwise it
// runs headless until SIGINT or SIGTERM; either way it leaves the mesh
// gracefully and exits 0.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <ctime>
#include <iostream>
#include <random>
#include <sstream>
#include <string_view>

#include "commands.h"
#include "config_file.h"
#include "log_format.h"
#include "crypto/keys.h"
#include "net/server.h"
#include "node/control.h"
#include "repl.h"

namespace meshkv::cli {

namespace {

struct NodeOptions {
  std::string config, id, listen, log_level, log_format = "text";
  std::vector<std::string> join;
  size_t mtu = 0;
  uint64_t gossip_ms = 0, probe_ms = 0, probe_timeout_ms = 0, ae_ms = 0;
  double loss = 0;
  std::string data_dir, sync;
  uint64_t sync_interval_ms = 0, tombstone_grace_ms = 0, reap_after_ms = 0;
  int64_t clock_offset_ms = 0;
  uint64_t max_clock_offset_ms = 0;
  bool repair = false;
  bool insecure = false;
  bool no_history = false;
  std::vector<std::string> key_files, allowed_peers;
  std::string identity, metrics;
  // Set when parsed; bare `meshkv` leaves them null, which reads as "not given".
  std::map<std::string, CLI::Option*> given;

  bool has(const std::string& flag) const {
    auto it = given.find(flag);
    return it != given.end() && it->second != nullptr && it->second->count() > 0;
  }
};

// Applies the flags over the file's settings, recording which flag set what.
Status apply_flags(const NodeOptions& o, node::Config& cfg, ConfigSources& src) {
  auto take = [&](const char* flag, const char* field, auto& dst, const auto& v) {
    if (!o.has(flag)) return;
    dst = v;
    src.flag[field] = flag;
  };
  take("--id", "id", cfg.id, o.id);
  take("--mtu", "mtu", cfg.mtu, o.mtu);
  take("--gossip-interval", "gossip_interval_ms", cfg.gossip_interval_ms, o.gossip_ms);
  take("--probe-interval", "probe_interval_ms", cfg.probe_interval_ms, o.probe_ms);
  take("--probe-timeout", "probe_timeout_ms", cfg.probe_timeout_ms, o.probe_timeout_ms);
  take("--anti-entropy-interval", "anti_entropy_interval_ms", cfg.anti_entropy_interval_ms,
       o.ae_ms);
  take("--log-level", "log_level", cfg.log_level, o.log_level);
  take("--loss", "loss", cfg.loss, o.loss);
  take("--data-dir", "data_dir", cfg.data_dir, o.data_dir);
  take("--sync", "sync", cfg.sync, o.sync);
  take("--sync-interval", "sync_interval_ms", cfg.sync_interval_ms, o.sync_interval_ms);
  take("--tombstone-grace", "tombstone_grace_ms", cfg.tombstone_grace_ms, o.tombstone_grace_ms);
  take("--reap-after", "reap_after_ms", cfg.reap_after_ms, std::optional<uint64_t>(o.reap_after_ms));
  take("--clock-offset-ms", "clock_offset_ms", cfg.clock_offset_ms, o.clock_offset_ms);
  take("--max-clock-offset", "max_clock_offset_ms", cfg.max_clock_offset_ms, o.max_clock_offset_ms);
  if (o.repair) cfg.repair = true;
  if (o.insecure) cfg.insecure = true;
  take("--key-file", "key_files", cfg.key_files, o.key_files);
  take("--identity", "identity", cfg.identity, o.identity);
  take("--metrics", "metrics", cfg.metrics, o.metrics);
  take("--allow-peer", "allowed_peers", cfg.allowed_peers, o.allowed_peers);
  if (o.has("--listen")) {
    auto e = parse_address(o.listen);
    if (!e) return Status::Invalid("--listen: expected HOST:PORT with an IP address, got '" + o.listen + "'");
    cfg.listen = *e;
    cfg.listen_explicit = true;
    src.flag["listen"] = "--listen";
  }
  if (o.has("--join")) {
    cfg.join.clear();
    for (const std::string& j : o.join) {
      auto e = parse_address(j);
      if (!e) return Status::Invalid("--join: expected HOST:PORT with an IP address, got '" + j + "'");
      cfg.join.push_back(*e);
    }
  }
  return Status::Ok();
}

Result<node::Config> build_config(const NodeOptions& o) {
  node::Config cfg;
  ConfigSources src;
  if (!o.config.empty()) {
    if (Status s = load_config_file(o.config, cfg, src); !s.ok()) return s;
  }
  if (Status s = apply_flags(o, cfg, src); !s.ok()) return s;
  if (Status s = check_config(cfg, src); !s.ok()) return s;
  // Without a cluster key nothing authenticates or encrypts traffic, so only
  // loopback is safe.
  if (!cfg.listen.is_loopback() && cfg.key_files.empty() && !cfg.insecure) {
    return Status::Invalid("listen " + cfg.listen.to_string() +
                           ": not a loopback address, and no cluster key: anyone who can reach "
                           "it could read and write every key. Give the mesh a key (meshkv "
                           "keygen --cluster, then --key-file FILE), or pass --insecure to "
                           "listen there anyway");
  }
  return cfg;
}

// Reads the key files the configuration names.
Result<node::Security> load_security(const node::Config& cfg) {
  node::Security sec;
  if (Status s = crypto::init(); !s.ok()) return s;
  for (const std::string& f : cfg.key_files) {
    auto k = crypto::load_cluster_key(f);
    if (!k.ok()) return k.status();
    for (const auto& have : sec.keys) {
      if (have.id == k->id) return Status::Invalid(f + ": the same key is given twice");
    }
    sec.keys.push_back(*k);
  }
  if (!cfg.identity.empty()) {
    auto id = crypto::load_identity(cfg.identity);
    if (!id.ok()) return id.status();
    sec.identity = *id;
  }
  for (const std::string& p : cfg.allowed_peers) {
    auto pk = crypto::parse_public(p);
    if (!pk.ok()) return Status::Invalid("allowed_peers: " + pk.status().message());
    sec.allowed_peers.push_back(*pk);
  }
  if (sec.keys.empty() && (!cfg.identity.empty() || !cfg.allowed_peers.empty())) {
    return Status::Invalid("--identity and --allow-peer need a cluster key (--key-file): without "
                           "one nothing is authenticated");
  }
  return sec;
}

node::LogLevel level_of(const std::string& name) {
  if (name == "debug") return node::LogLevel::kDebug;
  if (name == "warn") return node::LogLevel::kWarn;
  if (name == "error") return node::LogLevel::kError;
  return node::LogLevel::kInfo;
}

// The prompt's log lines: text with timestamps, never journald's form (a
// person reads them at a terminal).
LogFormatter log_formatter(node::LogLevel threshold) {
  return [threshold](const node::LogLine& l) {
    return format_log_line(LogStyle{}, threshold, "", l);
  };
}

uint64_t random_nonzero() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t{rd()} << 32) ^ rd();
  return v;
}

void print_banner(std::ostream& out, const net::Server& server, node::Engine& engine) {
  out << "meshkv node " << engine.id() << " (uid " << node::format_uid(engine.uid())
            << ")\n";
  if (server.address().port != server.requested_port()) {
    out << "port " << server.requested_port() << " was taken; listening on "
              << server.address().port << "\n";
  }
  out << "listening on " << server.address().to_string() << " (UDP mesh, TCP control)\n";
  const node::Config& cfg = engine.config();
  if (cfg.data_dir.empty()) {
    out << "in-memory (no data directory)\n";
  } else {
    out << "durable: " << cfg.data_dir << " (sync "
              << (cfg.sync == "always" ? std::string("always")
                                       : "every " + std::to_string(cfg.sync_interval_ms) + " ms")
              << ")\n";
  }
  const wire::Value sec = engine.security();
  if (sec.get("sealed").as_bool()) {
    out << "sealed: cluster key " << sec.get("keys").as_list()[0].get("id").as_string()
              << ", identity " << sec.get("identity").as_string() << "\n";
  } else if (cfg.insecure) {
    out << "INSECURE: no cluster key; anyone who can reach " << server.address().to_string()
              << " can read and write every key\n";
  } else {
    out << "not sealed (no cluster key): listening on loopback only\n";
  }
  const auto& seeds = engine.config().join;
  if (!seeds.empty()) {
    out << "joining";
    for (const Endpoint& e : seeds) out << " " << e.to_string();
    out << "\n";
  }
  out << std::flush;
}

// A node holding a million keys has some 200 MB of heap, and every 4 KiB
// page of it costs a page fault when first touched; on a virtual machine a
// fault is dear (restarting with 1,000,000 keys spent most of its time in
// them). glibc's malloc asks the kernel for transparent huge pages (2 MiB per
// fault) when its tunable glibc.malloc.hugetlb=1 is set, and it reads
// tunables only as the process starts: so a node starts itself once more
// with it set, before it opens anything. Not done when the kernel has
// transparent huge pages off, when the tunable is set already (by us, or by
// the user either way), or with MESHKV_HUGE_PAGES=0.
void start_again_with_huge_pages() {
  if (const char* off = std::getenv("MESHKV_HUGE_PAGES"); off != nullptr && std::string_view(off) == "0") return;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::string_view(tunables).find("glibc.malloc.hugetlb") != std::string_view::npos) {
    return;
  }
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  if (!std::getline(thp, modes) || modes.find("[never]") != std::string::npos) return;
  char** argv = original_argv();
  if (argv == nullptr) return;
  const std::string before = tunables != nullptr ? tunables : "";
  const std::string with = before.empty() ? "glibc.malloc.hugetlb=1" : before + ":glibc.malloc.hugetlb=1";
  std::cout << std::flush;
  std::cerr << std::flush;
  if (::setenv("GLIBC_TUNABLES", with.c_str(), 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // Not possible here (no /proc): go on as started.
  if (tunables != nullptr) {
    ::setenv("GLIBC_TUNABLES", before.c_str(), 1);
  } else {
    ::unsetenv("GLIBC_TUNABLES");
  }
}

int run_node(const NodeOptions& o) {
  const LogStyle style = detect_log_style(o.log_format);
  // With --log-format json every line the node writes is a JSON object, even
  // a start-up error.
  auto fatal = [&](const std::string& why) {
    if (style.json) {
      std::cerr << *format_log_line(style, node::LogLevel::kError, o.id, {node::LogLevel::kError, why}) << "\n";
    } else {
      std::cerr << "meshkv node: " << why << "\n";
    }
    return kExitUsage;
  };
  auto cfg = build_config(o);
  if (!cfg.ok()) return fatal(cfg.status().message());
  start_again_with_huge_pages();
  std::signal(SIGPIPE, SIG_IGN);  // a vanished control client is not fatal
  const node::LogLevel threshold = level_of(cfg->log_level);
  auto sec = load_security(*cfg);
  if (!sec.ok()) return fatal(sec.status().message());
  auto server = net::Server::open(*cfg, random_nonzero(), random_nonzero(), std::move(*sec));
  if (!server.ok()) return fatal(server.status().message());
  net::Server& s = **server;
  const std::string id = s.engine().id();
  std::ostringstream banner;
  print_banner(banner, s, s.engine());
  if (style.json) {
    // The banner's lines become "start" events on stderr, beside the log.
    std::istringstream lines(banner.str());
    for (std::string line; std::getline(lines, line);) {
      std::cerr << *format_log_line(style, node::LogLevel::kDebug, id, {node::LogLevel::kInfo, "start: " + line})
                << "\n";
    }
    std::cerr << std::flush;
  } else {
    std::cout << banner.str() << std::flush;
  }
  // A node started in the background of an interactive shell must not take
  // the terminal (it would be stopped by SIGTTOU/SIGTTIN): it runs headless.
  if (::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1 &&
      ::tcgetpgrp(STDIN_FILENO) == ::getpgrp()) {
    // The prompt filters by level itself: `log LEVEL` changes the threshold.
    return run_repl(s, log_formatter(node::LogLevel::kDebug),
                    {threshold, o.no_history ? std::string() : default_history_file()});
  }
  s.set_log_sink([style, threshold, id](const node::LogLine& l) {
    if (auto text = format_log_line(style, threshold, id, l)) std::cerr << *text << "\n" << std::flush;
  });
  Status st = s.run();
  if (!st.ok()) {
    fatal(st.message());
    return 1;
  }
  return kExitOk;
}

}  // namespace

Handler setup_node(CLI::App& sub) {
  auto o = std::make_shared<NodeOptions>();
  auto& g = o->given;
  sub.add_option("--config", o->config, "read settings from a TOML file (flags override it)")
      ->type_name("FILE");
  g["--id"] = sub.add_option("--id", o->id, "node name (default: HOST-PORT of --listen)")
                  ->type_name("NAME");
  g["--listen"] = sub.add_option("--listen", o->listen,
                                 "UDP mesh and TCP control address (default 127.0.0.1:7946; "
                                 "a taken default port moves to the next free one)")
                      ->type_name("HOST:PORT");
  g["--join"] = sub.add_option("--join", o->join, "contact this member at start (repeatable)")
                    ->type_name("HOST:PORT")
                    ->expected(1)
                    ->allow_extra_args(false)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  g["--mtu"] = sub.add_option("--mtu", o->mtu, "largest datagram, bytes (default 1400)")
                   ->type_name("BYTES");
  g["--gossip-interval"] =
      sub.add_option("--gossip-interval", o->gossip_ms, "membership gossip period (default 200)")
          ->type_name("MS");
  g["--probe-interval"] =
      sub.add_option("--probe-interval", o->probe_ms, "failure-detector probe period (default 500)")
          ->type_name("MS");
  g["--probe-timeout"] =
      sub.add_option("--probe-timeout", o->probe_timeout_ms, "direct probe timeout (default 80)")
          ->type_name("MS");
  g["--anti-entropy-interval"] =
      sub.add_option("--anti-entropy-interval", o->ae_ms, "anti-entropy period (default 1000)")
          ->type_name("MS");
  g["--loss"] = sub.add_option("--loss", o->loss,
                               "drop this share (0..1) of the datagrams this node sends, from "
                               "the start (fault injection for demos and tests; see meshkv loss)")
                    ->type_name("P")
                    ->check(CLI::Range(0.0, 1.0));
  g["--data-dir"] = sub.add_option("--data-dir", o->data_dir,
                                   "keep state in DIR (write-ahead log and snapshots): it survives "
                                   "crashes; default: in-memory")
                        ->type_name("DIR");
  g["--sync"] = sub.add_option("--sync", o->sync,
                               "always (default): a write is on disk before it is acknowledged; "
                               "interval: synced every --sync-interval ms, faster, may lose the "
                               "last interval's writes in a crash")
                    ->check(CLI::IsMember({"always", "interval"}));
  g["--sync-interval"] = sub.add_option("--sync-interval", o->sync_interval_ms,
                                        "sync period for --sync interval (default 50)")
                             ->type_name("MS");
  g["--tombstone-grace"] =
      sub.add_option("--tombstone-grace", o->tombstone_grace_ms,
                     "drop a delete's tombstone this long after the delete once every member has "
                     "it (default 86400000, one day; at least 2000); a member away longer than "
                     "this reconciles with the others when it returns (see `meshkv quarantine`)")
          ->type_name("MS");
  g["--reap-after"] =
      sub.add_option("--reap-after", o->reap_after_ms,
                     "remove a member dead (or left) for this long from the member table: it no "
                     "longer counts toward the majority nor holds back tombstone collection "
                     "(default: the greater of 86400000, one day, and --tombstone-grace; never "
                     "below --tombstone-grace)")
          ->type_name("MS");
  sub.add_flag("--repair", o->repair,
               "start even if the log or the snapshot is damaged, or the snapshot the log "
               "continues is missing: keep what verifies, warn of what is dropped (with the "
               "snapshot's version vector), and recover the rest from peers");
  g["--log-level"] = sub.add_option("--log-level", o->log_level, "debug, info, warn or error")
                         ->type_name("LEVEL")
                         ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  sub.add_option("--log-format", o->log_format,
                 "text (default): timestamp, level, message, without timestamps under journald; "
                 "json: one object per line with time, level, event, message and node")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  sub.add_flag("--no-history", o->no_history,
               "at the prompt, neither read nor write the history file "
               "($MESHKV_HISTORY, else ~/.meshkv_history)");
  sub.add_flag("--insecure", o->insecure,
               "allow a non-loopback --listen without a cluster key, although traffic is then "
               "neither authenticated nor encrypted (said in the log and in status)");
  g["--key-file"] = sub.add_option("--key-file", o->key_files,
                                   "seal the mesh with the cluster key in FILE (meshkv keygen "
                                   "--cluster); repeat for rotation: the first seals, all open")
                        ->type_name("FILE");
  g["--identity"] = sub.add_option("--identity", o->identity,
                                   "this node's identity key pair (meshkv keygen); default: a "
                                   "new one for each start")
                        ->type_name("FILE");
  g["--metrics"] = sub.add_option("--metrics", o->metrics,
                                  "serve Prometheus metrics at http://HOST:PORT/metrics "
                                  "(counters and gauges; no keys or values)")
                       ->type_name("HOST:PORT");
  g["--allow-peer"] = sub.add_option("--allow-peer", o->allowed_peers,
                                     "accept only members with this public key (mkpub:...); "
                                     "repeatable; default: any holder of the cluster key")
                          ->type_name("PUBKEY");
  g["--max-clock-offset"] =
      sub.add_option("--max-clock-offset", o->max_clock_offset_ms,
                     "refuse local writes (exit 3) while this node's wall clock is further than MS "
                     "from more than half of its peers (at least two with a measured offset); "
                     "0 turns the guard off (default 500)")
          ->type_name("MS");
  g["--clock-offset-ms"] =
      sub.add_option("--clock-offset-ms", o->clock_offset_ms,
                     "for testing: add MS (may be negative) to the wall clock this node uses "
                     "for its hybrid logical clock, as if its clock were skewed (default 0)")
          ->type_name("MS");
  return [o] { return run_node(*o); };
}

}  // namespace meshkv::cli
