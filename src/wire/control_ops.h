// The control protocol's words, in one table: every operation a node answers
// on its control port (name, arguments, and which side answers it) and the
// response codes. The client and the prompt build requests from it, the
// output formatting picks a rendering by it, the Asio shell routes by it and
// the engine's handlers (node/control.cc) are indexed by it; no other code
// compares op names as strings.
//
// On the wire an op travels by name (CtlRequest::op) and a code as one byte
// (CtlResponse::code), so CtlOp's numbering is internal and may change;
// CtlCode's numbers are the process exit codes and may not.
//
// Adding an op:
//   1. append an enumerator to CtlOp and a row at the same position in
//      kCtlOps (name, answerer, arguments; static_asserts check the order);
//   2. answer it: a handler in node/control.cc (Answerer::kEngine; its own
//      static_assert finds a missing one) or a case in net/server.cc
//      (Answerer::kShell);
//   3. send it with make_request(CtlOp::kNew) (wire/messages.h), and give
//      it a rendering in cli/output.cc if the generic one does not fit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/status.h"
#include "wire/value.h"

namespace meshkv::wire {

// A response's code. Unscoped, so that a code is the exit code it names
// (`return r.code;`) while nothing turns an int into a code unnoticed.
enum CtlCode : uint8_t {
  kCtlOk = 0,
  kCtlNotFound = 1,     // a negative answer: no such key, trace or cluster key
  kCtlBadRequest = 2,   // the client's mistake: unknown op, bad arguments, refused input
  kCtlUnavailable = 3,  // the node will not serve it: shutting down, no key, too slow a reader
};

enum class CtlOp : uint8_t {
  kGet,
  kSet,
  kDel,
  kMset,
  kTrace,
  kTraceStatus,
  kList,
  kStatus,
  kPeers,
  kClock,
  kJoin,
  kDigest,
  kBucket,
  kLoss,
  kKeys,
  kWatch,
  kQuarantine,
  kForget,
  kExpire,
  kTtl,
  kIncr,
  kSadd,
  kSrem,
  kSmembers,
  kSismember,
};
inline constexpr size_t kCtlOpCount = 25;

// Who answers an op: the engine (node::handle_control), or the Asio shell,
// which owns what the engine must not (cluster keys for the control port,
// connections that stream).
enum class Answerer : uint8_t { kEngine, kShell };

enum class ArgType : uint8_t { kString, kInt, kBool, kList, kStringList, kIntList };

// One argument of a request (a field of CtlRequest::args). Fields the table
// does not name are ignored, so a newer client may send more.
struct ArgSpec {
  std::string_view name;
  ArgType type;
  bool required = false;
};

struct OpSpec {
  CtlOp op;
  std::string_view name;
  Answerer answerer;
  std::span<const ArgSpec> args;
};

namespace ctl_args {
using enum ArgType;
inline constexpr ArgSpec kKey[] = {{"key", kString, true}};
// Tunable consistency (node/consistency.h): `wait` on writes, `read` on
// reads, with `timeout_ms`; `max_staleness_ms` bounds a local get.
inline constexpr ArgSpec kGet[] = {
    {"key", kString, true}, {"read", kString}, {"timeout_ms", kInt}, {"max_staleness_ms", kInt}};
// ttl_ms: the value expires that long after the write's HLC (absent: never).
inline constexpr ArgSpec kSet[] = {{"key", kString, true},
                                   {"value", kString, true},
                                   {"wait", kString},
                                   {"timeout_ms", kInt},
                                   {"ttl_ms", kInt}};
// A new write of the key's live value that expires ttl_ms after itself.
inline constexpr ArgSpec kExpire[] = {
    {"key", kString, true}, {"ttl_ms", kInt, true}, {"wait", kString}, {"timeout_ms", kInt}};
inline constexpr ArgSpec kKeyValue[] = {{"key", kString, true}, {"value", kString, true}};
// A delete of a key this node holds no value for (no entry, or already a
// tombstone) writes nothing and answers kCtlNotFound, unless force: then it
// writes the tombstone anyway (the key may live on a node out of reach).
inline constexpr ArgSpec kDel[] = {
    {"key", kString, true}, {"force", kBool}, {"wait", kString}, {"timeout_ms", kInt}};
// [[key, value]] writes, [[key, null]] deletes; each pair is checked by the
// handler, before anything is applied. A delete of an absent key is skipped
// and counted (not_found) unless force, as for del.
inline constexpr ArgSpec kMset[] = {
    {"entries", kList, true}, {"force", kBool}, {"wait", kString}, {"timeout_ms", kInt}};
inline constexpr ArgSpec kTraceStatus[] = {{"id", kInt, true}};
inline constexpr ArgSpec kPrefix[] = {{"prefix", kString}};
inline constexpr ArgSpec kListArgs[] = {{"prefix", kString}, {"read", kString}, {"timeout_ms", kInt}};
inline constexpr ArgSpec kJoin[] = {{"peers", kStringList}};
// Only the members in this state (alive, suspect, dead or left).
inline constexpr ArgSpec kPeers[] = {{"state", kString}};
inline constexpr ArgSpec kDigest[] = {{"groups", kIntList}};
inline constexpr ArgSpec kBucket[] = {{"buckets", kIntList}};
// Fields of node::Faults; options not given keep their setting.
inline constexpr ArgSpec kLoss[] = {
    {"clear", kBool},       {"drop_ppm", kInt},    {"dup_ppm", kInt},
    {"corrupt_ppm", kInt},  {"delay_ms", kInt},    {"jitter_ms", kInt},
    {"direction", kString}, {"peers", kStringList}, {"partition", kStringList}};
// action: list (default), install (with key: 64 hex digits), use or remove
// (with id: 16 hex digits).
inline constexpr ArgSpec kKeys[] = {{"action", kString}, {"key", kString}, {"id", kString}};
// action: list (default; under prefix, at most limit), apply (key), drop
// (key, or every key with all: true).
inline constexpr ArgSpec kQuarantine[] = {
    {"action", kString}, {"key", kString}, {"prefix", kString}, {"limit", kInt}, {"all", kBool}};
// Adds `by` (negative: subtracts; not 0) to the counter `key`.
inline constexpr ArgSpec kIncr[] = {
    {"key", kString, true}, {"by", kInt, true}, {"wait", kString}, {"timeout_ms", kInt}};
// Adds or removes `members` (not empty) of the set `key`.
inline constexpr ArgSpec kSetMembers[] = {
    {"key", kString, true}, {"members", kStringList, true}, {"wait", kString}, {"timeout_ms", kInt}};
inline constexpr ArgSpec kSismember[] = {{"key", kString, true}, {"member", kString, true}};
// The member's name (its --id).
inline constexpr ArgSpec kForget[] = {{"name", kString, true}};
}  // namespace ctl_args

// Bodies of the answers are described in node/control.h (engine ops) and
// net/server.h (shell ops).
inline constexpr std::array<OpSpec, kCtlOpCount> kCtlOps = {{
    {CtlOp::kGet, "get", Answerer::kEngine, ctl_args::kGet},
    {CtlOp::kSet, "set", Answerer::kEngine, ctl_args::kSet},
    {CtlOp::kDel, "del", Answerer::kEngine, ctl_args::kDel},
    {CtlOp::kMset, "mset", Answerer::kEngine, ctl_args::kMset},
    {CtlOp::kTrace, "trace", Answerer::kEngine, ctl_args::kKeyValue},
    {CtlOp::kTraceStatus, "trace_status", Answerer::kEngine, ctl_args::kTraceStatus},
    {CtlOp::kList, "list", Answerer::kEngine, ctl_args::kListArgs},
    {CtlOp::kStatus, "status", Answerer::kEngine, {}},
    {CtlOp::kPeers, "peers", Answerer::kEngine, ctl_args::kPeers},
    {CtlOp::kClock, "clock", Answerer::kEngine, {}},
    {CtlOp::kJoin, "join", Answerer::kEngine, ctl_args::kJoin},
    {CtlOp::kDigest, "digest", Answerer::kEngine, ctl_args::kDigest},
    {CtlOp::kBucket, "bucket", Answerer::kEngine, ctl_args::kBucket},
    {CtlOp::kLoss, "loss", Answerer::kEngine, ctl_args::kLoss},
    {CtlOp::kKeys, "keys", Answerer::kShell, ctl_args::kKeys},
    {CtlOp::kWatch, "watch", Answerer::kShell, ctl_args::kPrefix},
    {CtlOp::kQuarantine, "quarantine", Answerer::kEngine, ctl_args::kQuarantine},
    {CtlOp::kForget, "forget", Answerer::kEngine, ctl_args::kForget},
    {CtlOp::kExpire, "expire", Answerer::kEngine, ctl_args::kExpire},
    {CtlOp::kTtl, "ttl", Answerer::kEngine, ctl_args::kKey},
    {CtlOp::kIncr, "incr", Answerer::kEngine, ctl_args::kIncr},
    {CtlOp::kSadd, "sadd", Answerer::kEngine, ctl_args::kSetMembers},
    {CtlOp::kSrem, "srem", Answerer::kEngine, ctl_args::kSetMembers},
    {CtlOp::kSmembers, "smembers", Answerer::kEngine, ctl_args::kKey},
    {CtlOp::kSismember, "sismember", Answerer::kEngine, ctl_args::kSismember},
}};

constexpr bool ctl_ops_in_order() {
  for (size_t i = 0; i < kCtlOps.size(); ++i) {
    if (static_cast<size_t>(kCtlOps[i].op) != i) return false;
  }
  return true;
}
static_assert(ctl_ops_in_order(), "kCtlOps rows must follow CtlOp's order");
static_assert(static_cast<size_t>(CtlOp::kSismember) + 1 == kCtlOpCount, "kCtlOpCount is stale");

constexpr const OpSpec& spec(CtlOp op) { return kCtlOps[static_cast<size_t>(op)]; }
constexpr std::string_view op_name(CtlOp op) { return spec(op).name; }

// The op named `name`, or nullopt.
std::optional<CtlOp> find_op(std::string_view name);

// Checks a request against the table: the op `name` exists and `args` is an
// object (or null) holding every required argument, each of its type.
// Returns the op, or kInvalidArgument with the message to answer with
// (kCtlBadRequest): "unknown operation 'x'", "get: missing 'key'",
// "list: 'prefix' must be a string".
Result<CtlOp> check_request(std::string_view name, const Value& args);

}  // namespace meshkv::wire
