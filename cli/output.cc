#include "output.h"

#include <cstdio>

#include <ctime>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <vector>

#include "commands.h"
#include "utf8.h"

namespace meshkv::cli {

using wire::Value;

namespace {
constexpr const char* kBold = "\033[1m";
constexpr const char* kGreen = "\033[32m";
constexpr const char* kYellow = "\033[33m";
constexpr const char* kRed = "\033[31m";
constexpr const char* kDim = "\033[2m";
constexpr const char* kReset = "\033[0m";

struct Cell {
  std::string text;
  const char* color = nullptr;
};
using Row = std::vector<Cell>;

size_t width(std::string_view s) { return display_columns(s); }

// The narrowest a column is cut to when a table must shrink to fit.
constexpr size_t kMinColumn = 12;

std::string paint(const std::string& s, const char* color, const Style& st) {
  if (!st.color || color == nullptr) return s;
  return color + s + kReset;
}

// Columns separated by two spaces; the last column is not padded. An empty
// header prints no header line. Cells are measured in terminal columns; when
// the rows are wider than the terminal the widest columns are cut (with an
// ellipsis) until they fit or reach kMinColumn, and without a known width no
// cell is wider than kCellColumns, so that one long value cannot pad every
// other row to its length.
std::string table(const Row& header, std::vector<Row> rows, const Style& st,
                  const std::string& indent = "") {
  std::vector<size_t> w(header.size(), 0);
  auto widen = [&](const Row& r) {
    if (w.size() < r.size()) w.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(r[i].text));
  };
  widen(header);
  for (const Row& r : rows) widen(r);
  std::vector<size_t> head_w(w.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) head_w[i] = width(header[i].text);
  if (st.columns == 0) {
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::min(w[i], std::max(kCellColumns, head_w[i]));
  } else {
    auto total = [&] {
      size_t t = width(indent);
      for (size_t x : w) t += x + 2;
      return t - 2;
    };
    while (total() > st.columns) {
      const auto widest = std::max_element(w.begin(), w.end());
      const size_t floor = std::max(kMinColumn, head_w[static_cast<size_t>(widest - w.begin())]);
      if (*widest <= floor) break;
      *widest = std::max(floor, *widest - std::min(*widest, total() - st.columns));
    }
  }
  for (Row& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) r[i].text = fit_columns(r[i].text, w[i]);
  }
  std::string out;
  auto line = [&](const Row& r) {
    out += indent;
    for (size_t i = 0; i < r.size(); ++i) {
      out += paint(r[i].text, r[i].color, st);
      if (i + 1 < r.size()) out += std::string(w[i] - std::min(w[i], width(r[i].text)) + 2, ' ');
    }
    out += '\n';
  };
  if (!header.empty()) line(header);
  for (const Row& r : rows) line(r);
  return out;
}

Row bold_row(std::initializer_list<const char*> names) {
  Row r;
  for (const char* n : names) r.push_back({n, kBold});
  return r;
}

std::string scalar(const Value& v) {
  if (v.is_string()) return escape(v.as_string());
  if (v.is_int()) return std::to_string(v.as_int());
  if (v.is_bool()) return v.as_bool() ? "yes" : "no";
  if (v.is_null()) return "-";
  return v.to_json();
}

std::string rtt(const Value& us) {
  if (!us.is_int()) return "-";
  const int64_t v = us.as_int();
  if (v < 1000) return std::to_string(v) + "us";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 100) + "ms";
}

std::string ago(const Value& ms) {
  if (!ms.is_int()) return "never";
  const int64_t v = ms.as_int();
  if (v < 10'000) return std::to_string(v) + "ms ago";
  return std::to_string(v / 1000) + "s ago";
}

const char* state_color(const std::string& s) {
  if (s == "alive") return kGreen;
  if (s == "suspect") return kYellow;
  if (s == "dead") return kRed;
  return kDim;
}

// A peer's clock offset: "+3ms" ahead of ours, "-12ms" behind, "-" unknown;
// "!" and red when further than the clock-offset guard's limit.
Cell offset(const Value& m) {
  const Value& v = m.get("clock_offset_ms");
  if (!v.is_int()) return {"-"};
  const int64_t ms = v.as_int();
  const bool beyond = m.get("clock_offset_beyond_limit").as_bool();
  return {(ms > 0 ? "+" : "") + std::to_string(ms) + "ms" + (beyond ? "!" : ""), beyond ? kRed : nullptr};
}

std::string members_table(const Value& list, const Style& st) {
  // In a sealed mesh every member shows the fingerprint of its identity.
  bool sealed = false;
  for (const Value& m : list.as_list()) sealed |= m.get("identity").is_string();
  std::vector<Row> rows;
  for (const Value& m : list.as_list()) {
    const std::string state = m.get("state").as_string();
    const bool self = m.get("self").as_bool();
    Row row{{scalar(m.get("name")) + (self ? " (self)" : ""), self ? kBold : nullptr},
            {state, state_color(state)},
            {scalar(m.get("address"))},
            {rtt(m.get("rtt_us"))},
            offset(m),
            {ago(m.get("last_contact_ms_ago"))},
            {scalar(m.get("incarnation"))},
            {scalar(m.get("pending_pushes"))}};
    if (sealed) row.push_back({m.get("identity").is_string() ? m.get("identity").as_string() : "-"});
    rows.push_back(std::move(row));
  }
  Row head = bold_row({"NAME", "STATE", "ADDRESS", "RTT", "CLOCK", "LAST CONTACT", "INC", "PENDING"});
  if (sealed) head.push_back({"IDENTITY", kBold});
  return table(head, rows, st, "  ");
}

std::string vv_table(const Value& list, const Style& st) {
  std::vector<Row> rows;
  for (const Value& e : list.as_list()) {
    const std::string node = e.get("node").as_string();
    rows.push_back({{node.empty() ? "?" : escape(node)}, {scalar(e.get("origin"))}, {scalar(e.get("seq"))}});
  }
  return table(bold_row({"NODE", "ORIGIN", "SEQ"}), rows, st, "  ");
}

// Any other list of objects: one column per field of the first item.
std::string generic_table(const Value& list, const Style& st) {
  Row header;
  std::vector<std::string> keys;
  for (const auto& [k, v] : list.as_list().front().as_object()) {
    keys.push_back(k);
    std::string h = k;
    for (char& c : h) c = c == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    header.push_back({h, kBold});
  }
  std::vector<Row> rows;
  for (const Value& item : list.as_list()) {
    Row r;
    for (const std::string& k : keys) r.push_back({scalar(item.get(k))});
    rows.push_back(std::move(r));
  }
  return table(header, rows, st, "  ");
}

std::string titled(const std::string& name, const Value& v, const Style& st) {
  static const std::pair<const char*, const char*> kTitles[] = {
      {"vv", "version vector"}, {"members", "members"}, {"datagrams", "datagrams"}};
  std::string title = name;
  for (const auto& [k, t] : kTitles) {
    if (name == k) title = t;
  }
  if (v.is_list()) title += " (" + std::to_string(v.as_list().size()) + ")";
  return paint(title, kBold, st) + "\n";
}

// An object as people read it: scalar fields as aligned `name  value` lines,
// then each nested object or list as a titled block.
std::string render_object(const Value& body, const Style& st, const std::string& indent = "") {
  std::vector<Row> kv;
  std::string blocks;
  for (const auto& [k, v] : body.as_object()) {
    if (k == "faults" && v.is_object() && !v.get("active").as_bool()) {
      kv.push_back({{k}, {"none injected"}});
    } else if (v.is_object()) {
      blocks += "\n" + titled(k, v, st) + render_object(v, st, indent + "  ");
    } else if (v.is_list() && v.as_list().empty()) {
      kv.push_back({{k}, {"(none)"}});
    } else if (v.is_list() && v.as_list().front().is_object()) {
      blocks += "\n" + titled(k, v, st);
      blocks += k == "members" ? members_table(v, st)
                : k == "vv"    ? vv_table(v, st)
                               : generic_table(v, st);
    } else {
      std::string text = v.is_list() ? "" : scalar(v);
      for (const Value& x : v.as_list()) text += (text.empty() ? "" : ", ") + scalar(x);
      kv.push_back({{k}, {text}});
    }
  }
  return table({}, kv, st, indent) + blocks;
}

// A set in one cell: its first members, and how many there are.
std::string set_summary(const Value& e) {
  constexpr size_t kShown = 5;
  const Value::List& ms = e.get("members").as_list();
  std::string out = "{";
  for (size_t i = 0; i < ms.size() && i < kShown; ++i) {
    if (i > 0) out += ", ";
    out += escape(ms[i].as_string());
  }
  if (ms.size() > kShown) out += ", ... " + std::to_string(ms.size() - kShown) + " more";
  return out + "} (set)";
}

// A set's members as get and smembers print them: one per line.
std::string render_members(const Value& body) {
  std::string out;
  for (const Value& m : body.get("members").as_list()) out += m.as_string() + "\n";
  return out;
}

std::string render_list(const Value& body, const Style& st) {
  const Value::List& entries = body.get("entries").as_list();
  if (entries.empty()) return "(no keys)\n";
  std::vector<Row> rows;
  for (const Value& e : entries) {
    // A counter's total, marked so that it does not read as a value "42".
    const bool counter = e.get("type").is_string() && e.get("type").as_string() == "counter";
    const bool set = e.get("type").is_string() && e.get("type").as_string() == "set";
    rows.push_back({{escape(e.get("key").as_string())},
                    {set ? set_summary(e) : escape(e.get("value").as_string()) + (counter ? " (counter)" : "")},
                    {scalar(e.get("origin")), kDim},
                    {scalar(e.get("hlc")), kDim}});
  }
  return table(bold_row({"KEY", "VALUE", "ORIGIN", "HLC"}), rows, st);
}

std::string render_quarantine(const Value& req_args, const Value& body, const Style& st) {
  const std::string action = req_args.get("action").is_null() ? "list" : req_args.get("action").as_string();
  if (action == "drop") return "dropped " + scalar(body.get("dropped")) + " quarantined writes\n";
  if (action == "apply") {
    return paint(body.get("deleted").as_bool() ? "deleted" : "set", kGreen, st) + " " +
           escape(body.get("key").as_string()) + " from quarantine  " +
           paint("hlc " + scalar(body.get("hlc")) + "  dot " + scalar(body.get("origin")) + ":" +
                     scalar(body.get("seq")),
                 kDim, st) +
           "\n";
  }
  const Value::List& entries = body.get("entries").as_list();
  if (entries.empty()) return "(quarantine is empty)\n";
  std::vector<Row> rows;
  for (const Value& e : entries) {
    rows.push_back({{escape(e.get("key").as_string())},
                    {e.get("deleted").as_bool() ? "(deleted)" : escape(e.get("value").as_string()),
                     e.get("deleted").as_bool() ? kDim : nullptr},
                    {escape(e.get("writer").as_string())},
                    {scalar(e.get("origin")) + ":" + scalar(e.get("seq")), kDim},
                    {scalar(e.get("hlc")), kDim}});
  }
  std::string out = table(bold_row({"KEY", "VALUE", "WRITER", "DOT", "HLC"}), rows, st);
  const uint64_t total = static_cast<uint64_t>(body.get("total").as_int());
  if (total > entries.size()) {
    out += paint("(" + std::to_string(entries.size()) + " of " + std::to_string(total) + " shown; --limit N)", kDim, st) + "\n";
  }
  return out;
}

// "  acked by a, b, c in 4 ms" for a write that waited (--wait), else "".
std::string render_wait(const Value& body) {
  const Value& w = body.get("wait");
  if (!w.is_object()) return "";
  std::string names;
  for (const Value& n : w.get("acked").as_list()) names += (names.empty() ? "" : ", ") + n.as_string();
  return "  acked by " + names + " in " + scalar(w.get("ms")) + " ms";
}

std::string render_write(wire::CtlOp op, const Value& body, const Style& st) {
  const std::string expiry =
      body.get("ttl_ms").is_null() ? std::string() : "  expires at hlc " + scalar(body.get("expires"));
  return paint(op == wire::CtlOp::kDel ? "deleted" : "set", kGreen, st) + " " +
         escape(body.get("key").as_string()) + "  " +
         paint("hlc " + scalar(body.get("hlc")) + expiry + "  dot " + scalar(body.get("origin")) + ":" +
                   scalar(body.get("seq")) + render_wait(body),
               kDim, st) +
         "\n";
}

std::string render_ttl(const Value& body, const Style& st) {
  const std::string key = escape(body.get("key").as_string());
  if (body.get("ttl_ms").is_null()) return key + "  " + paint("no expiry", kDim, st) + "\n";
  return key + "  " + scalar(body.get("ttl_ms")) + " ms left  " +
         paint("expires at hlc " + scalar(body.get("expires")), kDim, st) + "\n";
}

std::string render_forget(const Value& body, const Style& st) {
  return paint("forgot", kGreen, st) + " " + escape(body.get("name").as_string()) + " (" +
         body.get("address").as_string() + ", " + body.get("state").as_string() +
         "): removed here; the other members are told to remove it too\n";
}

std::string render_join(const Value& args) {
  std::string peers;
  for (const Value& p : args.get("peers").as_list()) peers += " " + p.as_string();
  return "contacting" + peers + "\n";
}
}  // namespace

Style detect_style(int fd) {
  const char* no_color = std::getenv("NO_COLOR");
  Style st;
  const bool tty = ::isatty(fd) == 1;
  st.color = tty && (no_color == nullptr || *no_color == '\0');
  winsize ws{};
  if (tty && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    st.columns = ws.ws_col;
  } else if (const char* c = std::getenv("COLUMNS"); c != nullptr) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(c, &end, 10);
    if (end != c && *end == '\0' && n >= 20 && n <= 10000) st.columns = n;
  }
  return st;
}

std::string fit_value(std::string_view escaped, const Style& st, size_t used) {
  const size_t room = st.columns == 0 ? kCellColumns : st.columns > used + kMinColumn ? st.columns - used : kMinColumn;
  return fit_columns(escaped, room);
}

std::string escape(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string render_loss(const Value& body, const Style& st) {
  if (!body.get("active").as_bool()) return paint("no faults injected", kDim, st) + "\n";
  auto pct = [&](const char* f) {
    const int64_t ppm = body.get(f).as_int();
    return std::to_string(ppm / 10000) + "." + std::to_string(ppm / 1000 % 10) + "%";
  };
  std::string s = "drop " + pct("drop_ppm") + "  dup " + pct("dup_ppm") + "  corrupt " +
                  pct("corrupt_ppm") + "  delay " + scalar(body.get("delay_ms")) + "ms";
  if (body.get("jitter_ms").as_int() > 0) s += ":" + scalar(body.get("jitter_ms"));
  s += "  direction " + body.get("direction").as_string();
  auto names = [](const Value& l) {
    std::string out;
    for (const Value& x : l.as_list()) out += (out.empty() ? "" : ",") + x.as_string();
    return out;
  };
  if (!body.get("peers").as_list().empty()) s += "  peers " + names(body.get("peers"));
  if (!body.get("partition").as_list().empty()) s += "  partition " + names(body.get("partition"));
  return paint("faults:", kYellow, st) + " " + s + "\n";
}

std::string render_change(const Value& ev, const Style& st) {
  const int64_t ms = ev.get("time_ms").as_int();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[32];
  std::snprintf(when, sizeof when, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  const bool del = ev.get("deleted").as_bool();
  std::string who = ev.get("node").as_string();
  if (who.empty()) who = ev.get("origin").as_string();
  const std::string key = escape(ev.get("key").as_string());
  // The value gets what the time, key and origin leave of the line.
  const size_t used = 22 + width(key) + who.size() + 25;
  return paint(when, kDim, st) + "  " + paint(del ? "del" : "set", del ? kYellow : kGreen, st) +
         "  " + key + (del ? std::string() : " = " + fit_value(escape(ev.get("value").as_string()), st, used)) +
         "  " +
         paint("from " + who + (ev.get("local").as_bool() ? " (local)" : "") + "  hlc " +
                   ev.get("hlc").as_string(),
               kDim, st) +
         "\n";
}

std::string render(const wire::CtlRequest& req, const Value& body, const Style& st) {
  using wire::CtlOp;
  const std::optional<CtlOp> op = wire::find_op(req.op);
  if (op) {
    switch (*op) {
      case CtlOp::kLoss: return render_loss(body, st);
      case CtlOp::kGet:
        if (body.get("type").is_string() && body.get("type").as_string() == "set") return render_members(body);
        return body.get("value").as_string() + "\n";
      case CtlOp::kIncr: return body.get("value").as_string() + "\n";
      case CtlOp::kSmembers: return render_members(body);
      case CtlOp::kSadd: return scalar(body.get("added")) + "\n";
      case CtlOp::kSrem: return scalar(body.get("removed")) + "\n";
      case CtlOp::kSismember: return std::string(body.get("present").as_bool() ? "true" : "false") + "\n";
      case CtlOp::kSet:
      case CtlOp::kExpire:
      case CtlOp::kDel: return render_write(*op, body, st);
      case CtlOp::kTtl: return render_ttl(body, st);
      case CtlOp::kList: return render_list(body, st);
      case CtlOp::kJoin: return render_join(req.args);
      case CtlOp::kQuarantine: return render_quarantine(req.args, body, st);
      case CtlOp::kForget: return render_forget(body, st);
      default: break;  // the generic rendering below
    }
  }
  if (body.is_object()) return render_object(body, st);
  return body.to_json() + "\n";
}

int exit_code(wire::CtlCode code) {
  return std::clamp<int>(code, wire::kCtlNotFound, wire::kCtlUnavailable);
}

int print_result(const wire::CtlRequest& req, const Result<wire::CtlResponse>& result, bool json,
                 const Style& style, std::ostream& out, std::ostream& err) {
  // A refusal: its message on `err`, or with `json` an object on `out`.
  auto refused = [&](const std::string& message, int rc) {
    if (json) {
      Value e = Value::object();
      e.set("error", message);
      e.set("code", static_cast<int64_t>(rc));
      out << e.to_json() << "\n";
      out.flush();
    } else {
      err << message << "\n";
    }
    return rc;
  };
  if (!result.ok()) {
    // A request over the frame limit is refused here, before it is sent.
    const bool too_large = result.status().code() == Code::kTooLarge;
    return refused(result.status().message(), too_large ? kExitUsage : kExitUnreachable);
  }
  const wire::CtlResponse& r = *result;
  const bool get = wire::find_op(req.op) == wire::CtlOp::kGet;
  // A get refused for staleness (--max-staleness) is no answer about the key.
  if (json && get && r.code == wire::kCtlNotFound && !r.body.get("stale").as_bool()) {
    // An answer, not an error: the same shape as a key that was found.
    Value v = Value::object();
    v.set("key", req.args.get("key").as_string());
    v.set("found", false);
    out << v.to_json() << "\n";
    out.flush();
    return kExitNegative;
  }
  if (r.code != wire::kCtlOk) return refused(r.error.empty() ? "request failed" : r.error, exit_code(r.code));
  if (json && get) {
    Value v = r.body;
    v.set("found", true);
    out << v.to_json() << "\n";
  } else if (json) {
    out << r.body.to_json() << "\n";
  } else {
    out << render(req, r.body, style);
  }
  out.flush();
  return kExitOk;
}

}  // namespace meshkv::cli
