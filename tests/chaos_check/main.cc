// meshkv_chaos_check: the checker scripts/chaos.sh runs over a finished run's
// directory. Parse, check (check.h), print, exit.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "chaos_check/check.h"

namespace {

using meshkv::chaos::History;
using meshkv::chaos::Report;

constexpr size_t kShownPerCheck = 12;
constexpr char kChecks[] = {'a', 'b', 'c', 'd', 'e', 'f'};

void usage(std::FILE* out) {
  std::fputs(
      "Usage: meshkv_chaos_check [--grace-ms MS] [--t0 MS] RUN_DIR\n"
      "\n"
      "Checks a chaos run (scripts/chaos.sh) from the files in RUN_DIR: modes, kills,\n"
      "writes, finals, digests, disturbances, samples, incrs, counters, sops, sets\n"
      "(formats in tests/chaos_check/check.h). Checks (a) equal digests and equal\n"
      "listings, (b) no acknowledged write lost, (c) unique, increasing (hlc,\n"
      "origin) per origin, (d) no member seen dead while undisturbed, (e) every\n"
      "counter's total equal on all nodes and within what its increments allow,\n"
      "(f) every set equal on all nodes, holding only members something added and\n"
      "every acknowledged add that no remove could have seen.\n"
      "\n"
      "  --grace-ms MS  (d): how long after a disturbance \"dead\" is excused (5000)\n"
      "  --t0 MS        the run's start in ms since the epoch, for \"+12.3s\" in messages\n"
      "\n"
      "Prints a line per check, then each violation (at most 12 per check) and a line\n"
      "per failed check: \"(b) 2 violation(s): ...\".\n"
      "Exit status: 0 every check passed, 1 a violation, 2 usage or unreadable input.\n",
      out);
}

const char* meaning(char check) {
  switch (check) {
    case 'a': return "the nodes' final states differ";
    case 'b': return "final values do not match the acknowledged writes";
    case 'c': return "acknowledged (hlc, origin) not unique or not increasing per origin";
    case 'd': return "a node was declared dead while alive and reachable";
    case 'e': return "counter totals differ or do not match the acknowledged increments";
    default: return "sets differ, or do not match the acknowledged adds";
  }
}

bool load_run(const std::string& dir, History& h) {
  for (std::string_view name : meshkv::chaos::kRunFiles) {
    const std::string path = dir + "/" + std::string(name);
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "meshkv_chaos_check: cannot read %s\n", path.c_str());
      return false;
    }
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    if (meshkv::Status s = meshkv::chaos::parse_file(name, text, h); !s.ok()) {
      std::fprintf(stderr, "meshkv_chaos_check: %s/%s\n", dir.c_str(), s.message().c_str());
      return false;
    }
  }
  return true;
}

void print(const Report& r) {
  for (const std::string& line : r.summary) std::printf("%s\n", line.c_str());
  for (const char check : kChecks) {
    size_t shown = 0;
    for (const auto& v : r.violations) {
      if (v.check == check && shown++ < kShownPerCheck) std::printf("  (%c) %s\n", check, v.what.c_str());
    }
    if (shown > kShownPerCheck) std::printf("  (%c) ... and %zu more\n", check, shown - kShownPerCheck);
  }
  for (const char check : kChecks) {
    if (const size_t n = r.count(check)) std::printf("(%c) %zu violation(s): %s\n", check, n, meaning(check));
  }
}

bool parse_ms(const char* s, int64_t& out) {
  char* end = nullptr;
  out = std::strtoll(s, &end, 10);
  return *s != '\0' && *end == '\0' && out >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  meshkv::chaos::Options opts;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if ((a == "--grace-ms" || a == "--t0") && i + 1 < argc) {
      if (!parse_ms(argv[++i], a == "--t0" ? opts.t0_ms : opts.grace_ms)) {
        std::fprintf(stderr, "meshkv_chaos_check: %s needs a whole number of ms\n", a.c_str());
        return 2;
      }
    } else if (dir.empty() && !a.empty() && a[0] != '-') {
      dir = a;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (dir.empty()) {
    usage(stderr);
    return 2;
  }
  History h;
  if (!load_run(dir, h)) return 2;
  const Report r = meshkv::chaos::check(h, opts);
  print(r);
  return r.ok() ? 0 : 1;
}
