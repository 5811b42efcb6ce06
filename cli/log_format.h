// How a headless node writes its log lines to stderr: text for people (a
// timestamp, the level, the message), or one JSON object per line for log
// shippers; plain for journald, which timestamps lines itself.
#pragma once

#include <optional>
#include <string>

#include "node/effects.h"

namespace meshkv::cli {

struct LogStyle {
  bool json = false;        // --log-format json
  bool timestamps = true;   // text: off under journald, which adds its own
  bool colour = false;      // text: the level coloured, on a terminal only
  bool journald = false;    // text: a "<N>" syslog priority prefix per line
};

// The style for `format` ("text" or "json") in this process's environment:
// journald when $JOURNAL_STREAM names the device and inode of stderr (as
// systemd sets it for a service's output), colour only when stderr is a
// terminal, not journald, and $NO_COLOR is unset or empty.
LogStyle detect_log_style(const std::string& format);

// One line without its newline, or nullopt below `threshold`. Text:
//   "2025-01-31T12:34:56.789Z WARN  clock: ..."   ("<4>WARN  clock: ..." under journald)
// JSON, every field always present:
//   {"time":"2025-01-31T12:34:56.789Z","level":"warn","event":"clock",
//    "message":"clock: ...","node":"a"}
// "event" is the message's subsystem prefix ("clock: ..." -> "clock") when it
// has one, else "log".
std::optional<std::string> format_log_line(const LogStyle& style, node::LogLevel threshold,
                                           const std::string& node_id, const node::LogLine& line);

}  // namespace meshkv::cli
