// meshkv loss: set, show or clear a running node's fault injection.
#include <CLI/CLI.hpp>
#include <charconv>
#include <iostream>

#include "commands.h"
#include "crdt/entry.h"
#include "config_file.h"
#include "net/control_client.h"
#include "output.h"

namespace meshkv::cli {

namespace {
struct LossOptions {
  std::string node = "127.0.0.1:7946";
  unsigned timeout_ms = 3000;
  bool json = false, clear = false;
  double drop = -1, dup = -1, corrupt = -1;
  std::string delay, direction, partition;
  std::vector<std::string> peers;
};

// "MS" or "MS:JITTER".
bool parse_delay(const std::string& s, int64_t& ms, int64_t& jitter) {
  const auto colon = s.find(':');
  const std::string a = s.substr(0, colon), b = colon == std::string::npos ? "0" : s.substr(colon + 1);
  auto num = [](const std::string& t, int64_t& out) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return ec == std::errc() && p == t.data() + t.size() && out >= 0 && out <= 60'000;
  };
  return num(a, ms) && num(b, jitter);
}

}  // namespace

std::string loss_arg(wire::Value& args, const std::string& name, const std::string& value) {
  auto ppm = [&](const char* field) -> std::string {
    char* end = nullptr;
    const double p = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(p >= 0 && p <= 1)) return name + ": a probability between 0 and 1";
    args.set(field, static_cast<int64_t>(p * 1'000'000.0 + 0.5));
    return "";
  };
  if (name == "drop") return ppm("drop_ppm");
  if (name == "dup") return ppm("dup_ppm");
  if (name == "corrupt") return ppm("corrupt_ppm");
  if (name == "delay") {
    int64_t ms = 0, jitter = 0;
    if (!parse_delay(value, ms, jitter)) return "delay: expected MS or MS:JITTER (0..60000)";
    args.set("delay_ms", ms);
    args.set("jitter_ms", jitter);
    return "";
  }
  if (name == "direction") {
    if (value != "out" && value != "in" && value != "both") return "direction: one of out, in, both";
    args.set("direction", value);
    return "";
  }
  if (name == "peer" || name == "partition") {
    const char* field = name == "peer" ? "peers" : "partition";
    wire::Value l = args.get(field).is_list() ? args.get(field) : wire::Value::list();
    for (const auto& n : split_commas(value)) l.push(n);
    args.set(field, std::move(l));
    return "";
  }
  return "unknown fault '" + name + "' (drop, dup, corrupt, delay, direction, peer, partition)";
}

Handler setup_loss(CLI::App& sub) {
  auto o = std::make_shared<LossOptions>();
  sub.footer(
      "Faults apply to the datagrams the node sends (--direction changes that), only to\n"
      "traffic with the --peer members when given. Options not given keep their current\n"
      "setting; with no option at all the active faults are shown.\n"
      "Examples:\n"
      "  meshkv loss --node 127.0.0.1:7001 --drop 0.3\n"
      "  meshkv loss --node 127.0.0.1:7001 --delay 50:20 --peer b\n"
      "  meshkv loss --node 127.0.0.1:7001 --partition c,d\n"
      "  meshkv loss --node 127.0.0.1:7001 --clear");
  sub.add_option("--node", o->node, "node to change, HOST:PORT (default 127.0.0.1:7946, or $MESHKV_NODE)")
      ->type_name("HOST:PORT")
      ->envname("MESHKV_NODE");
  sub.add_option("--drop", o->drop, "share of datagrams dropped, 0..1")->type_name("P")->check(CLI::Range(0.0, 1.0));
  sub.add_option("--dup", o->dup, "share of datagrams sent twice, 0..1")->type_name("P")->check(CLI::Range(0.0, 1.0));
  sub.add_option("--corrupt", o->corrupt, "share of datagrams with one bit flipped, 0..1")
      ->type_name("P")
      ->check(CLI::Range(0.0, 1.0));
  sub.add_option("--delay", o->delay, "added latency, with optional uniform jitter")->type_name("MS[:JITTER]");
  sub.add_option("--peer", o->peers, "apply only to traffic with this member (repeatable)")
      ->type_name("ID")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub.add_option("--partition", o->partition, "drop everything to and from these members")
      ->type_name("ID,...");
  sub.add_option("--direction", o->direction, "out (default), in or both")
      ->check(CLI::IsMember({"out", "in", "both"}));
  sub.add_flag("--clear", o->clear, "remove every fault (other options then start from none)");
  sub.add_option("--timeout", o->timeout_ms, "give up after this long (default 3000)")->type_name("MS");
  sub.add_flag("--json", o->json, "print the active faults as JSON");
  return [o] {
    auto ep = parse_flag_address(o->node);
    if (!ep) return kExitUsage;
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kLoss);
    if (o->clear) req.args.set("clear", true);
    std::vector<std::pair<std::string, std::string>> given;
    if (o->drop >= 0) given.emplace_back("drop", std::to_string(o->drop));
    if (o->dup >= 0) given.emplace_back("dup", std::to_string(o->dup));
    if (o->corrupt >= 0) given.emplace_back("corrupt", std::to_string(o->corrupt));
    if (!o->delay.empty()) given.emplace_back("delay", o->delay);
    if (!o->direction.empty()) given.emplace_back("direction", o->direction);
    for (const auto& p : o->peers) given.emplace_back("peer", p);
    if (!o->partition.empty()) given.emplace_back("partition", o->partition);
    for (const auto& [name, value] : given) {
      if (std::string err = loss_arg(req.args, name, value); !err.empty()) {
        std::cerr << "--" << err << " (got '" << value << "')\n";
        return kExitUsage;
      }
    }
    auto r = net::call(*ep, req, std::chrono::milliseconds(o->timeout_ms));
    return print_result(req, r, o->json, detect_style(1), std::cout, std::cerr);
  };
}

// Declared in commands.h: loss --peer/--partition and cluster partition lists.
std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(',', start);
    std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!part.empty()) out.push_back(part);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace meshkv::cli

namespace meshkv::cli {

std::optional<uint64_t> parse_duration_ms(std::string_view text, std::string* error) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view unit = text.substr(digits);
  uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (unit == "d") scale = 86'400'000;
  const auto bad = [&](const std::string& why) -> std::optional<uint64_t> {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  if (digits == 0 || scale == 0) {
    return bad("not a duration: '" + std::string(text) + "' (want a number and a unit: 500ms, 2s, 10m, 1h, 7d)");
  }
  if (digits > 12) return bad("duration '" + std::string(text) + "' is too long");
  uint64_t n = 0;
  for (size_t i = 0; i < digits; ++i) n = n * 10 + static_cast<uint64_t>(text[i] - '0');
  if (n == 0) return bad("a duration must be positive: '" + std::string(text) + "'");
  if (n > crdt::kMaxTtlMs / scale) return bad("duration '" + std::string(text) + "' is over ten years");
  return n * scale;
}

}  // namespace meshkv::cli
