// UTF-8 and code points (wchar_t holds UTF-32 on Linux), for the prompt's
// line editor. Locale-independent: the terminal is taken to speak UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace meshkv::cli {

inline constexpr wchar_t kReplacement = 0xFFFD;

// Decodes one code point from p[0..n), n > 0. Returns the bytes used, or 0
// when p holds only the beginning of a sequence (more may follow). A byte
// that cannot start or continue a sequence, an overlong form, a surrogate or
// a value over U+10FFFF decodes as one byte of U+FFFD.
size_t decode_utf8(const unsigned char* p, size_t n, wchar_t* out);

// Whole strings; invalid input becomes U+FFFD, one per bad byte.
std::wstring utf8_to_wide(std::string_view s);
std::string wide_to_utf8(std::wstring_view w);

// Terminal columns of one code point, as a UTF-8 terminal draws it: 0 for
// combining marks, zero-width characters and variation selectors, 2 for East
// Asian wide and fullwidth characters and emoji, 1 otherwise. Kept here rather
// than wcwidth(3) so that tables measure the same whatever the locale.
int code_point_columns(wchar_t c);

// Terminal columns of UTF-8 text (bytes that are not UTF-8 count one each).
size_t display_columns(std::string_view s);

// `s` cut to at most `max` columns: unchanged when it fits, otherwise its
// longest prefix (whole code points) that leaves room for a final "…".
std::string fit_columns(std::string_view s, size_t max);

}  // namespace meshkv::cli
