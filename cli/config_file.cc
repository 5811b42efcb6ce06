#include "config_file.h"

#include <iostream>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <toml++/toml.h>
#include <vector>

#include "commands.h"

namespace meshkv::cli {

namespace {

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date or time";
  }
}

// A setter reports what is wrong with the value, or "" when it took it.
using Setter = std::function<std::string(const toml::node&, node::Config&)>;

std::string expected(const char* what, const toml::node& v) {
  return std::string("expected ") + what + ", got " + type_name(v.type());
}

template <class T>
Setter integer(T node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    const auto* i = v.as_integer();
    if (i == nullptr) return expected("an integer", v);
    const int64_t x = i->get();
    if (x < 0) return "expected a non-negative integer, got " + std::to_string(x);
    if (static_cast<uint64_t>(x) > std::numeric_limits<T>::max()) {
      return "out of range: " + std::to_string(x);
    }
    c.*field = static_cast<T>(x);
    return "";
  };
}

// A signed integer (a clock offset may be negative).
Setter signed_integer(int64_t node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    const auto* i = v.as_integer();
    if (i == nullptr) return expected("an integer", v);
    c.*field = i->get();
    return "";
  };
}

// A probability: a float (or an integer 0 or 1) between 0 and 1.
Setter probability(double node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    double x = 0;
    if (const auto* f = v.as_floating_point()) {
      x = f->get();
    } else if (const auto* i = v.as_integer()) {
      x = static_cast<double>(i->get());
    } else {
      return expected("a number between 0 and 1", v);
    }
    if (!(x >= 0 && x <= 1)) return "expected a number between 0 and 1, got " + std::to_string(x);
    c.*field = x;
    return "";
  };
}

// An integer whose absence means "the default" (a std::optional field).
Setter optional_integer(std::optional<uint64_t> node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    const auto* i = v.as_integer();
    if (i == nullptr) return expected("an integer", v);
    if (i->get() < 0) return "expected a non-negative integer, got " + std::to_string(i->get());
    c.*field = static_cast<uint64_t>(i->get());
    return "";
  };
}

Setter boolean(bool node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    const auto* b = v.as_boolean();
    if (b == nullptr) return expected("true or false", v);
    c.*field = b->get();
    return "";
  };
}

Setter string(std::string node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    const auto* s = v.as_string();
    if (s == nullptr) return expected("a string", v);
    c.*field = s->get();
    return "";
  };
}

std::string set_listen(const toml::node& v, node::Config& c) {
  const auto* s = v.as_string();
  if (s == nullptr) return expected("a \"host:port\" string", v);
  auto e = parse_address(s->get());
  if (!e) return "expected \"host:port\" with an IP address, got \"" + s->get() + "\"";
  c.listen = *e;
  c.listen_explicit = true;
  return "";
}

std::string set_join(const toml::node& v, node::Config& c) {
  const auto* a = v.as_array();
  if (a == nullptr) return expected("an array of \"host:port\" strings", v);
  c.join.clear();
  for (const toml::node& item : *a) {
    const auto* s = item.as_string();
    if (s == nullptr) return "expected an array of \"host:port\" strings, found " + std::string(type_name(item.type()));
    auto e = parse_address(s->get());
    if (!e) return "not an address: \"" + s->get() + "\" (want host:port with an IP address)";
    c.join.push_back(*e);
  }
  return "";
}

Setter strings(std::vector<std::string> node::Config::*field) {
  return [field](const toml::node& v, node::Config& c) -> std::string {
    const auto* a = v.as_array();
    if (a == nullptr) return expected("an array of strings", v);
    (c.*field).clear();
    for (const toml::node& item : *a) {
      const auto* s = item.as_string();
      if (s == nullptr) return "expected an array of strings, found " + std::string(type_name(item.type()));
      (c.*field).push_back(s->get());
    }
    return "";
  };
}

const std::map<std::string, Setter, std::less<>>& setters() {
  using C = node::Config;
  static const std::map<std::string, Setter, std::less<>> table = {
      {"id", string(&C::id)},
      {"listen", set_listen},
      {"join", set_join},
      {"mtu", integer(&C::mtu)},
      {"gossip_interval_ms", integer(&C::gossip_interval_ms)},
      {"probe_interval_ms", integer(&C::probe_interval_ms)},
      {"probe_timeout_ms", integer(&C::probe_timeout_ms)},
      {"indirect_probes", integer(&C::indirect_probes)},
      {"suspicion_mult", integer(&C::suspicion_mult)},
      {"anti_entropy_interval_ms", integer(&C::anti_entropy_interval_ms)},
      {"max_retransmits", integer(&C::max_retransmits)},
      {"max_clock_skew_ms", integer(&C::max_clock_skew_ms)},
      {"clock_offset_ms", signed_integer(&C::clock_offset_ms)},
      {"max_clock_offset_ms", integer(&C::max_clock_offset_ms)},
      {"log_level", string(&C::log_level)},
      {"loss", probability(&C::loss)},
      {"data_dir", string(&C::data_dir)},
      {"sync", string(&C::sync)},
      {"sync_interval_ms", integer(&C::sync_interval_ms)},
      {"snapshot_log_bytes", integer(&C::snapshot_log_bytes)},
      {"tombstone_grace_ms", integer(&C::tombstone_grace_ms)},
      {"reap_after_ms", optional_integer(&C::reap_after_ms)},
      {"repair", boolean(&C::repair)},
      {"key_files", strings(&C::key_files)},
      {"identity", string(&C::identity)},
      {"allowed_peers", strings(&C::allowed_peers)},
      {"insecure", boolean(&C::insecure)},
      {"metrics", string(&C::metrics)},
  };
  return table;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Invalid(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::Invalid(path + ": cannot read: " + std::strerror(errno));
  return ss.str();
}

}  // namespace

std::optional<Endpoint> parse_address(std::string_view text) {
  unsigned port = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (!text.empty() && ec == std::errc() && p == text.data() + text.size()) {
    if (port == 0 || port > 65535) return std::nullopt;
    return Endpoint::v4(127, 0, 0, 1, static_cast<uint16_t>(port));
  }
  constexpr std::string_view kLocal = "localhost:";
  if (text.substr(0, kLocal.size()) == kLocal) {
    return Endpoint::parse("127.0.0.1:" + std::string(text.substr(kLocal.size())));
  }
  return Endpoint::parse(text);
}

Status load_config_file(const std::string& path, node::Config& cfg, ConfigSources& sources) {
  auto text = read_file(path);
  if (!text.ok()) return text.status();
  sources.file = path;
  toml::table doc;
  try {
    doc = toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return Status::Invalid(path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                           ": parse error: " + std::string(e.description()));
  }
  for (auto&& [key, value] : doc) {
    const std::string name(key.str());
    const unsigned line = key.source().begin.line;
    const std::string where = path + ":" + std::to_string(line) + ": ";
    auto it = setters().find(name);
    if (it == setters().end()) {
      // Keys are not always the flag's name: durations end in _ms and lists
      // are plural (key_files, allowed_peers), so name the likely one.
      std::vector<std::string> keys;
      for (const auto& entry : setters()) keys.push_back(entry.first);
      return Status::Invalid(where + "unknown key '" + name + "'" + did_you_mean(name, keys));
    }
    if (std::string why = it->second(value, cfg); !why.empty()) {
      return Status::Invalid(where + "key '" + name + "': " + why);
    }
    sources.file_line[name] = line;
  }
  return Status::Ok();
}

Status check_config(const node::Config& cfg, const ConfigSources& sources) {
  Status s = cfg.validate();
  if (s.ok()) return s;
  // validate() names the field first: "mtu: must be between ...".
  const std::string& msg = s.message();
  const auto colon = msg.find(':');
  if (colon == std::string::npos) return s;
  const std::string field = msg.substr(0, colon);
  const std::string why = msg.substr(colon + 1);
  if (auto f = sources.flag.find(field); f != sources.flag.end()) {
    return Status::Invalid(f->second + ":" + why);
  }
  if (auto l = sources.file_line.find(field); l != sources.file_line.end()) {
    return Status::Invalid(sources.file + ":" + std::to_string(l->second) + ": key '" + field +
                           "':" + why);
  }
  return s;
}

std::optional<Endpoint> parse_flag_address(const std::string& text, const char* flag) {
  auto e = parse_address(text);
  if (e && e->port == 0) e.reset();  // nothing listens on port 0: a typo, not an unreachable node
  if (!e) {
    std::cerr << "meshkv: " << flag << ": expected IP:PORT, [IPv6]:PORT, localhost:PORT or a bare PORT "
              << "(127.0.0.1), with a port from 1 to 65535; got '" << text << "'\n";
  }
  return e;
}

}  // namespace meshkv::cli
