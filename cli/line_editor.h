// A line editor for a prompt that shares its thread with an event loop:
// libedit's native wide-character interface (histedit.h), fed from bytes the
// caller reads when the terminal is readable, so that neither a keystroke, a
// pause in the middle of a key sequence nor a 1 MiB paste blocks the loop.
//
// libedit's readline emulation is not used. In callback mode it converts the
// whole line at every keystroke (quadratic: a 16 KB paste took 20 s), and it
// keeps rl_line_buffer pointing into a conversion buffer that it reallocates
// once a line outgrows 1024 bytes, then writes a terminator through the
// stale pointer at every keystroke: the heap corruption that aborted nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace meshkv::cli {

// What Tab offers for the word being typed, given the text before the cursor:
// the words it may become, or (with none) a hint printed above the prompt.
struct Completion {
  std::vector<std::string> words;
  std::string hint;
};
using Completer = std::function<Completion(std::string_view before_cursor)>;

class LineEditor {
 public:
  enum class Event : uint8_t {
    kLine,       // Enter: the line, UTF-8, without its newline
    kCancelled,  // Ctrl-C: the line is discarded
    kTooLong,    // longer than max_line_bytes: discarded up to its newline
    kEnd,        // Ctrl-D on an empty line, or the terminal went away
  };
  // Called for each finished line with the cursor at the start of a fresh
  // row; returns false to stop reading (the prompt is quitting).
  using LineHandler = std::function<bool(Event, const std::string& line)>;

  struct Options {
    std::string prompt;
    std::string history_file;  // "" keeps history in memory only
    size_t history_size = 1000;
    size_t max_line_bytes = 0;  // REQUIRES: > 0
    Completer complete;
  };

  // Takes the terminal on stdin and stdout and switches LC_CTYPE to a UTF-8
  // locale (the environment's, else C.UTF-8). A history file that cannot be
  // read is reported by load_warning(), never an error, and is not written.
  // REQUIRES: stdin and stdout are terminals; one LineEditor at a time.
  static Result<std::unique_ptr<LineEditor>> open(Options opts);
  ~LineEditor();  // stop(), then gives the terminal its original settings
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Draws the prompt and puts the terminal in edit mode.
  void start();
  // Reads what stdin holds without blocking, edits with it, and calls
  // `on_line` for each finished line. Returns false once reading is over
  // (kEnd delivered, or on_line returned false); the terminal is then back in
  // its normal mode.
  bool on_readable(const LineHandler& on_line);
  // Input read but not edited yet: on_readable() stops after a bounded amount
  // of work, and the terminal may then show nothing new to read.
  bool has_input() const;
  // Prints `text` (a line, without its newline) above the prompt and redraws
  // the line being typed; before start() or after stop(), just prints it.
  void print_above(std::string_view text);
  // Adds a line to the history and saves the file. Lines over 4 KiB are not
  // kept. A file that cannot be written is reported once; history then stays
  // in memory.
  Status remember(std::string_view line);
  // Leaves edit mode, the cursor on a fresh row. Idempotent.
  void stop();

  const std::string& load_warning() const;

 private:
  struct Impl;
  explicit LineEditor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshkv::cli
