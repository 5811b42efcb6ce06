// Value: a small self-describing tree (null, bool, integer, string, list,
// object) carried in control payloads. Control replies are Values so that a
// newer node can add fields an older client simply ignores, and `--json` is a
// direct rendering. Objects keep insertion order, which is the output order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace meshkv::wire {

class Value {
 public:
  using List = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int v) : v_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : v_(v) {}
  Value(uint64_t v) : v_(static_cast<int64_t>(v)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(List l) : v_(std::move(l)) {}
  Value(Object o) : v_(std::move(o)) {}

  static Value object() { return Value(Object{}); }
  static Value list() { return Value(List{}); }

  bool is_null() const { return v_.index() == 0; }
  bool is_bool() const { return v_.index() == 1; }
  bool is_int() const { return v_.index() == 2; }
  bool is_string() const { return v_.index() == 3; }
  bool is_list() const { return v_.index() == 4; }
  bool is_object() const { return v_.index() == 5; }

  bool as_bool() const { return is_bool() && std::get<bool>(v_); }
  int64_t as_int() const { return is_int() ? std::get<int64_t>(v_) : 0; }
  const std::string& as_string() const;
  const List& as_list() const;
  const Object& as_object() const;
  List& mutable_list() { return std::get<List>(v_); }

  // Object access: get() returns a null Value when the field is absent.
  const Value& get(std::string_view name) const;
  Value& set(std::string name, Value v);  // REQUIRES: is_object()
  Value& push(Value v);                   // REQUIRES: is_list()

  // Compact JSON, always valid: a JSON document holds text, and values are
  // bytes. A string field NAME whose bytes are not UTF-8 is written as
  // "NAME_base64" holding them in base64 (RFC 4648, with padding); such a
  // string in a list as {"base64": "..."}; in an object's field name,
  // each byte that is not part of valid UTF-8 as U+FFFD.
  std::string to_json() const;

  friend bool operator==(const Value&, const Value&) = default;

 private:
  std::variant<std::monostate, bool, int64_t, std::string, List, Object> v_;
};

}  // namespace meshkv::wire
