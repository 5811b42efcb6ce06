// The control plane's operations, executed against an engine. Transport-free:
// the Asio shell reads a CtlRequest frame, calls handle_control, and writes
// the CtlResponse back.
//
// The ops, their arguments and who answers them are in kCtlOps
// (wire/control_ops.h); a request whose op is unknown, or whose arguments
// are missing or of the wrong type, gets kCtlBadRequest before any handler
// runs. What the engine's ops answer (body), and their other refusals:
//   get          -> {key, value, type, hlc, origin, seq, staleness_ms}  kCtlNotFound if absent;
//                   a counter's value is its total in decimal (type "counter",
//                   and hlc, origin, seq of its newest part); --read of a
//                   counter is refused (kCtlBadRequest)
//                   a set answers {key, type "set", members, count, hlc,
//                   origin, seq} (set_view); --read of a set is refused
//   incr         -> {key, value, type}: the counter's total after the write;
//                   kCtlBadRequest if the key holds a value (a register) or a set
//   sadd, srem   -> {key, type, added | removed}: how many members changed
//                   here; kCtlBadRequest if the key is a register or counter
//   smembers     -> set_view; kCtlNotFound if absent, kCtlBadRequest if the
//                   key is a register or counter
//   sismember    -> {key, member, present}; kCtlBadRequest if the key is a
//                   register or counter
//   set, del     -> {key, hlc, origin, seq}; del of a key with no value here
//                   (absent, or a tombstone) writes nothing and is
//                   kCtlNotFound, unless force
//   mset         -> {written, not_found}; all or nothing: every entry is
//                   checked (a pair, key and value within the limits) before
//                   any is applied; without force a delete of a key with no
//                   value here is skipped and counted in not_found
//   trace        -> a write whose acks are timed: see Engine::trace_report
//   trace_status -> Engine::trace_report; kCtlNotFound if unknown
//   list         -> {entries: [{key, value, type, hlc, origin, seq}]}
//   status       -> see Engine::status
//   peers        -> {members: [...]}
//   clock        -> {id, vv: [{origin, node, seq}]}
//   join         -> {}; kCtlBadRequest without peers or for a bad address
//   digest       -> {root, groups: [64 hashes], buckets: [{group, buckets: [64]}]}
//   bucket       -> {entries: [{key, value?, deleted, hlc, origin, seq, bucket}]}
//   loss         -> the faults now active (see Faults)
//   forget       -> {name, address, uid, state, incarnation}: the member as it
//                   was; kCtlNotFound for a name that is no member,
//                   kCtlBadRequest for this node or a member that is alive
// Ops the shell answers (keys, watch) get kCtlBadRequest here.
#pragma once

#include "node/engine.h"
#include "wire/messages.h"

namespace meshkv::node {

// Waits and quorum reads (node/consistency.h): set, del and mset with a
// `wait` argument ("N", "quorum", "all"), get and list with `read`
// ("quorum", "all"), each with `timeout_ms` (default 3000), are answered
// later. For those, handle_control sets `*deferred` to an id (otherwise to
// 0) and its return value is meaningless: the answer comes as the engine's
// Reply effect with that id. Without `deferred` they are refused
// (kCtlBadRequest). get takes `max_staleness_ms` too: a bound on
// Engine::staleness_ms past which it answers kCtlNotFound instead of the
// value; get and list answers carry "staleness_ms".
// Backpressure: set, del and mset without `wait` are deferred likewise
// (when `deferred` is given) while replication is congested
// (Engine::hold_write), for half their `timeout_ms` at most; the held
// answer carries "slowed_ms".
wire::CtlResponse handle_control(Engine& engine, const wire::CtlRequest& req, Now now,
                                 uint64_t* deferred = nullptr);

// An entry as get and list answer it: {key, value (absent when deleted),
// hlc, origin, seq}.
wire::Value entry_view(std::string_view key, const crdt::EntryView& e);

// A counter as get and list answer it: {key, value (the total in decimal),
// type: "counter", hlc, origin, seq (its newest part's)}.
wire::Value counter_view(const std::string& key, const crdt::CounterView& c);
// A set as get, smembers and list answer it: {key, type: "set", members
// (sorted by bytes), count, hlc, origin, seq (its newest surviving add's)}.
wire::Value set_view(const std::string& key, const crdt::SetView& s);
// list's entries: the values (entry_view, type "register"), counters
// (counter_view) and sets (set_view) merged by key.
wire::Value list_view(const std::vector<std::pair<std::string, crdt::Entry>>& values,
                      const std::map<std::string, crdt::CounterView, std::less<>>& counters,
                      const std::map<std::string, crdt::SetView, std::less<>>& sets);

// "1700000000123.4": an HLC as operators read it (physical ms, logical).
std::string format_hlc(crdt::Hlc h);
// A 64-bit uid as 16 hex digits.
std::string format_uid(uint64_t uid);

}  // namespace meshkv::node
