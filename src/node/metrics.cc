// The engine's metrics in the Prometheus text exposition format (version
// 0.0.4): one HELP and TYPE line per family, then its samples. Counters end
// in _total; label values are escaped.
#include <cmath>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "crdt/counter.h"
#include "crdt/orset.h"
#include "node/control.h"
#include "node/engine_impl.h"
#include "wire/codec.h"

namespace meshkv::node {

namespace {
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  template <class V>
  void sample(const char* name, V value, std::initializer_list<std::pair<const char*, std::string>> labels = {}) {
    out_ << name;
    if (labels.size() > 0) {
      out_ << "{";
      bool first = true;
      for (const auto& [k, v] : labels) {
        out_ << (first ? "" : ",") << k << "=\"" << label(v) << "\"";
        first = false;
      }
      out_ << "}";
    }
    out_ << " " << value << "\n";
  }
  // A family with one unlabelled sample.
  template <class V>
  void single(const char* name, const char* type, const char* help, V value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

// User keys by type, from the entries that hold them: a register is a live
// entry under a user key, a counter a user key with parts, a set a user key
// with set entries. A key written as two types at once counts under both
// until the newer write's type is all that reads (node/counters.cc). One
// pass over the map per scrape: with 1,000,000 keys a scrape took 80-140 ms
// instead of 40-60 ms (a busy 2-core machine); counts kept as entries come
// and go would avoid it.
void keys_by_type(Writer& w, const crdt::Replica& replica, uint64_t wall_ms) {
  const crdt::Hlc now = replica.reading(wall_ms);
  uint64_t registers = 0;
  std::unordered_set<std::string_view> counters;
  replica.map().for_each([&](std::string_view k, const crdt::EntryView& e) {
    if (!crdt::internal_key(k)) {
      registers += !crdt::dead(e, now);
    } else if (auto ik = crdt::parse_internal_key(k); ik && ik->kind == crdt::InternalKey::Kind::kPart) {
      counters.insert(ik->counter);
    }
  });
  uint64_t sets = 0;
  std::string_view last;
  replica.map().scan_ordered(crdt::kOrderedPrefix, [&](std::string_view k, const crdt::EntryView&) {
    auto sk = crdt::parse_set_key(k);
    if (!sk) return crdt::set_key(k);
    if (sets == 0 || sk->set != last) ++sets;
    last = sk->set;
    return true;
  });
  w.family("meshkv_keys_by_type", "gauge",
           "User keys by type, from the entries that hold them (a key written as two types at once counts under "
           "both until one wins).");
  w.sample("meshkv_keys_by_type", registers, {{"type", "register"}});
  w.sample("meshkv_keys_by_type", static_cast<uint64_t>(counters.size()), {{"type", "counter"}});
  w.sample("meshkv_keys_by_type", sets, {{"type", "set"}});
}

// Messages and datagrams in and out.
void traffic(Writer& w, const Counters& c) {
  // Control messages travel over TCP and are not counted here.
  auto by_type = [&](const char* name, const char* help, const std::array<uint64_t, 16>& counts) {
    w.family(name, "counter", help);
    for (size_t t = 1; t <= wire::kMaxMsgType; ++t) {
      const auto type = static_cast<wire::MsgType>(t);
      if (type == wire::MsgType::kCtlRequest || type == wire::MsgType::kCtlResponse) continue;
      w.sample(name, counts[t], {{"type", wire::type_name(type)}});
    }
  };
  by_type("meshkv_messages_sent_total", "Messages sent, by type (retransmissions not included).",
          c.sent_by_type);
  by_type("meshkv_message_bytes_sent_total", "Bytes of messages sent, by type, before sealing.",
          c.sent_bytes_by_type);
  by_type("meshkv_messages_received_total", "Messages received and decoded, by type.", c.received_by_type);
  by_type("meshkv_message_bytes_received_total",
          "Bytes of datagrams received and decoded, by message type (as they arrived).",
          c.received_bytes_by_type);
  w.single("meshkv_datagrams_sent_total", "counter", "Datagrams handed to the network.", c.datagrams_sent);
  w.single("meshkv_datagrams_received_total", "counter", "Datagrams received.", c.datagrams_received);
  w.single("meshkv_bytes_sent_total", "counter", "Bytes of datagrams sent.", c.bytes_sent);
  w.single("meshkv_bytes_received_total", "counter", "Bytes of datagrams received.", c.bytes_received);

  w.family("meshkv_datagrams_rejected_total", "counter", "Datagrams dropped or refused, by reason.");
  const std::pair<const char*, uint64_t> reasons[] = {
      {"malformed", c.malformed},         {"refused", c.dropped},
      {"bad_checksum", c.bad_checksum},
      {"queue_full", c.queue_drops},      {"unsealed", c.unsealed},
      {"auth_failed", c.auth_failed},     {"unknown_key", c.unknown_key},
      {"replayed", c.replayed},           {"stale_session", c.stale_session},
      {"unknown_sender", c.unknown_sender}, {"refused_peer", c.refused_peers},
      {"injected_drop", c.injected_drops}, {"fragment_dropped", c.fragments_dropped}};
  for (const auto& [why, n] : reasons) w.sample("meshkv_datagrams_rejected_total", n, {{"reason", why}});
}

// What the protocol did with them.
void protocol(Writer& w, const Counters& c) {
  w.single("meshkv_duplicate_pushes_total", "counter", "Pushes received again (acknowledged, not re-applied).", c.duplicates);
  w.single("meshkv_retransmits_total", "counter", "Pushes sent again for want of an acknowledgement.", c.retransmits);
  w.single("meshkv_retransmits_deferred_total", "counter",
           "Retransmission timers waited out: the member was silent with many pushes in flight.",
           c.retransmits_deferred);
  w.single("meshkv_push_gave_up_total", "counter", "Pushes whose retransmissions ran out (anti-entropy repairs them).", c.push_gave_up);
  w.single("meshkv_anti_entropy_rounds_total", "counter", "Digests sent.", c.ae_rounds);
  w.family("meshkv_anti_entropy_bytes_sent_total", "counter", "Bytes of digests and delta chunks sent.");
  w.sample("meshkv_anti_entropy_bytes_sent_total",
           c.sent_bytes_by_type[static_cast<size_t>(wire::MsgType::kDigest)] +
               c.sent_bytes_by_type[static_cast<size_t>(wire::MsgType::kChunk)]);
  w.family("meshkv_chunks_total", "counter", "Delta chunks, by direction.");
  w.sample("meshkv_chunks_total", c.chunks_sent, {{"direction", "sent"}});
  w.sample("meshkv_chunks_total", c.chunks_received, {{"direction", "received"}});
  w.single("meshkv_probes_total", "counter", "Failure-detector probes sent.", c.probes_sent);
  w.single("meshkv_probe_failures_total", "counter", "Probes that got no answer in their period.", c.probe_failures);
  w.single("meshkv_control_refused_total", "counter", "Control connections refused for want of the key.", c.control_refused);
  w.family("meshkv_control_limited_total", "counter", "Control connections closed by the connection caps, by reason.");
  w.sample("meshkv_control_limited_total", c.control_handshake_timeouts, {{"reason", "handshake_timeout"}});
  w.sample("meshkv_control_limited_total", c.control_handshake_too_large, {{"reason", "handshake_too_large"}});
  w.sample("meshkv_control_limited_total", c.control_evicted, {{"reason", "evicted"}});
  w.sample("meshkv_control_limited_total", c.control_rejected, {{"reason", "rejected"}});
}
}  // namespace

std::string Engine::metrics(Now now) const {
  const Impl& s = *impl_;
  Writer w;
  traffic(w, counters());
  protocol(w, counters());
  {
    const auto& k = s.consistency;
    w.family("meshkv_write_waits_total", "counter", "Writes that waited for acknowledgements (--wait), by outcome.");
    w.sample("meshkv_write_waits_total", k.waits_met, {{"outcome", "met"}});
    w.sample("meshkv_write_waits_total", k.waits_timed_out, {{"outcome", "timed_out"}});
    w.single("meshkv_writes_slowed_total", "counter",
             "Write requests whose answer was held while a member's push queue was full (backpressure).",
             s.backpressure.writes_slowed);
    w.single("meshkv_writes_slowed_seconds_total", "counter", "Time write answers were held by backpressure.",
             static_cast<double>(s.backpressure.slowed_ms) / 1000.0);
    w.single("meshkv_push_queue_max", "gauge",
             "Pushes queued toward the fullest alive and answering member (writers wait at 512).",
             static_cast<uint64_t>(s.replication.congestion()));
    w.family("meshkv_quorum_reads_total", "counter", "Quorum reads (--read), by outcome.");
    w.sample("meshkv_quorum_reads_total", k.reads_met, {{"outcome", "met"}});
    w.sample("meshkv_quorum_reads_total", k.reads_failed, {{"outcome", "failed"}});
    w.single("meshkv_read_repairs_total", "counter",
             "Winners of quorum reads sent to members that were behind, or taken by this node.", k.read_repairs);
    w.single("meshkv_read_requests_answered_total", "counter", "Quorum-read requests from members answered.",
             k.read_requests_answered);
    w.single("meshkv_read_messages_dropped_total", "counter",
             "Quorum-read requests from non-members and answers nobody waited for.", k.read_dropped);
    const auto st = s.staleness_at(now.mono_us);
    w.single("meshkv_staleness_seconds", "gauge",
             "Time since this node was last known to hold what every reachable member had (-1: never).",
             st ? static_cast<double>(*st) / 1000.0 : -1.0);
  }

  w.family("meshkv_members", "gauge", "Members by state, as this node sees them.");
  size_t by_state[4] = {0, 0, 0, 0};
  for (const auto& [name, m] : s.membership.members()) ++by_state[static_cast<size_t>(m.state)];
  for (size_t st = 0; st < 4; ++st) {
    w.sample("meshkv_members", by_state[st], {{"state", wire::member_state_name(static_cast<wire::MemberState>(st))}});
  }
  w.family("meshkv_peer_rtt_seconds", "gauge", "Smoothed round-trip time to each member with a sample.");
  for (const auto& [name, m] : s.membership.members()) {
    if (m.rtt.has_sample()) w.sample("meshkv_peer_rtt_seconds", static_cast<double>(m.rtt.srtt_us()) / 1e6, {{"peer", name}});
  }
  w.family("meshkv_peer_clock_offset_seconds", "gauge",
           "Each member's wall clock minus this node's, smoothed, for members with an estimate.");
  for (const auto& [name, m] : s.membership.members()) {
    if (m.has_offset) w.sample("meshkv_peer_clock_offset_seconds", m.clock_offset_ms / 1e3, {{"peer", name}});
  }
  w.single("meshkv_clock_writes_refused", "gauge",
           "1 while this node refuses local writes: its clock is further than max_clock_offset_ms from most peers.",
           s.guard.state == Engine::Impl::GuardState::kRefusing ? 1 : 0);
  w.single("meshkv_clock_offset_peers_beyond", "gauge",
           "Peers with a current estimate whose clock is further than max_clock_offset_ms from this node's.",
           static_cast<uint64_t>(s.guard.verdict.beyond));
  w.single("meshkv_clock_offset_peers_judged", "gauge", "Peers with a current clock offset estimate.",
           static_cast<uint64_t>(s.guard.verdict.judged));
  w.single("meshkv_clock_refused_writes_total", "counter", "Local writes refused by the clock-offset guard.",
           s.guard.refused);
  w.single("meshkv_clock_entries_ahead_total", "counter",
           "Timestamps received further than max_clock_offset_ms ahead of this node's clock (merged all the same).",
           s.replica.clock().ahead_observed());
  w.single("meshkv_clock_forced_ahead_total", "counter",
           "Local writes that took this node's clock further ahead than max_clock_skew_ms to stay above the entry they replaced.",
           s.replica.forced_ahead());
  w.single("meshkv_keys", "gauge", "Live keys.", s.replica.map().live());
  keys_by_type(w, s.replica, now.wall_ms);
  w.single("meshkv_tombstones", "gauge", "Tombstones not yet collected.", s.replica.map().tombstones());
  w.single("meshkv_tombstones_collected_total", "counter", "Tombstones dropped by garbage collection.", s.anti_entropy.collected());
  w.single("meshkv_quarantined", "gauge",
           "Writes kept aside: they could not be ordered against deletes collected while their writer was cut off.",
           static_cast<uint64_t>(s.replica.quarantined()));
  w.single("meshkv_quarantined_total", "counter", "Writes ever put in quarantine by this process.",
           s.quarantined_total);
  w.single("meshkv_excluded_members", "gauge",
           "Members left out of tombstone collection that have not reconciled since.",
           static_cast<uint64_t>(s.anti_entropy.excluded().size()));
  // What datagrams from anyone (on an unsealed mesh, forged ones) were
  // refused or kept from counting.
  size_t unverified = 0;
  for (const auto& [name, m] : s.membership.members()) unverified += !m.verified;
  w.single("meshkv_members_unverified", "gauge",
           "Members this node never heard from directly: they do not count toward the majority.",
           unverified);
  w.single("meshkv_exclusions_refused_total", "counter",
           "Exclusions in peers' digests ignored: about, or from, members that do not count here.",
           s.anti_entropy.exclusions_refused());
  const auto& mc = s.membership.counters();
  w.family("meshkv_membership_table_drops_total", "counter",
           "Membership records refused or evicted at the bound of their table, by table.");
  w.sample("meshkv_membership_table_drops_total", mc.table_drops, {{"table", "gone_or_names"}});
  w.sample("meshkv_membership_table_drops_total", mc.gossip_drops, {{"table", "gossip"}});

  // For each origin: how far this node is behind the furthest vector it
  // knows (its own and every peer's last digest).
  w.family("meshkv_vv_lag_writes", "gauge",
           "Writes of an origin that some member has and this node has not yet, per origin.");
  const crdt::VersionVector best = s.anti_entropy.furthest();
  for (const auto& [o, seq] : best.items()) {
    const uint64_t mine = s.replica.vv().get(o);
    w.sample("meshkv_vv_lag_writes", seq - std::min(seq, mine),
             {{"origin", format_uid(o)}, {"node", s.membership.name_of(o)}});
  }
  w.family("meshkv_pending_pushes", "gauge", "Pushes waiting for an acknowledgement.");
  w.sample("meshkv_pending_pushes", s.replication.pending());
  w.single("meshkv_uptime_seconds", "gauge", "Seconds since the engine started (monotonic).", static_cast<double>(now.mono_us - s.start_us) / 1e6);
  return w.str();
}

}  // namespace meshkv::node
