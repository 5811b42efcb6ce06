// The control plane's operations, executed against an engine. Transport-free:
// the Asio shell reads a CtlRequest frame, calls handle_control, and writes
// the CtlResponse back.
//
// Operations (args -> body); `code` follows the process exit codes:
//   get    {key}            -> {key, value, hlc, origin, seq}   code 1 if absent
//   set    {key, value}     -> {key, hlc, origin, seq}
//   del    {key}            -> {key, hlc, origin, seq}
//   mset   {entries: [[key, value]]} -> {written}; all or nothing on bad input
//   trace  {key, value}     -> a write whose acks are timed: see Engine::trace_report
//   trace_status {id}       -> Engine::trace_report; code 1 if unknown
//   list   {prefix?}        -> {entries: [{key, value, hlc, origin, seq}]}
//   status {}               -> see Engine::status
//   peers  {}               -> {members: [...]}
//   clock  {}               -> {id, vv: [{origin, node, seq}]}
//   join   {peers: [addr]}  -> {}
//   digest {groups?: [g]}   -> {root, groups: [64 hashes], buckets: [{group, buckets: [64]}]}
//   bucket {buckets: [b]}   -> {entries: [{key, value?, deleted, hlc, origin, seq, bucket}]}
//   loss   {clear?, drop_ppm?, dup_ppm?, corrupt_ppm?, delay_ms?, jitter_ms?,
//           direction?, peers?, partition?} -> the faults now active (see Faults)
// Unknown ops and bad arguments get code 2 and an error message.
#pragma once

#include "node/engine.h"
#include "wire/messages.h"

namespace meshkv::node {

wire::CtlResponse handle_control(Engine& engine, const wire::CtlRequest& req, Now now);

// "1700000000123.4": an HLC as operators read it (physical ms, logical).
std::string format_hlc(crdt::Hlc h);
// A 64-bit uid as 16 hex digits.
std::string format_uid(uint64_t uid);

}  // namespace meshkv::node
