#include "wire/control_ops.h"

#include <algorithm>
#include <string>

namespace meshkv::wire {

namespace {
bool all_of_list(const Value& v, bool (Value::*is)() const) {
  if (!v.is_list()) return false;
  const auto& items = v.as_list();
  return std::all_of(items.begin(), items.end(), [is](const Value& x) { return (x.*is)(); });
}

bool has_type(const Value& v, ArgType t) {
  switch (t) {
    case ArgType::kString: return v.is_string();
    case ArgType::kInt: return v.is_int();
    case ArgType::kBool: return v.is_bool();
    case ArgType::kList: return v.is_list();
    case ArgType::kStringList: return all_of_list(v, &Value::is_string);
    case ArgType::kIntList: return all_of_list(v, &Value::is_int);
  }
  return false;
}

const char* type_phrase(ArgType t) {
  switch (t) {
    case ArgType::kString: return "a string";
    case ArgType::kInt: return "an integer";
    case ArgType::kBool: return "true or false";
    case ArgType::kList: return "a list";
    case ArgType::kStringList: return "a list of strings";
    case ArgType::kIntList: return "a list of integers";
  }
  return "?";
}
}  // namespace

std::optional<CtlOp> find_op(std::string_view name) {
  for (const OpSpec& s : kCtlOps) {
    if (s.name == name) return s.op;
  }
  return std::nullopt;
}

Result<CtlOp> check_request(std::string_view name, const Value& args) {
  const std::optional<CtlOp> op = find_op(name);
  if (!op) return Status::Invalid("unknown operation '" + std::string(name) + "'");
  const std::string prefix = std::string(name) + ": ";
  // A request without arguments may leave them out altogether.
  if (!args.is_object() && !args.is_null()) return Status::Invalid(prefix + "arguments must be an object");
  for (const ArgSpec& a : spec(*op).args) {
    const Value& v = args.get(a.name);
    if (v.is_null()) {
      if (a.required) return Status::Invalid(prefix + "missing '" + std::string(a.name) + "'");
      continue;
    }
    if (!has_type(v, a.type)) {
      return Status::Invalid(prefix + "'" + std::string(a.name) + "' must be " + type_phrase(a.type));
    }
  }
  return *op;
}

}  // namespace meshkv::wire
