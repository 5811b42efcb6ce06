// The interactive prompt of `meshkv node`: a LineEditor (libedit) fed from
// the server's loop, so commands run on the loop thread like everything else
// that touches the engine, and nothing typed or pasted ever blocks the loop.
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

struct ReplOptions {
  // The lowest level of log line printed at the prompt; `log LEVEL` changes it.
  node::LogLevel log_level = node::LogLevel::kInfo;
  // Where history is kept between runs; "" keeps it for this run only.
  std::string history_file;
};

// $MESHKV_HISTORY when set (empty: none), else $HOME/.meshkv_history, or ""
// without $HOME.
std::string default_history_file();

// Runs the prompt until `quit`, Ctrl-D, end of input or a signal (SIGINT,
// SIGTERM from elsewhere; Ctrl-C at the prompt only cancels the line),
// leaving the mesh gracefully, and returns the process exit code. Log lines
// at or above opts.log_level are printed above the line being typed without
// disturbing it.
// REQUIRES: stdin and stdout are terminals; `server` has not run yet.
int run_repl(net::Server& server, LogFormatter format_log, ReplOptions opts);

}  // namespace meshkv::cli
