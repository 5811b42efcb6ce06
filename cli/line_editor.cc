#include "line_editor.h"

#include <langinfo.h>
#include <poll.h>
#include <unistd.h>

// clang-format off
#include <cstdio>
#include <histedit.h>
// clang-format on

#include <cerrno>
#include <clocale>
#include <cstring>
#include <cwchar>
#include <iostream>
#include <optional>
#include <utility>

#include "utf8.h"

namespace meshkv::cli {

namespace {

constexpr unsigned char kCtrlC = 0x03;
constexpr wchar_t kCtrlD = 0x04;
// Bytes read from the terminal per call of on_readable(): a paste is edited
// in slices of this size, between which the event loop runs.
constexpr size_t kReadBudget = 64 * 1024;
// Inside a key sequence (Escape [ A) the rest is waited for this long: the
// terminal sends it at once, and a person never leaves the loop waiting.
constexpr int kSequenceWaitMs = 50;
constexpr size_t kSequenceBytes = 16;
constexpr size_t kHistoryLineMax = 4096;

// libedit reads, measures and prints wide characters through LC_CTYPE, which
// is "C" (ASCII only) until set. Only LC_CTYPE: number formatting stays "C".
void use_utf8_locale() {
  if (std::setlocale(LC_CTYPE, "") != nullptr && std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0) {
    return;
  }
  std::setlocale(LC_CTYPE, "C.UTF-8");
}

// libedit's output FILE: everything it writes is gathered here and reaches
// the terminal in one write per slice of input, not one per character.
ssize_t gather(void* cookie, const char* buf, size_t n) {
  static_cast<std::string*>(cookie)->append(buf, n);
  return static_cast<ssize_t>(n);
}

// Writes all of `s`, waiting for a terminal that lags (its descriptor may
// have been made non-blocking by another process sharing it); gives up on a
// terminal that accepts nothing for a second.
void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n > 0) {
      s.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    pollfd p{fd, POLLOUT, 0};
    if (n == 0 || errno != EAGAIN || ::poll(&p, 1, 1000) <= 0) return;
  }
}

// Terminal columns of `w` as libedit draws it (a control character as ^X).
size_t columns(std::wstring_view w) {
  size_t n = 0;
  for (const wchar_t c : w) {
    const int cw = ::wcwidth(c);
    n += cw < 0 ? 2 : static_cast<size_t>(cw);
  }
  return n;
}

}  // namespace

struct LineEditor::Impl {
  Options opts;
  EditLine* el = nullptr;
  HistoryW* hist = nullptr;
  FILE* out = nullptr;  // libedit's output, gathered in out_buf
  std::string out_buf;
  std::wstring prompt;
  std::string load_warning;
  // Bytes read from the terminal; those from in_pos on are not edited yet.
  std::string in;
  size_t in_pos = 0;
  wchar_t inject = 0;  // handed to libedit before any input
  bool discarding = false;  // skipping the rest of an overlong line
  bool cancelled = false;   // the line ends because of Ctrl-C
  bool too_long = false;    // the line ends after being discarded
  bool eof = false;
  bool editing = false;         // between start() and stop()
  bool showing_prompt = false;  // the prompt and the line are on screen

  ~Impl();
  static Impl& of(EditLine* el);
  static int read_char(EditLine* el, wchar_t* wc);
  static wchar_t* prompt_of(EditLine* el);
  static unsigned char complete(EditLine* el, int ch);

  void configure();
  void open_history();
  void fill(int wait_ms, size_t budget);
  int next_char(wchar_t* wc);
  bool prepare_next();
  size_t line_chars() const;
  std::optional<Event> finished() const;
  bool deliver(Event ev, const LineHandler& on_line);
  void replace_word(size_t typed, const std::wstring& with);
  void print_above(std::string_view text);
  void clear_edit_area();
  void flush_out();
  void stop();
};

LineEditor::Impl::~Impl() {
  stop();
  if (el != nullptr) el_end(el);  // restores the terminal's original settings
  if (hist != nullptr) history_wend(hist);
  flush_out();
  if (out != nullptr) std::fclose(out);
}

LineEditor::Impl& LineEditor::Impl::of(EditLine* el) {
  void* self = nullptr;
  el_get(el, EL_CLIENTDATA, &self);
  return *static_cast<Impl*>(self);
}

int LineEditor::Impl::read_char(EditLine* el, wchar_t* wc) { return of(el).next_char(wc); }

wchar_t* LineEditor::Impl::prompt_of(EditLine* el) { return of(el).prompt.data(); }

void LineEditor::Impl::configure() {
  el_set(el, EL_CLIENTDATA, this);
  el_set(el, EL_EDITOR, "emacs");
  el_set(el, EL_SIGNAL, 0);  // signals belong to the event loop
  el_wset(el, EL_PROMPT, &Impl::prompt_of);
  el_wset(el, EL_GETCFN, &Impl::read_char);
  // Ctrl-C arrives as a byte while editing, to cancel the line; SIGINT from
  // elsewhere still makes the node leave.
  el_set(el, EL_SETTY, "-d", "-isig", nullptr);
  // Bindings that would read further keys inside libedit, blocking the loop
  // until a person types: incremental search (Ctrl-R becomes a search for
  // the text before the cursor), quoted insert and the command line.
  el_set(el, EL_BIND, "^R", "ed-search-prev-history", nullptr);
  el_set(el, EL_BIND, "^V", "ed-unassigned", nullptr);
  el_set(el, EL_BIND, "^[x", "ed-unassigned", nullptr);
  el_set(el, EL_BIND, "^[X", "ed-unassigned", nullptr);
  // Wide, with static strings: the narrow EL_ADDFN copies them and leaks.
  el_wset(el, EL_ADDFN, L"meshkv-complete", L"complete the word at the cursor", &Impl::complete);
  el_set(el, EL_BIND, "^I", "meshkv-complete", nullptr);
}

void LineEditor::Impl::open_history() {
  HistEventW ev;
  hist = history_winit();
  history_w(hist, &ev, H_SETSIZE, static_cast<int>(opts.history_size));
  history_w(hist, &ev, H_SETUNIQUE, 1);
  el_wset(el, EL_HIST, history_w, hist);
  if (opts.history_file.empty()) return;
  errno = 0;
  if (history_w(hist, &ev, H_LOAD, opts.history_file.c_str()) >= 0 || errno == ENOENT) return;
  // Not written either: it may be something else under that name.
  load_warning = "cannot read the history file " + opts.history_file +
                 (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()) +
                 "; history is kept for this session only";
  opts.history_file.clear();
}

// Appends what the terminal holds, up to `budget` bytes, waiting at most
// `wait_ms` for the first byte.
void LineEditor::Impl::fill(int wait_ms, size_t budget) {
  if (in_pos == in.size()) {
    in.clear();
    in_pos = 0;
  }
  char buf[16384];
  for (size_t got = 0; got < budget && !eof;) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (::poll(&p, 1, got == 0 ? wait_ms : 0) <= 0) return;
    const ssize_t n = ::read(STDIN_FILENO, buf, std::min(sizeof buf, budget - got));
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      got += static_cast<size_t>(n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      eof = true;  // hung up (EIO) or closed
    } else {
      return;
    }
  }
}

// libedit's source of characters. At the start of a command there is always
// input (prepare_next); within a key sequence the rest is waited for
// briefly, after which the sequence is abandoned (-1, EAGAIN).
int LineEditor::Impl::next_char(wchar_t* wc) {
  if (inject != 0) {
    *wc = std::exchange(inject, 0);
    return 1;
  }
  if (in_pos == in.size()) fill(kSequenceWaitMs, kSequenceBytes);
  if (in_pos == in.size()) {
    errno = EAGAIN;
    return -1;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t used = decode_utf8(p + in_pos, in.size() - in_pos, wc);
  if (used == 0) {
    fill(kSequenceWaitMs, kSequenceBytes);
    p = reinterpret_cast<const unsigned char*>(in.data());
    used = decode_utf8(p + in_pos, in.size() - in_pos, wc);
  }
  if (used == 0) *wc = kReplacement, used = 1;
  in_pos += used;
  return 1;
}

size_t LineEditor::Impl::line_chars() const {
  const LineInfoW* li = el_wline(el);
  return static_cast<size_t>(li->lastchar - li->buffer);
}

// At a command boundary, handles what libedit must not see: Ctrl-C, and the
// rest of a line already over the limit (so that libedit never holds more
// than max_line_bytes characters). Returns whether libedit has input.
bool LineEditor::Impl::prepare_next() {
  if (inject != 0) return true;
  while (in_pos < in.size()) {  // each pass consumes a byte or returns
    const auto b = static_cast<unsigned char>(in[in_pos]);
    if (b == kCtrlC) {
      ++in_pos;
      discarding = false;
      cancelled = true;
      std::fputs("^C", out);
      inject = L'\n';
      return true;
    }
    if (!discarding && line_chars() <= opts.max_line_bytes) return true;
    discarding = true;
    ++in_pos;
    if (b == '\r' || b == '\n') {
      discarding = false;
      too_long = true;
      inject = L'\n';
      return true;
    }
  }
  return false;
}

// Whether the last command finished the line: ed-newline appends '\n'; end
// of file on an empty line leaves a lone ^D (libedit's unbuffered mode).
std::optional<LineEditor::Event> LineEditor::Impl::finished() const {
  const LineInfoW* li = el_wline(el);
  const size_t n = static_cast<size_t>(li->lastchar - li->buffer);
  if (n == 1 && li->buffer[0] == kCtrlD) return Event::kEnd;
  if (n == 0 || li->lastchar[-1] != L'\n') return std::nullopt;
  if (cancelled) return Event::kCancelled;
  if (too_long) return Event::kTooLong;
  return Event::kLine;
}

// Hands a finished line to on_line, then starts the next line. Returns
// whether reading goes on.
bool LineEditor::Impl::deliver(Event ev, const LineHandler& on_line) {
  std::string text;
  if (ev == Event::kLine) {
    const LineInfoW* li = el_wline(el);
    text = wide_to_utf8({li->buffer, static_cast<size_t>(li->lastchar - li->buffer) - 1});
    if (text.size() > opts.max_line_bytes) ev = Event::kTooLong, text.clear();
  }
  cancelled = too_long = false;
  if (ev == Event::kEnd) {
    stop();
    on_line(ev, text);
    return false;
  }
  flush_out();
  showing_prompt = false;
  if (!on_line(ev, text)) {
    stop();
    return false;
  }
  std::cout.flush();
  std::cerr.flush();
  // Leaving unbuffered mode ends the line; entering it again starts an empty
  // one and draws the prompt.
  el_set(el, EL_UNBUFFERED, 0);
  el_set(el, EL_UNBUFFERED, 1);
  showing_prompt = true;
  flush_out();
  return true;
}

// Replaces the last `typed` characters before the cursor with `with`.
void LineEditor::Impl::replace_word(size_t typed, const std::wstring& with) {
  el_deletestr(el, static_cast<int>(typed));
  if (!with.empty()) el_winsertstr(el, with.c_str());
}

// Tab: completes the word before the cursor as far as the candidates agree;
// lists them when they do not; shows the hint when there are none.
unsigned char LineEditor::Impl::complete(EditLine* el, int /*ch*/) {
  Impl& s = of(el);
  if (!s.opts.complete) return CC_ERROR;
  const LineInfoW* li = el_wline(el);
  const std::wstring_view before(li->buffer, static_cast<size_t>(li->cursor - li->buffer));
  const size_t start = before.find_last_of(L" \t") + 1;  // npos + 1 == 0
  const size_t typed = before.size() - start;
  const Completion c = s.opts.complete(wide_to_utf8(before));
  if (c.words.empty()) {
    if (c.hint.empty()) return CC_ERROR;
    s.print_above(c.hint);
    return CC_NORM;
  }
  std::wstring common = utf8_to_wide(c.words[0]);
  for (const std::string& w : c.words) {
    const std::wstring ww = utf8_to_wide(w);
    size_t k = 0;
    while (k < common.size() && k < ww.size() && common[k] == ww[k]) ++k;
    common.resize(k);
  }
  if (c.words.size() == 1) {
    s.replace_word(typed, common + L' ');
    return CC_REFRESH;
  }
  if (common.size() > typed) {
    s.replace_word(typed, common);
    return CC_REFRESH;
  }
  std::string list;
  for (const std::string& w : c.words) list += (list.empty() ? "" : "  ") + w;
  s.print_above(list);
  return CC_NORM;
}

// Moves the cursor to where the prompt starts and clears from there down,
// so that the line being typed can be drawn again below other output.
void LineEditor::Impl::clear_edit_area() {
  int cols = 0;
  int rows = 0;
  el_get(el, EL_GETTC, "co", &cols);
  el_get(el, EL_GETTC, "li", &rows);
  const LineInfoW* li = el_wline(el);
  const size_t width =
      columns(prompt) + columns({li->buffer, static_cast<size_t>(li->cursor - li->buffer)});
  size_t up = cols > 0 ? width / static_cast<size_t>(cols) : 0;
  if (rows > 1) up = std::min(up, static_cast<size_t>(rows - 1));
  std::string seq = "\r";
  if (up > 0) seq += "\033[" + std::to_string(up) + "A";
  seq += "\033[J";
  write_all(STDOUT_FILENO, seq);
}

void LineEditor::Impl::print_above(std::string_view text) {
  std::cout.flush();
  std::fflush(stdout);
  std::string line(text);
  line += '\n';
  if (!showing_prompt) {
    write_all(STDERR_FILENO, line);
    return;
  }
  flush_out();
  clear_edit_area();
  write_all(STDERR_FILENO, line);
  el_set(el, EL_REFRESH);
  flush_out();
}

void LineEditor::Impl::flush_out() {
  if (out != nullptr) std::fflush(out);
  write_all(STDOUT_FILENO, out_buf);
  out_buf.clear();
}

void LineEditor::Impl::stop() {
  if (!editing) return;
  if (showing_prompt) std::fputs("\n", out);
  el_set(el, EL_UNBUFFERED, 0);  // the terminal back in its normal mode
  editing = showing_prompt = false;
  flush_out();
}

LineEditor::LineEditor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LineEditor::~LineEditor() = default;

Result<std::unique_ptr<LineEditor>> LineEditor::open(Options opts) {
  use_utf8_locale();
  auto s = std::make_unique<Impl>();
  s->opts = std::move(opts);
  s->prompt = utf8_to_wide(s->opts.prompt);
  cookie_io_functions_t io{};
  io.write = gather;
  s->out = fopencookie(&s->out_buf, "w", io);
  if (s->out == nullptr) return Status::Io("cannot set up the prompt's output");
  std::setvbuf(s->out, nullptr, _IONBF, 0);
  // The terminal's descriptors are given apart from the FILEs: libedit sets
  // the terminal's modes through them and writes only through `out`.
  s->el = el_init_fd("meshkv", stdin, s->out, stderr, STDIN_FILENO, STDOUT_FILENO,
                     STDERR_FILENO);
  if (s->el == nullptr) return Status::Io("cannot set up the terminal for editing");
  s->configure();
  s->open_history();
  return std::unique_ptr<LineEditor>(new LineEditor(std::move(s)));
}

void LineEditor::start() {
  Impl& s = *impl_;
  if (s.editing) return;
  s.editing = s.showing_prompt = true;
  el_set(s.el, EL_UNBUFFERED, 1);  // raw mode, an empty line, the prompt
  s.flush_out();
}

bool LineEditor::on_readable(const LineHandler& on_line) {
  Impl& s = *impl_;
  if (!s.editing) return false;
  s.fill(0, kReadBudget);
  // Each round hands libedit one character (or abandons a key sequence), so
  // this ends within the input read here plus the few bytes of a sequence.
  for (size_t round = 0; round < 2 * kReadBudget && s.prepare_next(); ++round) {
    int n = 0;
    el_wgets(s.el, &n);
    if (const std::optional<Event> ev = s.finished()) {
      if (!s.deliver(*ev, on_line)) return false;
    }
  }
  s.flush_out();
  if (s.eof && s.in_pos == s.in.size()) {
    s.stop();
    on_line(Event::kEnd, {});
    return false;
  }
  return true;
}

bool LineEditor::has_input() const { return impl_->in_pos < impl_->in.size(); }

void LineEditor::print_above(std::string_view text) { impl_->print_above(text); }

Status LineEditor::remember(std::string_view line) {
  Impl& s = *impl_;
  if (line.size() > kHistoryLineMax) return Status::Ok();
  HistEventW ev;
  const std::wstring w = utf8_to_wide(line);
  history_w(s.hist, &ev, H_ENTER, w.c_str());
  if (s.opts.history_file.empty()) return Status::Ok();
  errno = 0;
  if (history_w(s.hist, &ev, H_SAVE, s.opts.history_file.c_str()) >= 0) return Status::Ok();
  const std::string why = errno != 0 ? std::strerror(errno) : "failed";
  const std::string path = std::exchange(s.opts.history_file, std::string());
  return Status::Io("cannot write the history file " + path + ": " + why +
                    "; history is kept for this session only");
}

void LineEditor::stop() { impl_->stop(); }

const std::string& LineEditor::load_warning() const { return impl_->load_warning; }

}  // namespace meshkv::cli
