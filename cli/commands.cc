#include "commands.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>

#include "crypto/keys.h"
#include "net/control_client.h"

namespace meshkv::cli {

int run(int argc, char** argv) {
  CLI::App app{"meshkv: a replicated key-value mesh over UDP, and its operator tool.\n"
               "Run with no subcommand to start a node with an interactive prompt."};
  app.set_version_flag("--version", "meshkv 0.1.0");
  app.require_subcommand(0, 1);
  std::vector<std::pair<CLI::App*, Handler>> handlers;
  // Every command that talks to a node presents the cluster key of a sealed
  // mesh, by path (a key on the command line would show in ps).
  // One string per subcommand: CLI11 reads the environment for each.
  std::map<CLI::App*, std::string> key_files;
  for (const Command& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    handlers.emplace_back(sub, c.setup(*sub));
    if (c.talks_to_nodes) {
      sub->add_option("--key-file", key_files[sub],
                      "the cluster key of a sealed mesh (default $MESHKV_KEY_FILE)")
          ->type_name("FILE")
          ->envname("MESHKV_KEY_FILE");
    }
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
  std::string key_file;
  for (auto& [sub, file] : key_files) {
    if (sub->parsed()) key_file = file;
  }
  if (!key_file.empty()) {
    auto key = crypto::load_cluster_key(key_file);
    if (!key.ok()) {
      std::cerr << "meshkv: " << key.status().message() << "\n";
      return kExitUsage;
    }
    net::set_client_key(*key);
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
