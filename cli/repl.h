// The interactive prompt of `meshkv node`: libedit (readline compatible) in
// callback mode, driven from the server's loop, so commands run on the loop
// thread like everything else that touches the engine.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/server.h"

namespace meshkv::cli {

// Splits a command line as a POSIX shell would: whitespace separates words;
// 'single quotes' keep everything; "double quotes" keep everything except
// that \" and \\ are escapes; outside quotes a backslash escapes any byte.
// Adjacent parts join ("a"'b'c is one word). Returns nullopt and sets
// `error` for an unterminated quote or a trailing backslash.
std::optional<std::vector<std::string>> tokenize(std::string_view line, std::string* error);

// Formats a log line for the terminal, or nullopt when it is filtered out.
using LogFormatter = std::function<std::optional<std::string>(const node::LogLine&)>;

// Runs the prompt until `quit`, end of input or a signal, leaving the mesh
// gracefully, and returns the process exit code. Log lines are printed above
// the line being typed without disturbing it.
// REQUIRES: stdin is a terminal; `server` has not run yet.
int run_repl(net::Server& server, LogFormatter format_log);

}  // namespace meshkv::cli
