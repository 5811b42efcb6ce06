#include "repl.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string_view>
#include <memory>

#include "commands.h"
#include "config_file.h"
#include "crdt/entry.h"
#include "line_editor.h"
#include "node/consistency.h"
#include "output.h"

namespace meshkv::cli {

namespace {

using wire::CtlOp;

// A line may carry a whole value (1 MiB) with its key, quotes and escapes;
// a longer one is refused before it is run.
constexpr size_t kMaxLineBytes = crdt::kMaxValueBytes + 64 * 1024;

// One prompt command. `help` lists synopsis and summary, each line within 80
// columns; `help NAME` prints the usage (wrapped), the summary and the
// example. A summary names the command's alias, if it has one.
struct CommandHelp {
  const char* name;
  const char* alias;     // another name for it, or nullptr
  const char* synopsis;  // at most 20 columns
  const char* summary;   // at most 55 columns
  const char* usage;     // in full, when the synopsis abridges it; else nullptr
  const char* example;
};
constexpr CommandHelp kCommands[] = {
    {"set", nullptr, "set KEY VALUE", "write a key (quote a value with spaces)",
     "set KEY VALUE [--ttl DURATION] [--wait N|quorum|all] [--timeout MS]   (--ttl: the value "
     "expires DURATION (500ms, 2s, 10m, 1h, 7d) after the write; --wait: answer once that many "
     "members have the write, this node included, or after MS ms (default 3000) say which had "
     "not; a durability wait, not a transaction: the write is never undone)",
     "set greeting \"hello world\" --wait quorum"},
    {"get", nullptr, "get KEY", "read a key",
     "get KEY [--read quorum|all] [--timeout MS]   (--read: ask the members, answer the newest "
     "entry and send it to those that were behind)",
     "get greeting --read quorum"},
    {"del", "delete", "del [--force] KEY", "delete a key (also: delete)",
     "del [--force] KEY [--wait N|quorum|all] [--timeout MS]   (a key with no value here is not "
     "found, nothing is written; --force writes the tombstone anyway; --wait as for set)",
     "del greeting"},
    {"expire", nullptr, "expire KEY DURATION", "make a key's value expire after DURATION (2s, 1h)",
     "expire KEY DURATION [--wait N|quorum|all] [--timeout MS]   (a new write of the value that "
     "expires DURATION after itself; an absent key is not found)",
     "expire session 10m"},
    {"ttl", nullptr, "ttl KEY", "the time a key has left before it expires", nullptr, "ttl session"},
    {"incr", nullptr, "incr KEY [N]", "add N (default 1) to a counter; prints its total",
     "incr KEY [N] [--wait N|quorum|all] [--timeout MS]   (increments on every node sum "
     "exactly; get KEY reads the total; del KEY resets it, but an increment it did not see "
     "survives; a key holding a value is refused)",
     "incr hits 5"},
    {"decr", nullptr, "decr KEY [N]", "subtract N (default 1) from a counter",
     "decr KEY [N] [--wait N|quorum|all] [--timeout MS]   (as incr)", "decr hits"},
    {"sadd", nullptr, "sadd KEY MEMBER...", "add members to a set; prints how many were new",
     "sadd KEY MEMBER... [--wait N|quorum|all] [--timeout MS]   (add wins: a remove takes only the "
     "adds it has seen, so an add made concurrently elsewhere survives; a key holding a value or "
     "counter is refused)",
     "sadd team alice bob"},
    {"srem", nullptr, "srem KEY MEMBER...", "remove members from a set; prints how many were there",
     "srem KEY MEMBER... [--wait N|quorum|all] [--timeout MS]   (removes the adds this node has "
     "seen; del KEY removes every member)",
     "srem team bob"},
    {"smembers", nullptr, "smembers KEY", "the members of a set, one per line", nullptr, "smembers team"},
    {"sismember", nullptr, "sismember KEY MEMBER", "whether a member is in a set: true or false", nullptr,
     "sismember team alice"},
    {"list", nullptr, "list [PREFIX]", "list live keys, optionally only those under PREFIX",
     "list [PREFIX] [--read quorum|all] [--timeout MS]   (--read: first catch up with that many "
     "members)",
     "list app/"},
    {"status", nullptr, "status", "this node: members, counters, version vector", nullptr,
     "status"},
    {"peers", nullptr, "peers [STATE]", "members (this node first), state, RTT, last contact",
     "peers [alive|suspect|dead|left]", "peers suspect"},
    {"clock", nullptr, "clock", "this node's version vector and hybrid logical clock", nullptr,
     "clock"},
    {"join", nullptr, "join PEER...", "contact peers (HOST:PORT) and merge memberships", nullptr,
     "join 127.0.0.1:7002"},
    {"forget", nullptr, "forget NODE", "remove a dead member now, here and on every node",
     nullptr, "forget c"},
    {"loss", nullptr, "loss [NAME VALUE]...", "show, set or clear injected faults",
     "loss [clear] [drop P] [dup P] [corrupt P] [delay MS[:J]] [direction D] [peer ID] "
     "[partition ID,...]",
     "loss drop 0.3 peer b"},
    {"quarantine", nullptr, "quarantine [ACTION]", "writes kept aside by tombstone collection",
     "quarantine [list [PREFIX] | apply KEY | drop KEY | drop --all]", "quarantine apply greeting"},
    {"log", nullptr, "log [LEVEL]", "show or set the lowest log level shown here",
     "log [debug|info|warn|error]", "log warn"},
    {"help", "?", "help [COMMAND]", "this list, or a command's usage and an example", nullptr,
     "help set"},
    {"quit", "exit", "quit", "leave the mesh gracefully and exit (also: exit, Ctrl-D)", nullptr,
     "quit"},
};
constexpr const char* kLevels[] = {"debug", "info", "warn", "error"};

// The prompt's state, reachable from the line editor's callbacks; set only
// while run_repl() runs.
struct Repl {
  net::Server* server = nullptr;
  LineEditor* editor = nullptr;
  LogFormatter format_log;
  node::LogLevel shown = node::LogLevel::kInfo;
  Style style;
  bool quitting = false;
  uint64_t next_req = 1;
};
Repl* g_repl = nullptr;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The command `word` names, in any case, by name or alias; nullptr if none.
const CommandHelp* find_command(std::string_view word) {
  const std::string w = lower(word);
  for (const auto& c : kCommands) {
    if (w == c.name || (c.alias != nullptr && w == c.alias)) return &c;
  }
  return nullptr;
}

// Edits between a and b, a swap of neighbours counting as one (optimal
// string alignment). REQUIRES: short strings (quadratic).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The name or alias a mistyped `word` most likely meant: the closest within
// one edit (two for words of five letters or more), else the only one it
// begins; "" when nothing is close.
std::string suggest(std::string_view word) {
  const std::string w = lower(word);
  if (w.empty() || w.size() > 32) return {};
  std::string best;
  size_t best_d = w.size() >= 5 ? 3 : 2;
  std::vector<std::string> prefixed;
  for (const auto& c : kCommands) {
    for (const char* n : {c.name, c.alias}) {
      if (n == nullptr) continue;
      const size_t d = edit_distance(w, n);
      if (d < best_d) best = n, best_d = d;
      if (std::string_view(n).starts_with(w)) prefixed.emplace_back(n);
    }
  }
  if (best.empty() && prefixed.size() == 1) best = prefixed[0];
  return best;
}

void unknown_command(std::string_view word) {
  std::cerr << "unknown command '" << word << "'";
  if (const std::string s = suggest(word); !s.empty()) std::cerr << "; did you mean '" << s << "'?";
  std::cerr << " (help lists the commands)\n";
}

// `text` in lines of at most `width` columns, broken at spaces; lines after
// the first start with `indent` spaces.
std::string wrap(std::string_view text, size_t width, size_t indent) {
  std::string out;
  size_t col = 0;
  while (!text.empty()) {
    const size_t sp = text.find(' ');
    const std::string_view word = text.substr(0, sp);
    if (col > indent && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (!out.empty()) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
  }
  return out;
}

// A usage line on stderr, wrapped to fit 80 columns like `help COMMAND`.
void print_usage(std::string_view usage) {
  std::cerr << wrap("usage: " + std::string(usage), 79, 7) << "\n";
}

void print_list() {
  size_t w = 0;
  for (const auto& c : kCommands) w = std::max(w, std::strlen(c.synopsis));
  for (const auto& c : kCommands) {
    std::cout << "  " << c.synopsis << std::string(w - std::strlen(c.synopsis) + 2, ' ')
              << c.summary << "\n";
  }
  std::cout << "Ctrl-C cancels the line, Tab completes, Up and Ctrl-R recall history\n"
               "(Ctrl-R: the latest line containing what is typed). help COMMAND shows\n"
               "a command's usage and an example.\n";
}

void print_help(const std::vector<std::string>& w) {
  if (w.size() == 1) {
    print_list();
    return;
  }
  const CommandHelp* c = find_command(w[1]);
  if (c == nullptr) {
    unknown_command(w[1]);
    return;
  }
  const std::string usage = "usage: " + std::string(c->usage != nullptr ? c->usage : c->synopsis);
  std::cout << wrap(usage, 79, 7) << "\n"
            << c->summary << "\n"
            << "example: " << c->example << "\n";
}

std::optional<node::LogLevel> parse_level(std::string_view name) {
  const std::string n = lower(name);
  for (size_t i = 0; i < std::size(kLevels); ++i) {
    if (n == kLevels[i]) return static_cast<node::LogLevel>(i);
  }
  return std::nullopt;
}

void log_command(const std::vector<std::string>& w) {
  if (w.size() > 2) {
    print_usage("log [debug|info|warn|error]");
    return;
  }
  if (w.size() == 2) {
    const std::optional<node::LogLevel> l = parse_level(w[1]);
    if (!l) {
      std::cerr << "log: '" << w[1] << "' is not a level: debug, info, warn or error\n";
      return;
    }
    g_repl->shown = *l;
  }
  std::cout << "showing log lines of level " << kLevels[static_cast<size_t>(g_repl->shown)]
            << " and above\n";
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
    print_usage(find_command("loss")->usage);
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
    print_usage("join PEER...   (PEER is HOST:PORT)");
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

// Takes --wait (set, del), --read (get, list) and --timeout, each with its
// value, out of the words of a command into the arguments of `req`; `kept`
// gets the other words. False after printing what is wrong.
bool consistency_options(CtlOp op, const std::vector<std::string>& w, wire::CtlRequest& req,
                         std::vector<std::string>& kept) {
  const bool writes = op == CtlOp::kSet || op == CtlOp::kDel || op == CtlOp::kExpire || op == CtlOp::kIncr ||
                      op == CtlOp::kSadd || op == CtlOp::kSrem;
  const bool reads = op == CtlOp::kGet || op == CtlOp::kList;
  int64_t timeout_ms = static_cast<int64_t>(node::kDefaultWaitMs);
  bool deferred = false;
  for (size_t i = 0; i < w.size(); ++i) {
    const bool flag = (writes && w[i] == "--wait") || (reads && w[i] == "--read") || ((writes || reads) && w[i] == "--timeout");
    if (!flag || i == 0) {
      kept.push_back(w[i]);
      continue;
    }
    if (i + 1 >= w.size()) {
      std::cerr << w[0] << ": " << w[i] << " needs a value\n";
      return false;
    }
    const std::string& v = w[++i];
    if (w[i - 1] == "--timeout") {
      char* end = nullptr;
      const long long t = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || t < 1 || t > static_cast<long long>(node::kMaxWaitMs)) {
        std::cerr << w[0] << ": --timeout takes milliseconds, 1.." << node::kMaxWaitMs << "\n";
        return false;
      }
      timeout_ms = t;
      continue;
    }
    auto level = node::parse_level(v, writes);
    if (!level.ok()) {
      std::cerr << w[0] << ": " << w[i - 1] << ": " << level.status().message() << "\n";
      return false;
    }
    req.args.set(writes ? "wait" : "read", v);
    deferred = true;
  }
  if (deferred) req.args.set("timeout_ms", timeout_ms);
  return true;
}

// A control request from the words of a command, or nullopt after printing
// what is wrong with them.
std::optional<wire::CtlRequest> build_request(const std::vector<std::string>& w) {
  auto usage = [&](const char* u) -> std::optional<wire::CtlRequest> {
    print_usage(u);
    return std::nullopt;
  };
  auto unknown = [&]() -> std::optional<wire::CtlRequest> {
    std::cerr << "unknown command '" << w[0] << "'; type help for the list\n";
    return std::nullopt;
  };
  // decr is incr with the sign turned (one op on the wire).
  const bool down = lower(w[0]) == "decr";
  const std::optional<CtlOp> op = down ? std::optional<CtlOp>(CtlOp::kIncr) : wire::find_op(w[0]);
  if (!op) return unknown();
  wire::CtlRequest req = wire::make_request(*op);
  std::vector<std::string> kept;
  if (!consistency_options(*op, w, req, kept)) return std::nullopt;
  const std::vector<std::string>& words = kept;
  const size_t n = words.size() - 1;
  switch (*op) {
    case CtlOp::kSet: {
      // `set KEY VALUE --ttl D`, the option anywhere after set.
      std::vector<std::string> args;
      std::optional<uint64_t> ttl;
      for (size_t i = 1; i < words.size(); ++i) {
        if (words[i] != "--ttl" || ttl) {
          args.push_back(words[i]);
          continue;
        }
        if (i + 1 >= words.size()) return usage("set KEY VALUE [--ttl DURATION]");
        std::string error;
        ttl = parse_duration_ms(words[++i], &error);
        if (!ttl) {
          std::cerr << "set: --ttl: " << error << "\n";
          return std::nullopt;
        }
      }
      if (args.size() != 2) return usage("set KEY VALUE [--ttl DURATION]   (quote a value with spaces)");
      req.args.set("key", args[0]);
      req.args.set("value", args[1]);
      if (ttl) req.args.set("ttl_ms", static_cast<int64_t>(*ttl));
      break;
    }
    case CtlOp::kExpire: {
      if (n != 2) return usage("expire KEY DURATION   (500ms, 2s, 10m, 1h, 7d)");
      std::string error;
      auto ttl = parse_duration_ms(words[2], &error);
      if (!ttl) {
        std::cerr << "expire: " << error << "\n";
        return std::nullopt;
      }
      req.args.set("key", words[1]);
      req.args.set("ttl_ms", static_cast<int64_t>(*ttl));
      break;
    }
    case CtlOp::kTtl:
      if (n != 1) return usage("ttl KEY");
      req.args.set("key", words[1]);
      break;
    case CtlOp::kIncr: {
      if (n != 1 && n != 2) return usage(down ? "decr KEY [N]" : "incr KEY [N]");
      int64_t by = 1;
      if (n == 2) {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(words[2].c_str(), &end, 10);
        if (words[2].empty() || *end != '\0' || errno != 0 || v < 1) {
          std::cerr << words[0] << ": N must be a whole number from 1 up, not '" << words[2] << "'\n";
          return std::nullopt;
        }
        by = v;
      }
      req.args.set("key", words[1]);
      req.args.set("by", down ? -by : by);
      break;
    }
    case CtlOp::kGet:
      if (n != 1) return usage("get KEY");
      req.args.set("key", words[1]);
      break;
    case CtlOp::kSadd:
    case CtlOp::kSrem: {
      if (n < 2) return usage(*op == CtlOp::kSadd ? "sadd KEY MEMBER..." : "srem KEY MEMBER...");
      req.args.set("key", words[1]);
      wire::Value members = wire::Value::list();
      for (size_t i = 2; i < words.size(); ++i) members.push(words[i]);
      req.args.set("members", std::move(members));
      break;
    }
    case CtlOp::kSmembers:
      if (n != 1) return usage("smembers KEY");
      req.args.set("key", words[1]);
      break;
    case CtlOp::kSismember:
      if (n != 2) return usage("sismember KEY MEMBER");
      req.args.set("key", words[1]);
      req.args.set("member", words[2]);
      break;
    case CtlOp::kDel: {
      // `del --force KEY` or `del KEY --force`; a key named --force is
      // `del --force --force`.
      const bool force = n == 2 && (words[1] == "--force" || words[2] == "--force");
      if (n != 1 && !force) return usage("del [--force] KEY");
      req.args.set("key", n == 1 ? words[1] : words[1] == "--force" ? words[2] : words[1]);
      if (force) req.args.set("force", true);
      break;
    }
    case CtlOp::kList:
      if (n > 1) return usage("list [PREFIX]");
      if (n == 1) req.args.set("prefix", words[1]);
      break;
    case CtlOp::kPeers: {
      // `peers STATE` or, as on the command line, `peers --state STATE`.
      const size_t at = n == 2 && w[1] == "--state" ? 2 : 1;
      if (n != 0 && n != at) return usage("peers [alive|suspect|dead|left]");
      if (n != 0) req.args.set("state", w[at]);
      break;
    }
    case CtlOp::kStatus:
    case CtlOp::kClock:
      if (n != 0) return usage(words[0].c_str());
      break;
    case CtlOp::kLoss:
      if (!loss_request(words, req)) return std::nullopt;
      break;
    case CtlOp::kJoin:
      if (!join_request(words, req)) return std::nullopt;
      break;
    case CtlOp::kQuarantine: {
      const char* u = "quarantine [list [PREFIX] | apply KEY | drop KEY | drop --all]";
      const std::string action = n >= 1 ? words[1] : "list";
      req.args.set("action", action);
      if (action == "list") {
        if (n > 2) return usage(u);
        if (n == 2) req.args.set("prefix", words[2]);
      } else if (action == "apply") {
        if (n != 2) return usage(u);
        req.args.set("key", words[2]);
      } else if (action == "drop") {
        if (n != 2) return usage(u);
        if (words[2] == "--all") {
          req.args.set("all", true);
        } else {
          req.args.set("key", words[2]);
        }
      } else {
        return usage(u);
      }
      break;
    }
    case CtlOp::kForget:
      if (n != 1) return usage("forget NODE   (a suspect or dead member's name, as peers shows it)");
      req.args.set("name", words[1]);
      break;
    default:  // ops for tools, not for the prompt
      return unknown();
  }
  req.req_id = g_repl->next_req++;
  return req;
}

void execute(std::vector<std::string> words) {
  const CommandHelp* c = find_command(words[0]);
  if (c == nullptr) {
    unknown_command(words[0]);
    return;
  }
  words[0] = c->name;
  const std::string_view op = c->name;
  if (op == "help") {
    print_help(words);
  } else if (op == "quit") {
    g_repl->quitting = true;
  } else if (op == "log") {
    log_command(words);
  } else if (auto req = build_request(words)) {
    g_repl->style.columns = detect_style(STDOUT_FILENO).columns;  // the window may have been resized
    // A wait or a quorum read answers later: the prompt stays usable and
    // the answer is printed above it when it comes.
    auto inside = std::make_shared<bool>(true);  // answered before control() returned
    g_repl->server->control(*req, [req = *req, inside](const wire::CtlResponse& resp) {
      if (g_repl == nullptr) return;
      if (*inside || g_repl->editor == nullptr) {
        print_result(req, Result<wire::CtlResponse>(resp), false, g_repl->style, std::cout, std::cerr);
        return;
      }
      std::ostringstream out, err;
      print_result(req, Result<wire::CtlResponse>(resp), false, g_repl->style, out, err);
      g_repl->editor->print_above(out.str() + err.str());
    });
    *inside = false;
  }
}

// The line editor's handler: runs a finished line. False once quitting.
bool on_line(LineEditor::Event ev, const std::string& line) {
  Repl& r = *g_repl;
  switch (ev) {
    case LineEditor::Event::kEnd:
      r.quitting = true;
      return false;
    case LineEditor::Event::kCancelled:
      return true;
    case LineEditor::Event::kTooLong:
      std::cerr << "line too long (over " << kMaxLineBytes << " bytes): not run; a value may "
                << "have up to " << crdt::kMaxValueBytes << " bytes\n";
      return true;
    case LineEditor::Event::kLine:
      break;
  }
  if (line.find_first_not_of(" \t") == std::string::npos) return true;
  if (Status s = r.editor->remember(line); !s.ok()) std::cerr << "meshkv: " << s.message() << "\n";
  std::string error;
  auto words = tokenize(line, &error);
  if (!words) {
    std::cerr << error << "\n";
  } else if (!words->empty()) {
    execute(std::move(*words));
  }
  std::cout.flush();
  std::cerr.flush();
  return !r.quitting;
}

// Tab: command names for the first word; command names after `help`, levels
// after `log`; elsewhere the command's usage as a hint.
Completion complete_words(std::string_view before) {
  const size_t cut = before.find_last_of(" \t");
  const std::string word = lower(before.substr(cut == std::string_view::npos ? 0 : cut + 1));
  std::string tokenize_error;
  const auto done = tokenize(before.substr(0, cut == std::string_view::npos ? 0 : cut),
                             &tokenize_error);
  Completion out;
  auto offer = [&](const char* w) {
    if (w != nullptr && std::string_view(w).starts_with(word)) out.words.emplace_back(w);
  };
  const CommandHelp* c = done && !done->empty() ? find_command((*done)[0]) : nullptr;
  if (done && done->empty()) {
    for (const auto& k : kCommands) offer(k.name), offer(k.alias);
  } else if (c != nullptr && done->size() == 1 && std::string_view(c->name) == "help") {
    for (const auto& k : kCommands) offer(k.name);
  } else if (c != nullptr && done->size() == 1 && std::string_view(c->name) == "log") {
    for (const char* l : kLevels) offer(l);
  } else if (c != nullptr) {
    out.hint = wrap("usage: " + std::string(c->usage != nullptr ? c->usage : c->synopsis), 79, 7);
  }
  return out;
}

// Called when stdin is readable; false stops watching it.
bool on_input() {
  Repl& r = *g_repl;
  if (!r.editor->on_readable(on_line)) {
    r.server->stop();
    return false;
  }
  // Input read but left for later (a long paste) raises no new readiness.
  if (r.editor->has_input()) {
    r.server->post([] {
      if (g_repl != nullptr) on_input();
    });
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

namespace {

// asio makes a watched descriptor non-blocking, and a dup() shares that mode
// with stdin, stdout and stderr (one open file of the terminal): output would
// then fail with EAGAIN whenever the terminal lags, and the shell would get
// its terminal back non-blocking. So the prompt watches a descriptor of its
// own; -1 if the terminal cannot be opened again.
int own_terminal_fd() {
  char name[256];
  if (::ttyname_r(STDIN_FILENO, name, sizeof name) != 0) return -1;
  return ::open(name, O_RDONLY | O_NOCTTY | O_CLOEXEC);
}

}  // namespace

std::string default_history_file() {
  // Set but empty, like an empty HISTFILE in a shell: no file is kept.
  if (const char* file = std::getenv("MESHKV_HISTORY"); file != nullptr) return file;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return {};
  return std::string(home) + "/.meshkv_history";
}

int run_repl(net::Server& server, LogFormatter format_log, ReplOptions opts) {
  LineEditor::Options eo;
  eo.prompt = "meshkv " + server.engine().id() + "> ";
  eo.history_file = std::move(opts.history_file);
  eo.max_line_bytes = kMaxLineBytes;
  eo.complete = complete_words;
  auto editor = LineEditor::open(std::move(eo));
  if (!editor.ok()) {
    std::cerr << "meshkv: " << editor.status().message() << "\n";
    return 1;
  }
  LineEditor& ed = **editor;
  Repl repl;
  repl.server = &server;
  repl.editor = &ed;
  repl.format_log = std::move(format_log);
  repl.shown = opts.log_level;
  repl.style = detect_style(STDOUT_FILENO);
  g_repl = &repl;
  if (!ed.load_warning().empty()) std::cerr << "meshkv: " << ed.load_warning() << "\n";
  std::cout << "type help for commands; Ctrl-C cancels a line, quit or Ctrl-D leaves\n"
            << std::flush;
  server.set_log_sink([&repl](const node::LogLine& l) {
    if (l.level < repl.shown) return;
    if (auto text = repl.format_log(l)) repl.editor->print_above(*text);
  });
  ed.start();
  const int watch_fd = own_terminal_fd();
  Status s = server.watch_readable(watch_fd >= 0 ? watch_fd : STDIN_FILENO, on_input);
  if (s.ok()) s = server.run();
  ed.stop();
  if (watch_fd >= 0) ::close(watch_fd);
  server.set_log_sink(nullptr);
  g_repl = nullptr;
  if (!s.ok()) {
    std::cerr << "meshkv: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace meshkv::cli
