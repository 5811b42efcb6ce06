// Views of the engine for operators: status, peers, clock. Each is a Value,
// so the prompt, the remote client and --json all render the same data.
#include <cmath>
#include <cstdio>

#include "node/control.h"
#include "node/engine_impl.h"

namespace meshkv::node {

using wire::Value;

std::string format_hlc(crdt::Hlc h) {
  return std::to_string(h.physical()) + "." + std::to_string(h.logical());
}

std::string format_uid(uint64_t uid) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(uid));
  return buf;
}

namespace {
Value ms_ago(uint64_t now_us, uint64_t then_us) {
  if (then_us == 0) return nullptr;
  return Value(static_cast<int64_t>((now_us - std::min(now_us, then_us)) / 1000));
}

Value member_value(const Member& m, size_t pending, uint64_t now_us, const Membership& ms, uint64_t limit_ms) {
  Value v = Value::object();
  v.set("name", m.name);
  v.set("state", wire::member_state_name(m.state));
  v.set("address", m.addr.to_string());
  v.set("incarnation", m.incarnation);
  v.set("uid", format_uid(m.uid));
  v.set("rtt_us", m.rtt.has_sample() ? Value(m.rtt.srtt_us()) : Value(nullptr));
  v.set("clock_offset_ms",
        m.has_offset ? Value(static_cast<int64_t>(std::llround(m.clock_offset_ms))) : Value(nullptr));
  // Whether the guard judges by it, and whether it is further than the limit.
  v.set("clock_offset_current", ms.offset_current(m));
  v.set("clock_offset_beyond_limit",
        limit_ms != 0 && m.has_offset && std::abs(m.clock_offset_ms) > static_cast<double>(limit_ms));
  v.set("last_contact_ms_ago", ms_ago(now_us, m.last_contact_us));
  v.set("state_for_ms", ms_ago(now_us, m.state_since_us));
  v.set("pending_pushes", static_cast<uint64_t>(pending));
  v.set("verified", m.verified);  // heard from directly: it counts toward the majority
  v.set("self", false);
  if (!m.fingerprint.empty()) v.set("identity", m.fingerprint);
  return v;
}
}  // namespace

Value Engine::clock() const {
  const Impl& s = *impl_;
  Value v = Value::object();
  v.set("id", s.self_name);
  Value vv = Value::list();
  for (const auto& [o, seq] : s.replica.vv().items()) {
    Value e = Value::object();
    e.set("origin", format_uid(o));
    e.set("node", s.membership.name_of(o));
    e.set("seq", seq);
    vv.push(std::move(e));
  }
  v.set("vv", std::move(vv));
  // Origins of ended processes, no longer rows (node/retire.cc).
  v.set("retired", static_cast<uint64_t>(s.replica.context().retired().size()));
  v.set("hlc", format_hlc(s.replica.clock().last()));
  return v;
}

Value Engine::self_member(Now now) const {
  const Impl& s = *impl_;
  // The node itself with the same fields as every member (what it cannot
  // measure of itself is null), marked self.
  Value me = Value::object();
  me.set("name", s.self_name);
  me.set("state", s.membership.leaving() ? "left" : "alive");
  me.set("address", s.self_addr.to_string());
  me.set("incarnation", s.membership.incarnation());
  me.set("uid", format_uid(s.self_uid));
  me.set("rtt_us", nullptr);
  me.set("clock_offset_ms", nullptr);
  me.set("clock_offset_current", false);
  me.set("clock_offset_beyond_limit", false);
  me.set("last_contact_ms_ago", nullptr);
  me.set("state_for_ms", ms_ago(now.mono_us, s.start_us));
  me.set("pending_pushes", static_cast<uint64_t>(0));
  me.set("verified", true);
  me.set("self", true);
  const Value sec = security();
  if (sec.get("identity").is_string()) me.set("identity", sec.get("identity"));
  return me;
}

Value Engine::peers(Now now) const {
  Value list = Value::list();
  for (const auto& [name, m] : impl_->membership.members()) {
    list.push(member_value(m, impl_->replication.pending_for(name), now.mono_us, impl_->membership,
                           impl_->cfg.max_clock_offset_ms));
  }
  Value v = Value::object();
  v.set("id", impl_->self_name);
  v.set("members", std::move(list));
  v.set("clock", impl_->clock_guard_view(now.mono_us));
  return v;
}

Value Engine::Impl::clock_guard_view(uint64_t now_us) const {
  static constexpr const char* kNames[] = {"off", "unjudged", "ok", "refusing"};
  const ClockVerdict& g = guard.verdict;
  Value v = Value::object();
  v.set("guard", kNames[static_cast<size_t>(guard.state)]);
  v.set("max_clock_offset_ms", cfg.max_clock_offset_ms);
  v.set("judged_peers", static_cast<uint64_t>(g.judged));
  v.set("peers_beyond", static_cast<uint64_t>(g.beyond));
  // This node's clock against the peers further than the limit (median):
  // positive ahead, negative behind; null when none is.
  v.set("offset_ms", g.beyond > 0 ? Value(g.ahead_ms) : Value(nullptr));
  v.set("state_for_ms", ms_ago(now_us, guard.since_us == 0 ? start_us : guard.since_us));
  v.set("writes_refused", guard.refused);
  v.set("entries_ahead", replica.clock().ahead_observed());
  v.set("forced_ahead", replica.forced_ahead());
  return v;
}

namespace {
Value datagram_counts(const Counters& c, uint64_t skew_rejections) {
  Value d = Value::object();
  d.set("sent", c.datagrams_sent);
  d.set("received", c.datagrams_received);
  d.set("bytes_sent", c.bytes_sent);
  d.set("bytes_received", c.bytes_received);
  d.set("dropped", c.dropped);
  d.set("malformed", c.malformed);
  d.set("bad_checksum", c.bad_checksum);
  d.set("queue_drops", c.queue_drops);
  d.set("fragments_dropped", c.fragments_dropped);
  d.set("duplicates", c.duplicates);
  d.set("retransmits", c.retransmits);
  d.set("retransmits_deferred", c.retransmits_deferred);
  d.set("push_gave_up", c.push_gave_up);
  d.set("anti_entropy_rounds", c.ae_rounds);
  d.set("chunks_sent", c.chunks_sent);
  d.set("chunks_received", c.chunks_received);
  d.set("probes", c.probes_sent);
  d.set("probe_failures", c.probe_failures);
  d.set("clock_skew_rejections", skew_rejections);
  d.set("injected_drops", c.injected_drops);
  d.set("injected_dups", c.injected_dups);
  d.set("injected_corrupts", c.injected_corrupts);
  d.set("injected_delays", c.injected_delays);
  d.set("unsealed", c.unsealed);
  d.set("auth_failed", c.auth_failed);
  d.set("unknown_key", c.unknown_key);
  d.set("replayed", c.replayed);
  d.set("stale_session", c.stale_session);
  d.set("unknown_sender", c.unknown_sender);
  d.set("refused_peers", c.refused_peers);
  d.set("awaiting_identity", c.awaiting_identity);
  d.set("control_refused", c.control_refused);
  d.set("control_handshake_timeouts", c.control_handshake_timeouts);
  d.set("control_handshake_too_large", c.control_handshake_too_large);
  d.set("control_evicted", c.control_evicted);
  d.set("control_rejected", c.control_rejected);
  return d;
}
}  // namespace

Value Engine::status(Now now) const {
  const Impl& s = *impl_;
  Value v = Value::object();
  v.set("id", s.self_name);
  v.set("uid", format_uid(s.self_uid));
  v.set("address", s.self_addr.to_string());
  v.set("incarnation", s.membership.incarnation());
  v.set("security", security());
  v.set("gc", s.anti_entropy.status());
  v.set("membership", s.membership.status());
  // Always an object: {"kind":"memory"} without a data directory, the
  // durable storage's view (kind "durable", data_dir, sync, ...) with one.
  Value memory = Value::object();
  memory.set("kind", "memory");
  memory.set("writes", "accepted");
  v.set("storage", s.durable && !s.storage_info.is_null() ? s.storage_info : memory);
  v.set("keys", static_cast<uint64_t>(s.replica.map().live()));
  v.set("tombstones", static_cast<uint64_t>(s.replica.map().tombstones()));
  v.set("writes", s.replica.last_seq());
  v.set("digest", format_uid(s.replica.map().digest().root()));
  v.set("pending_retransmissions", static_cast<uint64_t>(pending_pushes()));
  v.set("members", peers(now).get("members"));
  v.set("vv", clock().get("vv"));
  v.set("datagrams", datagram_counts(counters(), s.replica.clock().skew_rejections()));
  v.set("hlc", format_hlc(s.replica.clock().last()));
  v.set("clock", s.clock_guard_view(now.mono_us));
  v.set("consistency", s.consistency_view(now.mono_us));
  v.set("backpressure", s.backpressure_view());
  // Always the object loss shows, with active false when none is injected.
  Value faults_v = faults().to_value();
  faults_v.set("active", faults().active());
  v.set("faults", std::move(faults_v));
  return v;
}

}  // namespace meshkv::node
