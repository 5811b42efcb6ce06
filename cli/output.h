// Rendering control responses for people (aligned text, colour on a
// terminal) and for scripts (--json). The prompt and the remote client both
// print through here, so a command looks the same in either.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "common/status.h"
#include "wire/messages.h"

namespace meshkv::cli {

struct Style {
  bool color = false;
  // Terminal columns tables must fit in; 0 when not known (not a terminal and
  // no COLUMNS), and then each cell is cut at kCellColumns.
  size_t columns = 0;
};

inline constexpr size_t kCellColumns = 64;

// Colour only when `fd` is a terminal and NO_COLOR is unset (no-color.org);
// the width from the terminal, or else from $COLUMNS.
Style detect_style(int fd);

// A value shown on one line of human output, cut with an ellipsis to fit
// what `st` leaves for it after `used` columns (full values: get, --json).
std::string fit_value(std::string_view escaped, const Style& st, size_t used);

// A value made safe for one table cell: backslash, newlines, tabs and other
// control bytes become escapes (\n, \t, \\, \xHH).
std::string escape(std::string_view s);

// The human rendering of a successful response to `req`. For get it is the
// raw value and a newline, so `$(meshkv get k)` is exactly the value.
std::string render(const wire::CtlRequest& req, const wire::Value& body, const Style& style);

// One line for a change streamed by `watch`: time (UTC), set/del, key,
// value, the writer and the HLC.
std::string render_change(const wire::Value& event, const Style& style);

// Adds one fault setting ("drop" "0.3", "delay" "50:10", "partition" "b,c",
// ...) to the arguments of a `loss` request. Returns "" or what is wrong.
// Shared by `meshkv loss` and the prompt's `loss`.
std::string loss_arg(wire::Value& args, const std::string& name, const std::string& value);

// The exit code of a refusal: its code, or 3 (unreachable or refused) for a
// code this build does not know.
int exit_code(wire::CtlCode code);

// Prints the outcome of one control call and returns the exit code:
// transport failures go to `err` (exit 3; a request over the frame limit,
// refused before sending, exit 2); a node's refusal prints its error to `err`
// and returns its code (1 negative, 2 usage, 3 refused); success prints
// render() or, with `json`, the body as one line of JSON. With `json` a
// refusal is one line {"error": MESSAGE, "code": EXIT} on `out` instead.
int print_result(const wire::CtlRequest& req, const Result<wire::CtlResponse>& result, bool json,
                 const Style& style, std::ostream& out, std::ostream& err);

}  // namespace meshkv::cli
