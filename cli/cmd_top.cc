// meshkv top: a live view of one node's mesh, refreshed about once a
// second: its members (state, RTT, clock offset, version-vector lag), the
// lag matrix across every member, and its traffic. Each refresh is one
// status request to the node and one to each member it can reach (for their
// version vectors): a few kilobytes a second. Plain ANSI escapes; keys
// switch views; --once prints every view once, for scripts.
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "commands.h"
#include "config_file.h"
#include "net/control_client.h"

namespace meshkv::cli {

namespace {

struct TopOptions {
  std::string node = "127.0.0.1:7946";
  unsigned timeout_ms = 1000, interval_ms = 1000;
  bool once = false;
  std::string view = "members";
};

enum class View { kMembers, kLag, kTraffic };

struct Sample {
  int64_t at_ms = 0;
  wire::Value status;  // the node's
  // Each member's version vector, origin name -> seq, by member name (the
  // node itself included); absent for a member that did not answer.
  std::map<std::string, std::map<std::string, int64_t>> vvs;
};

volatile std::sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

Result<wire::Value> ask_status(const Endpoint& at, unsigned timeout_ms) {
  auto r = net::call(at, wire::make_request(wire::CtlOp::kStatus), std::chrono::milliseconds(timeout_ms));
  if (!r.ok()) return r.status();
  if (r->code != wire::kCtlOk) return Status::Unavailable(r->error);
  return r->body;
}

std::map<std::string, int64_t> vv_of(const wire::Value& status) {
  std::map<std::string, int64_t> out;
  for (const auto& e : status.get("vv").as_list()) out[e.get("node").as_string()] = e.get("seq").as_int();
  return out;
}

Result<Sample> take_sample(const Endpoint& node, const TopOptions& o) {
  auto st = ask_status(node, o.timeout_ms);
  if (!st.ok()) return st.status();
  Sample s;
  s.at_ms = now_ms();
  s.status = std::move(*st);
  s.vvs[s.status.get("id").as_string()] = vv_of(s.status);
  for (const auto& m : s.status.get("members").as_list()) {
    if (m.get("state").as_string() != "alive") continue;
    auto at = parse_address(m.get("address").as_string());
    if (!at) continue;
    // A member slow to answer costs at most a fraction of the interval.
    if (auto ms = ask_status(*at, std::min(o.timeout_ms, 300u)); ms.ok()) {
      s.vvs[m.get("name").as_string()] = vv_of(*ms);
    }
  }
  return s;
}

// Per origin, the highest seq any member holds.
std::map<std::string, int64_t> newest(const Sample& s) {
  std::map<std::string, int64_t> top;
  for (const auto& [member, vv] : s.vvs) {
    for (const auto& [origin, seq] : vv) top[origin] = std::max(top[origin], seq);
  }
  return top;
}

// How many writes `member` lacks, "-" when it did not answer.
std::string lag_of(const Sample& s, const std::string& member) {
  auto it = s.vvs.find(member);
  if (it == s.vvs.end()) return "-";
  int64_t lag = 0;
  for (const auto& [origin, seq] : newest(s)) {
    auto have = it->second.find(origin);
    lag += seq - (have == it->second.end() ? 0 : have->second);
  }
  return std::to_string(lag);
}

std::string num_or_dash(const wire::Value& v, double scale = 1, int decimals = 0) {
  if (!v.is_int()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, static_cast<double>(v.as_int()) / scale);
  return buf;
}

// The rate of counter `field` of "datagrams" (or of the status itself when
// `top`) between two samples, per second; "-" without a previous sample.
std::string rate(const Sample& cur, const std::optional<Sample>& prev, const char* field, bool top = false) {
  if (!prev || cur.at_ms <= prev->at_ms) return "-";
  auto get = [&](const Sample& s) {
    return (top ? s.status.get(field) : s.status.get("datagrams").get(field)).as_int();
  };
  const double per_s = static_cast<double>(get(cur) - get(*prev)) * 1000.0 / static_cast<double>(cur.at_ms - prev->at_ms);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", per_s < 0 ? 0 : per_s);
  return buf;
}

void header(std::ostream& out, const Sample& s, const std::optional<Sample>& prev, const std::string& address) {
  size_t alive = 0;
  const auto& members = s.status.get("members").as_list();
  for (const auto& m : members) alive += m.get("state").as_string() == "alive" ? 1 : 0;
  out << "meshkv top  node " << s.status.get("id").as_string() << " (" << address << ")  keys "
      << s.status.get("keys").as_int() << "  tombstones " << s.status.get("tombstones").as_int() << "  members "
      << alive << "/" << members.size() << " alive  clock " << s.status.get("clock").get("guard").as_string()
      << "\n";
  out << "writes/s " << rate(s, prev, "writes", true) << "  datagrams/s in " << rate(s, prev, "received") << " out "
      << rate(s, prev, "sent") << "  bytes/s in " << rate(s, prev, "bytes_received") << " out "
      << rate(s, prev, "bytes_sent") << "  retransmissions " << s.status.get("datagrams").get("retransmits").as_int()
      << "\n\n";
}

void members_view(std::ostream& out, const Sample& s) {
  char line[256];
  std::snprintf(line, sizeof line, "%-20s %-8s %9s %11s %7s %12s\n", "MEMBER", "STATE", "RTT_MS", "OFFSET_MS", "LAG",
                "CONTACT_MS");
  out << "members\n" << line;
  const std::string self = s.status.get("id").as_string();
  std::snprintf(line, sizeof line, "%-20s %-8s %9s %11s %7s %12s\n", self.c_str(), "self", "-", "0",
                lag_of(s, self).c_str(), "-");
  out << line;
  for (const auto& m : s.status.get("members").as_list()) {
    const std::string name = m.get("name").as_string();
    std::snprintf(line, sizeof line, "%-20s %-8s %9s %11s %7s %12s\n", name.c_str(),
                  m.get("state").as_string().c_str(), num_or_dash(m.get("rtt_us"), 1000, 2).c_str(),
                  num_or_dash(m.get("clock_offset_ms")).c_str(), lag_of(s, name).c_str(),
                  num_or_dash(m.get("last_contact_ms_ago")).c_str());
    out << line;
  }
}

void lag_view(std::ostream& out, const Sample& s) {
  // Rows: members; columns: origins; a cell: the writes of that origin the
  // member lacks ("." none, "?" the member did not answer).
  const auto top = newest(s);
  out << "lag matrix (writes each member lacks, by origin)\n";
  char cell[64];
  std::snprintf(cell, sizeof cell, "%-20s", "MEMBER \\ ORIGIN");
  out << cell;
  for (const auto& [origin, seq] : top) {
    std::snprintf(cell, sizeof cell, " %10.10s", origin.c_str());
    out << cell;
  }
  out << "\n";
  std::vector<std::string> names = {s.status.get("id").as_string()};
  for (const auto& m : s.status.get("members").as_list()) names.push_back(m.get("name").as_string());
  for (const auto& name : names) {
    std::snprintf(cell, sizeof cell, "%-20s", name.c_str());
    out << cell;
    auto it = s.vvs.find(name);
    for (const auto& [origin, seq] : top) {
      std::string v = "?";
      if (it != s.vvs.end()) {
        auto have = it->second.find(origin);
        const int64_t lag = seq - (have == it->second.end() ? 0 : have->second);
        v = lag == 0 ? "." : std::to_string(lag);
      }
      std::snprintf(cell, sizeof cell, " %10s", v.c_str());
      out << cell;
    }
    out << "\n";
  }
}

void traffic_view(std::ostream& out, const Sample& s, const std::optional<Sample>& prev) {
  const wire::Value& d = s.status.get("datagrams");
  out << "traffic                total        per second\n";
  char line[128];
  for (const char* f : {"sent", "received", "bytes_sent", "bytes_received", "retransmits", "anti_entropy_rounds",
                        "chunks_sent", "chunks_received", "duplicates", "dropped", "probes", "probe_failures",
                        "injected_drops", "injected_dups", "injected_corrupts", "injected_delays"}) {
    std::snprintf(line, sizeof line, "%-20s %12lld %12s\n", f, static_cast<long long>(d.get(f).as_int()),
                  rate(s, prev, f).c_str());
    out << line;
  }
  std::snprintf(line, sizeof line, "%-20s %12lld %12s\n", "writes (local)",
                static_cast<long long>(s.status.get("writes").as_int()), rate(s, prev, "writes", true).c_str());
  out << line;
  const wire::Value& f = s.status.get("faults");
  out << "faults injected now: " << (f.is_null() || !f.get("active").as_bool() ? "none" : f.to_json()) << "\n";
}

std::string frame(const Sample& s, const std::optional<Sample>& prev, const std::string& address, View v,
                  bool all) {
  std::ostringstream out;
  header(out, s, prev, address);
  if (all || v == View::kMembers) members_view(out, s);
  if (all) out << "\n";
  if (all || v == View::kLag) lag_view(out, s);
  if (all) out << "\n";
  if (all || v == View::kTraffic) traffic_view(out, s, prev);
  return out.str();
}

// The terminal in the mode a full-screen view needs, restored by the
// destructor on every way out: no echo, keys one by one (Ctrl-C still
// interrupts), the alternate screen, no cursor.
class Screen {
 public:
  Screen() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    active_ = true;
    std::cout << "\033[?1049h\033[?25l" << std::flush;
  }
  ~Screen() {
    if (!active_) return;
    std::cout << "\033[?25h\033[?1049l" << std::flush;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  void draw(const std::string& body) {
    winsize ws{};
    const size_t cols = ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    const size_t rows = ws.ws_row > 0 ? ws.ws_row : 24;
    std::istringstream in(body);
    std::string out = "\033[H\033[2J", line;
    for (size_t r = 0; r < rows && std::getline(in, line); ++r) {
      out += line.substr(0, cols);
      if (r + 1 < rows) out += "\r\n";
    }
    std::cout << out << std::flush;
  }

 private:
  termios saved_{};
  bool active_ = false;
};

int run_live(const Endpoint& at, const TopOptions& o, View view) {
  std::signal(SIGINT, on_stop);
  std::signal(SIGTERM, on_stop);
  std::signal(SIGHUP, on_stop);
  Screen screen;
  std::optional<Sample> prev, cur;
  std::string error;
  int64_t next = 0;
  static const char* kKeys = "\n\nm members  l lag matrix  t traffic  tab next view  q quit";
  while (!g_stop) {
    if (now_ms() >= next) {
      auto s = take_sample(at, o);
      if (s.ok()) {
        prev = std::move(cur);
        cur = std::move(*s);
        error.clear();
      } else {
        error = s.status().message();
      }
      next = now_ms() + o.interval_ms;
      screen.draw(cur ? frame(*cur, prev, at.to_string(), view, false) + (error.empty() ? "" : "\n" + error) + kKeys
                      : "meshkv top: " + error + kKeys);
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int wait = static_cast<int>(std::max<int64_t>(0, next - now_ms()));
    if (::poll(&p, 1, wait) <= 0) continue;  // a tick, or a signal (g_stop)
    char c = 0;
    if (::read(STDIN_FILENO, &c, 1) != 1) {
      if (!(p.revents & POLLIN) || (p.revents & (POLLHUP | POLLERR))) break;  // the terminal went away
      continue;
    }
    const View before = view;
    if (c == 'q' || c == 'Q' || c == 4) break;
    if (c == 'm') view = View::kMembers;
    if (c == 'l') view = View::kLag;
    if (c == 't') view = View::kTraffic;
    if (c == '\t') view = static_cast<View>((static_cast<int>(view) + 1) % 3);
    if (view != before && cur) {
      screen.draw(frame(*cur, prev, at.to_string(), view, false) + (error.empty() ? "" : "\n" + error) + kKeys);
    }
  }
  return kExitOk;
}

}  // namespace

Handler setup_top(CLI::App& sub) {
  auto o = std::make_shared<TopOptions>();
  sub.footer(
      "A live full-screen view of one node's mesh, refreshed every --interval ms: members\n"
      "(state, RTT, clock offset, version-vector lag: writes a member lacks), the lag\n"
      "matrix across every member (by origin), and traffic (datagrams, bytes, writes,\n"
      "anti-entropy rounds, retransmissions, injected faults; totals and rates).\n"
      "Keys: m members, l lag matrix, t traffic, tab the next view, q quit.\n"
      "Each refresh asks the node, and each member it sees alive, for its status.\n"
      "--once prints every view once (rates need two samples and show '-') and exits:\n"
      "0, or 3 when the node does not answer.");
  sub.add_option("--node", o->node, "node to watch, HOST:PORT (default 127.0.0.1:7946, or $MESHKV_NODE)")
      ->type_name("HOST:PORT")
      ->envname("MESHKV_NODE");
  sub.add_flag("--once", o->once, "print one frame with every view and exit");
  sub.add_option("--view", o->view, "the view to start with: members (default), lag or traffic")
      ->check(CLI::IsMember({"members", "lag", "traffic"}));
  sub.add_option("--interval", o->interval_ms, "refresh period (default 1000)")
      ->type_name("MS")
      ->check(CLI::Range(100u, 60'000u));
  sub.add_option("--timeout", o->timeout_ms, "give up on a request after this long (default 1000)")
      ->type_name("MS")
      ->check(CLI::Range(1u, 60'000u));
  return [o] {
    auto at = parse_flag_address(o->node);
    if (!at) return kExitUsage;
    const View view = o->view == "lag" ? View::kLag : o->view == "traffic" ? View::kTraffic : View::kMembers;
    if (o->once || ::isatty(STDIN_FILENO) != 1 || ::isatty(STDOUT_FILENO) != 1) {
      if (!o->once) std::cerr << "meshkv top: not a terminal; printing one frame (--once)\n";
      auto s = take_sample(*at, *o);
      if (!s.ok()) {
        std::cerr << "meshkv top: " << s.status().message() << "\n";
        return kExitUnreachable;
      }
      std::cout << frame(*s, std::nullopt, at->to_string(), view, true);
      return kExitOk;
    }
    return run_live(*at, *o, view);
  };
}

}  // namespace meshkv::cli
