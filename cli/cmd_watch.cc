// meshkv watch: stream the changes a node applies, local and replicated, one
// line each (JSON lines with --json), until interrupted.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "config_file.h"
#include "net/control_client.h"
#include "output.h"

namespace meshkv::cli {

Handler setup_watch(CLI::App& sub) {
  struct Options {
    std::string node = "127.0.0.1:7946", prefix;
    unsigned timeout_ms = 3000;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub.footer("Each line: time (UTC), set or del, key, value, the member that wrote it and its\n"
             "HLC. Runs until interrupted; exits 3 if the node goes away.");
  sub.add_option("--node", o->node, "node to watch, HOST:PORT (default 127.0.0.1:7946, or $MESHKV_NODE)")
      ->type_name("HOST:PORT")
      ->envname("MESHKV_NODE");
  sub.add_option("--prefix", o->prefix, "only keys starting with this");
  sub.add_option("--timeout", o->timeout_ms, "give up connecting after this long (default 3000)")
      ->type_name("MS");
  sub.add_flag("--json", o->json, "one JSON object per line");
  return [o] {
    auto ep = parse_flag_address(o->node);
    if (!ep) return kExitUsage;
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kWatch);
    req.args.set("prefix", o->prefix);
    const Style style = detect_style(1);
    int rc = kExitOk;
    bool first = true;
    Status s = net::stream(*ep, req, std::chrono::milliseconds(o->timeout_ms),
                           [&](const wire::CtlResponse& r) {
                             if (r.code != wire::kCtlOk) {
                               std::cerr << r.error << "\n";
                               rc = exit_code(r.code);
                               return false;
                             }
                             if (first) {  // the node's acknowledgement, not a change
                               first = false;
                               return true;
                             }
                             std::cout << (o->json ? r.body.to_json() + "\n" : render_change(r.body, style));
                             std::cout.flush();
                             return true;
                           });
    if (!s.ok()) {
      std::cerr << s.message() << "\n";
      return kExitUnreachable;
    }
    return rc;
  };
}

}  // namespace meshkv::cli
