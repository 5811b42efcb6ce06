#include "wire/value.h"

#include <sodium.h>

namespace meshkv::wire {

namespace {
const Value kNull;
const std::string kEmpty;
const Value::List kEmptyList;
const Value::Object kEmptyObject;

// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t utf8_sequence(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xbf) return 0;
  }
  return n;
}

bool valid_utf8(std::string_view s) {
  while (!s.empty()) {
    const size_t n = utf8_sequence(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

std::string base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Only for text that is valid UTF-8 (callers check or repair it first).
void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string repaired(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  std::string out;
  while (!s.empty()) {
    const size_t n = utf8_sequence(s);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

void json(std::string& out, const Value& v) {
  if (v.is_null()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_string()) {
    if (valid_utf8(v.as_string())) {
      json_string(out, v.as_string());
    } else {
      out += "{\"base64\":\"" + base64(v.as_string()) + "\"}";
    }
  } else if (v.is_list()) {
    out += '[';
    bool first = true;
    for (const Value& x : v.as_list()) {
      if (!first) out += ',';
      first = false;
      json(out, x);
    }
    out += ']';
  } else {
    out += '{';
    bool first = true;
    for (const auto& [k, x] : v.as_object()) {
      if (!first) out += ',';
      first = false;
      if (x.is_string() && !valid_utf8(x.as_string())) {
        json_string(out, repaired(k) + "_base64");
        out += ":\"" + base64(x.as_string()) + "\"";
        continue;
      }
      json_string(out, repaired(k));
      out += ':';
      json(out, x);
    }
    out += '}';
  }
}
}  // namespace

const std::string& Value::as_string() const {
  return is_string() ? std::get<std::string>(v_) : kEmpty;
}
const Value::List& Value::as_list() const { return is_list() ? std::get<List>(v_) : kEmptyList; }
const Value::Object& Value::as_object() const {
  return is_object() ? std::get<Object>(v_) : kEmptyObject;
}

const Value& Value::get(std::string_view name) const {
  for (const auto& [k, v] : as_object()) {
    if (k == name) return v;
  }
  return kNull;
}

Value& Value::set(std::string name, Value v) {
  auto& obj = std::get<Object>(v_);
  for (auto& [k, x] : obj) {
    if (k == name) {
      x = std::move(v);
      return x;
    }
  }
  obj.emplace_back(std::move(name), std::move(v));
  return obj.back().second;
}

Value& Value::push(Value v) {
  auto& l = std::get<List>(v_);
  l.push_back(std::move(v));
  return l.back();
}

std::string Value::to_json() const {
  std::string out;
  json(out, *this);
  return out;
}

}  // namespace meshkv::wire
