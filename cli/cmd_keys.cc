// meshkv keys: a running node's cluster keys, changed without a restart.
//
// A rolling rotation from key A to key B over a live mesh:
//   1. `keys install B.key` on every node: B opens, A still seals;
//   2. `keys use B.key` on every node: B seals; nodes not yet switched still
//      open B, since they installed it;
//   3. `keys remove A.key` on every node.
// No write is lost at any step: every node can open what every other sends.
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "config_file.h"
#include "crypto/keys.h"
#include "net/control_client.h"
#include "output.h"

namespace meshkv::cli {

namespace {
struct KeysOptions {
  std::string action = "list", file;
  std::vector<std::string> nodes{"127.0.0.1:7946"};
  unsigned timeout_ms = 3000;
  bool json = false;
};

int run_keys(const KeysOptions& o) {
  wire::CtlRequest req = wire::make_request(wire::CtlOp::kKeys);
  req.args.set("action", o.action);
  if (o.action != "list") {
    if (o.file.empty()) {
      std::cerr << "keys " << o.action << ": KEY_FILE is required\n";
      return kExitUsage;
    }
    auto key = crypto::load_cluster_key(o.file);
    if (!key.ok()) {
      std::cerr << "keys " << o.action << ": " << key.status().message() << "\n";
      return kExitUsage;
    }
    if (o.action == "install") {
      // The key travels only inside the sealed control connection. Without
      // a key of our own the request would go out in clear (a node refuses
      // it only after reading it), handing the new key to anyone watching.
      if (!net::has_client_key()) {
        std::cerr << "keys install: give a cluster key the nodes hold (--key-file FILE or "
                     "MESHKV_KEY_FILE): without one the new key would be sent unencrypted\n";
        return kExitUsage;
      }
      std::string hex(65, '\0');
      sodium_bin2hex(hex.data(), hex.size(), key->key.data(), key->key.size());
      hex.resize(64);
      req.args.set("key", hex);
      sodium_memzero(hex.data(), hex.size());
    } else {
      req.args.set("id", crypto::key_id_hex(key->id));
    }
  } else if (!o.file.empty()) {
    std::cerr << "keys list: takes no KEY_FILE\n";
    return kExitUsage;
  }
  const Style style = detect_style(1);
  int rc = kExitOk;
  for (const std::string& n : o.nodes) {
    auto ep = parse_flag_address(n);
    if (!ep) return kExitUsage;
    auto r = net::call(*ep, req, std::chrono::milliseconds(o.timeout_ms));
    if (o.nodes.size() > 1 && !o.json) std::cout << "== " << n << "\n";
    rc = std::max(rc, print_result(req, r, o.json, style, std::cout, std::cerr));
  }
  return rc;
}
}  // namespace

Handler setup_keys(CLI::App& sub) {
  auto o = std::make_shared<KeysOptions>();
  sub.add_option("ACTION", o->action,
                 "list (default); install KEY_FILE: the key opens datagrams; use KEY_FILE: it "
                 "seals them; remove KEY_FILE: it no longer opens them")
      ->check(CLI::IsMember({"list", "install", "use", "remove"}));
  sub.add_option("KEY_FILE", o->file, "a cluster key file (meshkv keygen --cluster)");
  sub.add_option("--node", o->nodes, "node to change, HOST:PORT (repeatable; default 127.0.0.1:7946, or $MESHKV_NODE)")
      ->type_name("HOST:PORT")
      ->envname("MESHKV_NODE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub.add_option("--timeout", o->timeout_ms, "give up on a node after this long (default 3000)")
      ->type_name("MS");
  sub.add_flag("--json", o->json, "print each node's answer as one line of JSON");
  sub.footer("Rotation without downtime: install the new key on every node, then `use` it on "
             "every node, then remove the old one. Talking to a sealed node needs the current "
             "key too: --key-file or $MESHKV_KEY_FILE.");
  return [o] { return run_keys(*o); };
}

}  // namespace meshkv::cli
