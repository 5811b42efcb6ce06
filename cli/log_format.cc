#include "log_format.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "utf8.h"
#include "wire/value.h"

namespace meshkv::cli {

namespace {

const char* level_text(node::LogLevel l) {
  switch (l) {
    case node::LogLevel::kDebug: return "DEBUG";
    case node::LogLevel::kInfo: return "INFO ";
    case node::LogLevel::kWarn: return "WARN ";
    default: return "ERROR";
  }
}

const char* level_json(node::LogLevel l) {
  switch (l) {
    case node::LogLevel::kDebug: return "debug";
    case node::LogLevel::kInfo: return "info";
    case node::LogLevel::kWarn: return "warn";
    default: return "error";
  }
}

// syslog priorities, which journald reads from a "<N>" line prefix.
int priority(node::LogLevel l) {
  switch (l) {
    case node::LogLevel::kDebug: return 7;
    case node::LogLevel::kInfo: return 6;
    case node::LogLevel::kWarn: return 4;
    default: return 3;
  }
}

const char* colour(node::LogLevel l) {
  switch (l) {
    case node::LogLevel::kDebug: return "\033[2m";
    case node::LogLevel::kInfo: return "";
    case node::LogLevel::kWarn: return "\033[33m";
    default: return "\033[31m";
  }
}

std::string timestamp() {
  using namespace std::chrono;
  const auto t = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(t);
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// "clock: ..." -> "clock": a lowercase word (letters, digits, '-', '_')
// before ": ". Messages without one are plain "log" events.
std::string event_of(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && i < 24 &&
         ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9') || text[i] == '-' ||
          text[i] == '_')) {
    ++i;
  }
  if (i > 0 && i + 1 < text.size() && text[i] == ':' && text[i + 1] == ' ') return text.substr(0, i);
  return "log";
}

bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr || *js == '\0') return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

}  // namespace

LogStyle detect_log_style(const std::string& format) {
  LogStyle s;
  s.json = format == "json";
  s.journald = stderr_is_journal();
  s.timestamps = !s.journald;
  const char* no_color = std::getenv("NO_COLOR");
  s.colour = !s.journald && ::isatty(STDERR_FILENO) == 1 && (no_color == nullptr || *no_color == '\0');
  return s;
}

std::optional<std::string> format_log_line(const LogStyle& style, node::LogLevel threshold,
                                           const std::string& node_id, const node::LogLine& l) {
  if (l.level < threshold) return std::nullopt;
  if (style.json) {
    wire::Value v = wire::Value::object();
    v.set("time", timestamp());
    v.set("level", level_json(l.level));
    v.set("event", event_of(l.text));
    // Key names in messages may be any bytes: repaired, so that "message"
    // is always a JSON string.
    v.set("message", wide_to_utf8(utf8_to_wide(l.text)));
    v.set("node", node_id);
    return v.to_json();
  }
  std::string out;
  if (style.journald) out += "<" + std::to_string(priority(l.level)) + ">";
  if (style.timestamps) out += timestamp() + " ";
  const char* c = style.colour ? colour(l.level) : "";
  out += *c ? std::string(c) + level_text(l.level) + "\033[0m" : std::string(level_text(l.level));
  out += " " + l.text;
  return out;
}

}  // namespace meshkv::cli
