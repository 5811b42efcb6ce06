// The result rows of meshkv_bench and their two renderings: aligned text and
// Markdown.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "bench/micro.h"

namespace meshkv::bench::micro {

namespace {
// Everything measured ends up here, and it is printed at the end.
volatile uint64_t g_sink = 0;

enum class Dir { kHigherIsBetter, kLowerIsBetter, kNone };

struct Row {
  std::string name;
  std::string unit;
  double best = 0;    // in `unit`: the best run's figure
  double median = 0;  // in `unit`
  size_t runs = 0;
  Dir dir = Dir::kNone;
  double aim = 0;
  std::string note;
};

std::vector<Row> g_rows;

std::string fmt_num(double v) {
  char buf[64];
  if (v >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  }
  return buf;
}

std::string fmt_aim(const Row& r) {
  if (r.dir == Dir::kNone) return "-";
  return (r.dir == Dir::kHigherIsBetter ? ">= " : "< ") + fmt_num(r.aim);
}

// Judged on the median: one lucky run does not meet an aim.
std::string verdict(const Row& r) {
  switch (r.dir) {
    case Dir::kHigherIsBetter: return r.median >= r.aim ? "ok" : "MISSED";
    case Dir::kLowerIsBetter: return r.median < r.aim ? "ok" : "MISSED";
    case Dir::kNone: return "";
  }
  return "";
}

}  // namespace

void consume(uint64_t v) { g_sink = g_sink + v; }
uint64_t checksum() { return g_sink; }

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Stats stats_of(std::vector<double> t) {
  Stats s;
  s.runs = t.size();
  if (t.empty()) return s;
  std::sort(t.begin(), t.end());
  s.best = t.front();
  const size_t n = t.size();
  s.median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
  return s;
}

void add_rate(std::string name, std::string unit, double work, const Stats& s, double scale,
              double aim, std::string note) {
  Row r;
  r.name = std::move(name);
  r.unit = std::move(unit);
  r.best = s.best > 0 ? work / s.best / scale : 0;
  r.median = s.median > 0 ? work / s.median / scale : 0;
  r.runs = s.runs;
  r.dir = aim > 0 ? Dir::kHigherIsBetter : Dir::kNone;
  r.aim = aim;
  r.note = std::move(note);
  g_rows.push_back(std::move(r));
}

void add_time(std::string name, std::string unit, const Stats& s, double scale, double aim,
              std::string note) {
  Row r;
  r.name = std::move(name);
  r.unit = std::move(unit);
  r.best = s.best / scale;
  r.median = s.median / scale;
  r.runs = s.runs;
  r.dir = aim > 0 ? Dir::kLowerIsBetter : Dir::kNone;
  r.aim = aim;
  r.note = std::move(note);
  g_rows.push_back(std::move(r));
}

void print_table() {
  const char* hdr[] = {"benchmark", "unit", "best", "median", "runs", "aim", "", "notes"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : g_rows) {
    cells.push_back({r.name, r.unit, fmt_num(r.best), fmt_num(r.median), std::to_string(r.runs),
                     fmt_aim(r), verdict(r), r.note});
  }
  constexpr size_t kCols = 8;
  size_t w[kCols];
  for (size_t c = 0; c < kCols; ++c) {
    w[c] = std::strlen(hdr[c]);
    for (const auto& row : cells) w[c] = std::max(w[c], row[c].size());
  }
  // Text columns left-aligned, numbers right-aligned.
  const bool right[kCols] = {false, false, true, true, true, true, false, false};
  auto line = [&](const std::vector<std::string>& v) {
    std::string s;
    for (size_t c = 0; c < kCols; ++c) {
      const std::string& x = v[c];
      std::string pad(w[c] - x.size(), ' ');
      s += right[c] ? pad + x : x + pad;
      if (c + 1 < kCols) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::printf("%s\n", s.c_str());
  };
  line(std::vector<std::string>(hdr, hdr + kCols));
  size_t total = 2 * (kCols - 1);
  for (size_t c = 0; c < kCols; ++c) total += w[c];
  std::printf("%s\n", std::string(total, '-').c_str());
  for (const auto& row : cells) line(row);
}

void print_markdown() {
  std::printf("| benchmark | unit | best | median | aim | notes |\n");
  std::printf("|---|---|--:|--:|--:|---|\n");
  for (const Row& r : g_rows) {
    std::string aim = fmt_aim(r);
    std::string v = verdict(r);
    if (!v.empty()) aim += v == "ok" ? " ✓" : " ✗";
    std::printf("| %s | %s | %s | %s | %s | %s |\n", r.name.c_str(), r.unit.c_str(),
                fmt_num(r.best).c_str(), fmt_num(r.median).c_str(), aim.c_str(),
                r.note.c_str());
  }
}

}  // namespace meshkv::bench::micro
