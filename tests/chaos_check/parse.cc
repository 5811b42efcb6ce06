// The run directory's line formats (documented in check.h) into a History.
// Strict: a line with the wrong number of fields or a malformed number is an
// error, never skipped, so that a broken recording cannot pass as a clean run.
#include <charconv>

#include "chaos_check/check.h"

namespace meshkv::chaos {

namespace {

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t from = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > from) out.push_back(line.substr(from, i - from));
  }
  return out;
}

template <class T>
bool number(std::string_view s, T& out, int base = 10) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

// "phys logical origin" into a Stamp.
bool stamp(std::string_view phys, std::string_view logical, std::string_view origin, Stamp& out) {
  uint64_t p = 0, l = 0;
  if (!number(phys, p) || !number(logical, l) || origin.size() != 16 || !number(origin, out.origin, 16)) {
    return false;
  }
  if (p > crdt::Hlc::kMaxPhysical || l > crdt::Hlc::kLogicalMask) return false;
  out.hlc = crdt::Hlc::make(p, l);
  return true;
}

using Line = std::vector<std::string_view>;

bool parse_mode(const Line& f, History& h) {
  if (f[1] != "durable" && f[1] != "memory") return false;
  h.modes.push_back({std::string(f[0]), f[1] == "memory"});
  return true;
}

bool parse_kill(const Line& f, History& h) {
  Kill k{0, std::string(f[2])};
  return f[1] == "kill" && number(f[0], k.at_ms) && (h.kills.push_back(k), true);
}

bool parse_write(const Line& f, History& h) {
  Write w;
  w.node = f[4];
  w.key = f[6];
  w.value = f[7];
  if (!number(f[0], w.writer) || !number(f[1], w.seq) || !number(f[2], w.start_ms) ||
      !number(f[3], w.end_ms) || !number(f[8], w.rc) || (f[5] != "set" && f[5] != "del")) {
    return false;
  }
  w.del = f[5] == "del";
  if (f[9] != "-" || f[10] != "-" || f[11] != "-") {
    Stamp s;
    if (!stamp(f[9], f[10], f[11], s)) return false;
    w.stamp = s;
  }
  h.writes.push_back(std::move(w));
  return true;
}

bool parse_final(const Line& f, History& h) {
  Final x{std::string(f[0]), std::string(f[1]), std::string(f[2]), {}};
  return stamp(f[3], f[4], f[5], x.stamp) && (h.finals.push_back(std::move(x)), true);
}

bool parse_digest(const Line& f, History& h) {
  h.digests.push_back({std::string(f[0]), std::string(f[1])});
  return true;
}

bool parse_disturbance(const Line& f, History& h) {
  Disturbance d{std::string(f[0]), std::string(f[1]), 0, 0};
  return number(f[2], d.from_ms) && number(f[3], d.to_ms) && (h.disturbances.push_back(d), true);
}

bool parse_sample(const Line& f, History& h) {
  Sample s{0, std::string(f[1]), std::string(f[2]), std::string(f[3])};
  return number(f[0], s.at_ms) && (h.samples.push_back(std::move(s)), true);
}

// Far beyond what the client adds (1 to 5), and small enough that the
// checker's sums cannot overflow.
constexpr int64_t kMaxDelta = int64_t{1} << 32;

bool parse_incr(const Line& f, History& h) {
  Incr x;
  x.node = f[4];
  x.key = f[5];
  if (!number(f[0], x.client) || !number(f[1], x.seq) || !number(f[2], x.start_ms) || !number(f[3], x.end_ms) ||
      !number(f[6], x.delta) || !number(f[7], x.rc) || x.delta == 0 || x.delta > kMaxDelta ||
      x.delta < -kMaxDelta) {
    return false;
  }
  // The answer must agree with the exit status: only rc 0 is applied.
  x.refused = f[8] == "refused";
  if ((f[8] == "applied") != (x.rc == 0) || (f[8] != "applied" && !x.refused && f[8] != "unknown")) return false;
  h.incrs.push_back(std::move(x));
  return true;
}

bool parse_counter(const Line& f, History& h) {
  CounterFinal c{std::string(f[0]), std::string(f[1]), 0};
  return number(f[2], c.total) && (h.counters.push_back(std::move(c)), true);
}

bool parse_set_op(const Line& f, History& h) {
  SetOp x;
  x.node = f[4];
  x.key = f[5];
  x.member = f[7];
  if (!number(f[0], x.client) || !number(f[1], x.seq) || !number(f[2], x.start_ms) || !number(f[3], x.end_ms) ||
      !number(f[8], x.rc) || (f[6] != "sadd" && f[6] != "srem")) {
    return false;
  }
  x.add = f[6] == "sadd";
  x.refused = f[9] == "refused";
  if ((f[9] == "applied") != (x.rc == 0) || (f[9] != "applied" && !x.refused && f[9] != "unknown")) return false;
  h.sops.push_back(std::move(x));
  return true;
}

bool parse_set(const Line& f, History& h) {
  h.sets.push_back(SetFinal{std::string(f[0]), std::string(f[1]), std::string(f[2])});
  return true;
}

struct Format {
  std::string_view name;
  size_t fields;
  bool (*parse)(const Line&, History&);
};

constexpr Format kFormats[] = {
    {"modes", 2, parse_mode},     {"kills", 3, parse_kill},
    {"writes", 12, parse_write},  {"finals", 6, parse_final},
    {"digests", 2, parse_digest}, {"disturbances", 4, parse_disturbance},
    {"samples", 4, parse_sample}, {"incrs", 9, parse_incr},
    {"counters", 3, parse_counter}, {"sops", 10, parse_set_op},
    {"sets", 3, parse_set},
};

}  // namespace

Status parse_file(std::string_view name, std::string_view text, History& h) {
  const Format* fmt = nullptr;
  for (const Format& f : kFormats) {
    if (f.name == name) fmt = &f;
  }
  if (fmt == nullptr) return Status::Invalid("no run file is called " + std::string(name));
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const Line f = fields(line);
    if (f.empty()) continue;
    if (f.size() != fmt->fields || !fmt->parse(f, h)) {
      return Status::Invalid(std::string(name) + ":" + std::to_string(line_no) + ": malformed line '" +
                             std::string(line) + "' (" + std::to_string(fmt->fields) +
                             " fields expected; see chaos_check/check.h)");
    }
  }
  return Status::Ok();
}

}  // namespace meshkv::chaos
