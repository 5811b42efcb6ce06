#include "commands.h"

#include <CLI/CLI.hpp>
#include <iostream>

namespace meshkv::cli {

int run(int argc, char** argv) {
  CLI::App app{"meshkv: a replicated key-value mesh over UDP, and its operator tool.\n"
               "Run with no subcommand to start a node with an interactive prompt."};
  app.set_version_flag("--version", "meshkv 0.1.0");
  app.require_subcommand(0, 1);
  std::vector<std::pair<CLI::App*, Handler>> handlers;
  for (const Command& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    handlers.emplace_back(sub, c.setup(*sub));
  }
  app.footer("Exit codes: 0 ok, 1 negative answer (missing key, differences), "
             "2 usage or config error, 3 node unreachable or refused.\n"
             "See meshkv(1) for details.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  for (auto& [sub, h] : handlers) {
    if (sub->parsed()) return h();
  }
  // Bare `meshkv` is `meshkv node` with every default.
  for (auto& [sub, h] : handlers) {
    if (sub->get_name() == "node") return h();
  }
  std::cout << app.help();
  return kExitOk;
}

}  // namespace meshkv::cli
