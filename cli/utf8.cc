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

}  // namespace meshkv::cli
