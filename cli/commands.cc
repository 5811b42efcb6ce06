#include "commands.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <map>
#include <cctype>

#include "crypto/keys.h"
#include "net/control_client.h"

namespace meshkv::cli {

namespace {

// Edit distance, for "did you mean".
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = distance(word, c);
    // A prefix counts as close: "stat" means "status".
    const size_t score = c.starts_with(word) && word.size() >= 2 ? 1 : d;
    if (score < best_d) best_d = score, best = c;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

namespace {

// What CLI11 says, in the words this tool uses elsewhere: ranges as "0 to 1",
// not "0.000000 to 1.000000".
std::string tidy(const std::string& m) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    // A '.' after a digit, then only zeros up to a non-digit: dropped.
    if (m[i] == '.' && i > 0 && std::isdigit(static_cast<unsigned char>(m[i - 1]))) {
      size_t j = i + 1;
      while (j < m.size() && m[j] == '0') ++j;
      if (j > i + 1 && (j == m.size() || !std::isdigit(static_cast<unsigned char>(m[j])))) {
        i = j - 1;
        continue;
      }
    }
    out += m[i];
  }
  return out;
}

// The options of `sub` by name ("--node", "-h"), and whether each takes a value.
std::map<std::string, bool> option_names(const CLI::App& sub) {
  std::map<std::string, bool> names;
  for (const CLI::Option* o : sub.get_options()) {
    if (o->get_positional()) continue;
    const bool takes = o->get_expected_min() > 0;
    for (const auto& l : o->get_lnames()) names["--" + l] = takes;
    for (const auto& s : o->get_snames()) names["-" + s] = takes;
  }
  return names;
}

// How many positionals `sub` takes (SIZE_MAX: no bound).
size_t positional_slots(const CLI::App& sub) {
  size_t n = 0;
  for (const CLI::Option* o : sub.get_options()) {
    if (!o->get_positional()) continue;
    const int max = o->get_items_expected_max();
    if (max <= 0 || max >= CLI::detail::expected_max_vector_size) return SIZE_MAX;
    n += static_cast<size_t>(max);
  }
  return n;
}

// Rewrites the arguments after subcommand `sub` so that values may start
// with '-': options (known by name, with their values) first, then "--",
// then the positionals. A word that starts with one '-' and is no option of
// `sub` ("-x", "-5") is a positional; "--" makes the next ones positionals,
// as many as `sub` takes, and options may follow them ("set -- -k v --node
// A"). An unknown "--word" is an error, with a suggestion and a hint.
// Returns false after printing the error.
bool arrange(const CLI::App& sub, std::vector<std::string>& args) {
  const auto names = option_names(sub);
  const size_t slots = positional_slots(sub);
  std::vector<std::string> opts, pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      size_t left = slots == SIZE_MAX ? SIZE_MAX : (slots > pos.size() ? slots - pos.size() : 0);
      for (++i; i < args.size() && left > 0; ++i, --left) pos.push_back(args[i]);
      --i;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      const std::string name = a.substr(0, a.find('='));
      auto it = names.find(name);
      if (it != names.end()) {
        opts.push_back(a);
        if (it->second && name == a && i + 1 < args.size()) opts.push_back(args[++i]);  // its value
        continue;
      }
      if (a[1] == '-') {
        std::vector<std::string> known;
        for (const auto& [n, takes] : names) known.push_back(n);
        std::cerr << "meshkv " << sub.get_name() << ": unknown option '" << name << "'"
                  << did_you_mean(name, known) << "\n";
        if (slots > 0) {
          std::cerr << "A value that starts with '-' goes after '--': meshkv " << sub.get_name()
                    << " [OPTIONS] -- " << name << "\n";
        }
        std::cerr << "Run 'meshkv help " << sub.get_name() << "' for its usage.\n";
        return false;
      }
    }
    pos.push_back(a);
  }
  if (pos.size() > slots) {
    std::string usage;
    for (const CLI::Option* o : sub.get_options()) {
      if (o->get_positional()) usage += " " + o->get_name();
    }
    std::cerr << "meshkv " << sub.get_name() << ": unexpected argument '" << pos[slots] << "' (usage: meshkv "
              << sub.get_name() << " [OPTIONS]" << usage << ")\n"
              << "Run 'meshkv help " << sub.get_name() << "' for its usage.\n";
    return false;
  }
  args = std::move(opts);
  if (!pos.empty()) {
    args.emplace_back("--");
    args.insert(args.end(), pos.begin(), pos.end());
  }
  return true;
}

}  // namespace

namespace {
char** g_argv = nullptr;
}  // namespace

char** original_argv() { return g_argv; }

int run(int argc, char** argv) {
  g_argv = argv;
  CLI::App app{"meshkv: a replicated key-value mesh over UDP, and its operator tool.\n"
               "Run with no subcommand to start a node with an interactive prompt."};
  // Named, not taken from argv[0] (parse() gets the arguments alone), so that
  // every usage line reads "Usage: meshkv ..." as the man page's synopsis.
  app.name("meshkv");
  app.set_version_flag("--version", "meshkv 0.1.0");
  app.require_subcommand(0, 1);
  std::vector<std::pair<CLI::App*, Handler>> handlers;
  // Every command that talks to a node presents the cluster key of a sealed
  // mesh, by path (a key on the command line would show in ps).
  // One string per subcommand: CLI11 reads the environment for each.
  std::map<CLI::App*, std::string> key_files;
  std::vector<std::string> names;
  for (const Command& c : commands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    names.emplace_back(c.name);
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
             "Run 'meshkv help COMMAND' for a command's usage; see meshkv(1) for details.");

  auto find_sub = [&](const std::string& name) -> CLI::App* {
    for (auto& [sub, h] : handlers) {
      if (sub->get_name() == name) return sub;
    }
    return nullptr;
  };
  std::vector<std::string> args(argv + 1, argv + argc);
  // `meshkv help [COMMAND]`.
  if (!args.empty() && args[0] == "help") {
    if (args.size() == 1) {
      std::cout << app.help();
      return kExitOk;
    }
    if (auto* sub = find_sub(args[1])) {
      std::cout << sub->help();
      return kExitOk;
    }
    std::cerr << "meshkv help: unknown command '" << args[1] << "'" << did_you_mean(args[1], names) << "\n";
    return kExitUsage;
  }
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    CLI::App* sub = find_sub(args[0]);
    if (sub == nullptr) {
      std::cerr << "meshkv: unknown command '" << args[0] << "'" << did_you_mean(args[0], names)
                << "\nRun 'meshkv help' for the commands.\n";
      return kExitUsage;
    }
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (!arrange(*sub, rest)) return kExitUsage;
    args.resize(1);
    args.insert(args.end(), rest.begin(), rest.end());
  }
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const CLI::App* sub = nullptr;
    for (auto& [s, h] : handlers) {
      if (s->parsed()) sub = s;
    }
    const std::string where = sub ? "meshkv " + sub->get_name() : "meshkv";
    std::cerr << where << ": " << tidy(e.what()) << "\n"
              << "Run '" << (sub ? "meshkv help " + sub->get_name() : std::string("meshkv help"))
              << "' for usage.\n";
    return kExitUsage;
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
