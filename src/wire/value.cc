#include "wire/value.h"

namespace meshkv::wire {

namespace {
const Value kNull;
const std::string kEmpty;
const Value::List kEmptyList;
const Value::Object kEmptyObject;

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

void json(std::string& out, const Value& v) {
  if (v.is_null()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_string()) {
    json_string(out, v.as_string());
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
      json_string(out, k);
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
