#include "utf8.h"

#include <cstdint>

namespace meshkv::cli {

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

size_t decode_utf8(const unsigned char* p, size_t n, wchar_t* out) {
  const unsigned char b = p[0];
  size_t len = 1;
  uint32_t cp = b;
  uint32_t min = 0;
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2, cp = b & 0x1F, min = 0x80;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3, cp = b & 0x0F, min = 0x800;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4, cp = b & 0x07, min = 0x10000;
  } else if (b >= 0x80) {
    *out = kReplacement;
    return 1;
  }
  for (size_t i = 1; i < len; ++i) {
    if (i == n) return 0;
    if ((p[i] & 0xC0) != 0x80) {
      *out = kReplacement;
      return 1;
    }
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement, len = 1;
  *out = static_cast<wchar_t>(cp);
  return len;
}

std::wstring utf8_to_wide(std::string_view s) {
  std::wstring out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    wchar_t c = 0;
    size_t used = decode_utf8(p + i, s.size() - i, &c);
    if (used == 0) c = kReplacement, used = 1;  // cut short by the end
    out += c;
    i += used;
  }
  return out;
}

std::string wide_to_utf8(std::wstring_view w) {
  std::string out;
  out.reserve(w.size());
  for (const wchar_t c : w) append_utf8(out, static_cast<uint32_t>(c));
  return out;
}

int code_point_columns(wchar_t wc) {
  const auto c = static_cast<uint32_t>(wc);
  struct Range {
    uint32_t lo, hi;
  };
  static constexpr Range kZero[] = {
      {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
      {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
      {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F},
      {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0x1F3FB, 0x1F3FF}, {0xE0100, 0xE01EF}};
  static constexpr Range kWide[] = {
      {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
      {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
      {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
      {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
      {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
      {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
      {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
      {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
      {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
      {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
      {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
      {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x18AFF},
      {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E},
      {0x1F191, 0x1F19A}, {0x1F200, 0x1F2FF}, {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF},
      {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x3FFFD}};
  auto in = [c](const auto& ranges) {
    for (const Range& r : ranges) {
      if (c < r.lo) return false;  // sorted: no later range can hold it
      if (c <= r.hi) return true;
    }
    return false;
  };
  if (c < 0x300) return 1;
  if (in(kZero)) return 0;
  return in(kWide) ? 2 : 1;
}

size_t display_columns(std::string_view s) {
  size_t cols = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    if (p[i] < 0x80) {
      ++cols, ++i;
      continue;
    }
    wchar_t c = 0;
    size_t used = decode_utf8(p + i, s.size() - i, &c);
    if (used == 0) used = 1;
    cols += static_cast<size_t>(code_point_columns(c));
    i += used;
  }
  return cols;
}

std::string fit_columns(std::string_view s, size_t max) {
  if (display_columns(s) <= max) return std::string(s);
  static constexpr std::string_view kEllipsis = "\xe2\x80\xa6";
  if (max == 0) return {};
  const size_t room = max - 1;  // the ellipsis takes one column
  size_t cols = 0, end = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    wchar_t c = 0;
    size_t used = p[i] < 0x80 ? (c = p[i], 1) : decode_utf8(p + i, s.size() - i, &c);
    if (used == 0) used = 1;
    const auto w = static_cast<size_t>(code_point_columns(c));
    if (cols + w > room) break;
    cols += w;
    i += used;
    // A zero-width mark stays with the character before it.
    end = i;
  }
  return std::string(s.substr(0, end)) + std::string(kEllipsis);
}

}  // namespace meshkv::cli
