// The subcommand table: each subcommand registers its options on a CLI11
// sub-app and returns a handler that runs after parsing. One file per
// subcommand (cmd_*.cc); this header is all they share.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/control_ops.h"

namespace CLI {
class App;
}

namespace meshkv::cli {

// Exit codes (also in the man page): 0 success, 1 negative answer, 2 usage or
// config error, 3 node unreachable or refused. A node's answer exits with its
// response code, so the two share their numbers.
inline constexpr int kExitOk = wire::kCtlOk;
inline constexpr int kExitNegative = wire::kCtlNotFound;
inline constexpr int kExitUsage = wire::kCtlBadRequest;
inline constexpr int kExitUnreachable = wire::kCtlUnavailable;

using Handler = std::function<int()>;

struct Command {
  const char* name;
  const char* help;  // one line, shown by `meshkv --help`
  Handler (*setup)(CLI::App& sub);
  bool talks_to_nodes = true;  // gets --key-file for sealed meshes
};

const std::vector<Command>& commands();
int run(int argc, char** argv);
// The arguments the process was started with (a node starts itself again
// with them: cmd_node.cc, huge pages).
char** original_argv();

// " (did you mean 'status'?)" for a mistyped `word`, or "" when no candidate
// is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// "a,b,,c" -> {"a", "b", "c"}: the parts of a comma-separated list, empty ones dropped.
std::vector<std::string> split_commas(const std::string& s);

// A time to live as `set --ttl`, `expire` and the prompt take it: a positive
// whole number with a unit, ms, s, m, h or d ("500ms", "2s", "1h"), up to
// crdt::kMaxTtlMs. Milliseconds, or a message saying what is wrong.
std::optional<uint64_t> parse_duration_ms(std::string_view text, std::string* error);

}  // namespace meshkv::cli
