#include "repl.h"

#include <poll.h>
#include <unistd.h>

// clang-format off
#include <cstdio>
#include <editline/readline.h>
// clang-format on

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string_view>

#include "config_file.h"
#include "output.h"

namespace meshkv::cli {

namespace {

using wire::CtlOp;

// The prompt's commands: most are control ops, typed by their names.
struct CommandHelp {
  std::string_view name;
  const char* usage;
  const char* help;
};
constexpr CommandHelp kCommands[] = {
    {wire::op_name(CtlOp::kSet), "set KEY VALUE", "write a key (quote a value with spaces: set k \"a b\")"},
    {wire::op_name(CtlOp::kGet), "get KEY", "read a key"},
    {wire::op_name(CtlOp::kDel), "del KEY", "delete a key"},
    {wire::op_name(CtlOp::kList), "list [PREFIX]", "list live keys, optionally only those under PREFIX"},
    {wire::op_name(CtlOp::kStatus), "status", "this node: members, counters, version vector"},
    {wire::op_name(CtlOp::kPeers), "peers", "members with state, round-trip time and last contact"},
    {wire::op_name(CtlOp::kClock), "clock", "this node's version vector and hybrid logical clock"},
    {wire::op_name(CtlOp::kJoin), "join PEER...", "contact peers (HOST:PORT) and merge memberships"},
    {wire::op_name(CtlOp::kLoss),
     "loss [clear] [drop P] [dup P] [corrupt P] [delay MS[:J]] [peer ID] [partition ID,..]",
     "show, set or clear injected faults (see meshkv loss --help)"},
    {"help", "help", "show this list"},
    {"quit", "quit", "leave the mesh gracefully and exit (also Ctrl-D)"},
};

// libedit calls back through plain function pointers, so the prompt's state
// is reachable from one pointer, set only while run_repl() runs.
struct Repl {
  net::Server* server = nullptr;
  LogFormatter format_log;
  Style style;
  bool installed = false;  // the line handler is active (terminal in edit mode)
  bool quitting = false;
  bool line_done = false;  // a line was handled since the last read
  std::string prompt;
  uint64_t next_req = 1;
};
Repl* g_repl = nullptr;

// Prints `text` above the prompt. The visible line is cleared first and
// redrawn afterwards from libedit's own buffer, so the partly typed line and
// the cursor position survive unchanged.
void print_above(const std::string& text) {
  if (g_repl == nullptr || !g_repl->installed) {
    std::fprintf(stderr, "%s\n", text.c_str());
    return;
  }
  std::fputs("\r\033[K", stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
  rl_forced_update_display();
}

void print_help() {
  size_t w = 0;
  for (const auto& c : kCommands) w = std::max(w, std::strlen(c.usage));
  for (const auto& c : kCommands) {
    std::cout << "  " << c.usage << std::string(w - std::strlen(c.usage) + 2, ' ') << c.help
              << "\n";
  }
}

// `loss [clear] [NAME VALUE]...` into the arguments of `req`; false after
// printing what is wrong.
bool loss_request(const std::vector<std::string>& w, wire::CtlRequest& req) {
  const size_t n = w.size() - 1;
  size_t i = 1;
  if (i <= n && w[i] == "clear") {
    req.args.set("clear", true);
    ++i;
  }
  if ((n + 1 - i) % 2 != 0) {
    std::cerr << "usage: loss [clear] [drop P] [dup P] [corrupt P] [delay MS[:J]] [direction D] [peer ID] "
                 "[partition ID,...]\n";
    return false;
  }
  for (; i + 1 <= n; i += 2) {
    if (std::string err = loss_arg(req.args, w[i], w[i + 1]); !err.empty()) {
      std::cerr << "loss: " << err << "\n";
      return false;
    }
  }
  return true;
}

// `join PEER...` into the arguments of `req`; false after printing what is
// wrong.
bool join_request(const std::vector<std::string>& w, wire::CtlRequest& req) {
  if (w.size() == 1) {
    std::cerr << "usage: join PEER...   (PEER is HOST:PORT)\n";
    return false;
  }
  wire::Value peers = wire::Value::list();
  for (size_t i = 1; i < w.size(); ++i) {
    auto e = parse_address(w[i]);
    if (!e) {
      std::cerr << "join: not an address: '" << w[i] << "' (want HOST:PORT)\n";
      return false;
    }
    peers.push(e->to_string());
  }
  req.args.set("peers", std::move(peers));
  return true;
}

// A control request from the words of a command, or nullopt after printing
// what is wrong with them.
std::optional<wire::CtlRequest> build_request(const std::vector<std::string>& w) {
  const size_t n = w.size() - 1;
  auto usage = [&](const char* u) -> std::optional<wire::CtlRequest> {
    std::cerr << "usage: " << u << "\n";
    return std::nullopt;
  };
  auto unknown = [&]() -> std::optional<wire::CtlRequest> {
    std::cerr << "unknown command '" << w[0] << "'; type help for the list\n";
    return std::nullopt;
  };
  const std::optional<CtlOp> op = wire::find_op(w[0]);
  if (!op) return unknown();
  wire::CtlRequest req = wire::make_request(*op);
  switch (*op) {
    case CtlOp::kSet:
      if (n != 2) return usage("set KEY VALUE   (quote a value with spaces)");
      req.args.set("key", w[1]);
      req.args.set("value", w[2]);
      break;
    case CtlOp::kGet:
    case CtlOp::kDel:
      if (n != 1) return usage(*op == CtlOp::kGet ? "get KEY" : "del KEY");
      req.args.set("key", w[1]);
      break;
    case CtlOp::kList:
      if (n > 1) return usage("list [PREFIX]");
      if (n == 1) req.args.set("prefix", w[1]);
      break;
    case CtlOp::kStatus:
    case CtlOp::kPeers:
    case CtlOp::kClock:
      if (n != 0) return usage(w[0].c_str());
      break;
    case CtlOp::kLoss:
      if (!loss_request(w, req)) return std::nullopt;
      break;
    case CtlOp::kJoin:
      if (!join_request(w, req)) return std::nullopt;
      break;
    default:  // ops for tools, not for the prompt
      return unknown();
  }
  req.req_id = g_repl->next_req++;
  return req;
}

void execute(const std::vector<std::string>& words) {
  const std::string& op = words[0];
  if (op == "help" || op == "?") {
    print_help();
  } else if (op == "quit" || op == "exit") {
    g_repl->quitting = true;
  } else if (auto req = build_request(words)) {
    Result<wire::CtlResponse> r = g_repl->server->control(*req);
    print_result(*req, r, false, g_repl->style, std::cout, std::cerr);
  }
  std::cout.flush();
  std::cerr.flush();
}

// libedit's line handler. `line` is malloc'd and ours; null means end of input.
void on_line(char* line) {
  g_repl->line_done = true;
  if (line == nullptr) {
    std::cout << "\n";
    g_repl->quitting = true;
    return;
  }
  std::string error;
  auto words = tokenize(line, &error);
  if (!words) {
    std::cerr << error << "\n";
  } else if (!words->empty()) {
    add_history(line);
    execute(*words);
  }
  std::free(line);
}

char* command_generator(const char* text, int state) {
  static size_t next = 0;
  if (state == 0) next = 0;
  while (next < std::size(kCommands)) {
    const std::string_view name = kCommands[next++].name;
    if (name.starts_with(text)) return strndup(name.data(), name.size());
  }
  return nullptr;
}

// Completes command names in the first word only.
char** complete(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;
  if (start != 0) return nullptr;
  return rl_completion_matches(text, command_generator);
}

void remove_handler() {
  if (!g_repl->installed) return;
  rl_callback_handler_remove();
  g_repl->installed = false;
}

// Called when stdin is readable; false stops watching it.
bool on_input() {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  const bool hung_up = ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
  if (!hung_up) rl_callback_read_char();
  // libedit re-enters edit mode after the line handler returns, so the
  // handler is removed here rather than inside it.
  if (hung_up || g_repl->quitting) {
    remove_handler();
    g_repl->server->stop();
    return false;
  }
  // libedit leaves edit mode to call the line handler and would only return
  // to it at the next keystroke (echoed by the terminal meanwhile, without a
  // prompt). Installing the handler again re-enters it and draws the prompt.
  if (g_repl->line_done) {
    g_repl->line_done = false;
    rl_callback_handler_install(g_repl->prompt.c_str(), on_line);
  }
  return true;
}

}  // namespace

std::optional<std::vector<std::string>> tokenize(std::string_view line, std::string* error) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0; else cur += c;
    } else if (quote == '"') {
      if (c == '"') {
        quote = 0;
      } else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
        cur += line[++i];
      } else {
        cur += c;
      }
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 == line.size()) {
        *error = "trailing backslash";
        return std::nullopt;
      }
      cur += line[++i];
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote != 0) {
    *error = std::string("unterminated ") + (quote == '"' ? "double" : "single") + " quote";
    return std::nullopt;
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

int run_repl(net::Server& server, LogFormatter format_log) {
  Repl repl;
  repl.server = &server;
  repl.format_log = std::move(format_log);
  repl.style = detect_style(STDOUT_FILENO);
  g_repl = &repl;
  server.set_log_sink([&repl](const node::LogLine& l) {
    if (auto text = repl.format_log(l)) print_above(*text);
  });

  rl_catch_signals = 0;  // SIGINT/SIGTERM belong to the server: a graceful leave
  rl_readline_name = const_cast<char*>("meshkv");
  rl_attempted_completion_function = complete;
  using_history();
  stifle_history(1000);
  repl.prompt = "meshkv " + server.engine().id() + "> ";
  std::cout << "type help for commands, quit or Ctrl-D to leave\n" << std::flush;
  rl_callback_handler_install(repl.prompt.c_str(), on_line);
  repl.installed = true;

  if (Status w = server.watch_readable(STDIN_FILENO, on_input); !w.ok()) {
    remove_handler();
    g_repl = nullptr;
    std::cerr << "meshkv: " << w.message() << "\n";
    return 1;
  }
  Status s = server.run();
  if (repl.installed) {  // stopped by a signal: give the terminal back
    remove_handler();
    std::cout << "\n";
  }
  server.set_log_sink(nullptr);
  g_repl = nullptr;
  if (!s.ok()) {
    std::cerr << "meshkv: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace meshkv::cli
