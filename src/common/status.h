// Status and Result<T>: the one error type of the library.
//
// src/ never throws. A function that can fail returns Status (nothing else to
// give back) or Result<T>. Codes are few on purpose: callers branch on the
// kind of failure, and the message is for the human reading the log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace meshkv {

enum class Code : uint8_t {
  kOk = 0,
  kInvalidArgument,   // the caller asked for something malformed
  kTooLarge,          // a size bound was exceeded (key, value, frame)
  kCorruption,        // bytes that cannot be decoded
  kNotFound,
  kUnavailable,       // peer or node unreachable, timed out
  kPermissionDenied,
  kIo,                // the operating system said no
  kInternal,
  kAlreadyExists,     // a create that must not replace found the name taken
};

const char* code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  static Status Ok() { return {}; }
  static Status Invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Denied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status Io(std::string m) { return {Code::kIo, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "corruption: truncated varint" — for logs and error output.
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

// A value or the Status that explains its absence. REQUIRES: a Result built
// from a Status is never built from an ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}    // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace meshkv
