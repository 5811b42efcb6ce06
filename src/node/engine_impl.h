// Internal to src/node: the engine's state, shared by engine.cc (dispatch and
// replication), membership.cc (SWIM) and introspect.cc (status views).
#pragma once

#include <deque>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <unordered_map>

#include "crypto/replay.h"
#include "node/engine.h"
#include "node/protocol_math.h"
#include "node/seq_window.h"
#include "wire/fragment.h"
#include "wire/messages.h"

namespace meshkv::node {

// An unacknowledged push to one member.
struct PendingPush {
  std::vector<wire::Bytes> datagrams;  // one message, or its fragments
  bool sent = false;                   // false: waiting for room in the window
  unsigned attempts = 0;
  uint64_t first_sent_us = 0;
  uint64_t deadline_us = 0;
};

struct Member {
  std::string name;
  uint64_t uid = 0;
  Endpoint addr;
  uint64_t incarnation = 0;
  wire::MemberState state = wire::MemberState::kAlive;
  uint64_t state_since_us = 0;
  uint64_t last_contact_us = 0;  // 0: never heard from directly
  RttEstimator rtt;
  // Its wall clock minus ours (ms), smoothed; valid once has_offset.
  double clock_offset_ms = 0;
  bool has_offset = false;
  uint64_t wall_sent_us = 0;  // when our PingAck to it last carried our wall clock
  bool has_wall_sent = false;
  uint64_t suspect_deadline_us = 0;  // when a suspect is declared dead
  uint64_t told_us = 0;  // when we last told it a rumour about itself
  std::map<uint64_t, PendingPush> pending;  // by msg_seq, sent or waiting
  size_t in_flight = 0;                      // pending entries sent and not acknowledged
  std::deque<uint64_t> waiting;              // msg_seqs not sent yet, oldest first
  std::string fingerprint;  // of its identity, in a sealed mesh

  bool reachable() const {
    return state == wire::MemberState::kAlive || state == wire::MemberState::kSuspect;
  }
  wire::MemberUpdate update() const { return {name, uid, addr, incarnation, state}; }
};

// The probe in flight this protocol period.
struct Probe {
  std::string target;
  uint64_t seq = 0;
  uint64_t sent_us = 0;
  uint64_t indirect_at_us = 0;  // direct timeout: ask others
  uint64_t fail_at_us = 0;      // end of period: suspect
  bool indirect_sent = false;
  bool active = false;
};

// A probe this node runs on behalf of another (PingReq).
struct Relay {
  Endpoint requester;
  uint64_t requester_seq = 0;
  uint64_t target_uid = 0;
  uint64_t expires_us = 0;
};

// A traced write: when it was pushed, and when each member acknowledged.
struct Trace {
  uint64_t start_us = 0;
  std::vector<std::pair<std::string, uint64_t>> acks;  // member, ack time (0: none yet)
};

// A membership update waiting to be gossiped a few more times.
struct Broadcast {
  wire::MemberUpdate update;
  unsigned transmits_left = 0;
};

struct Engine::Impl {
  Impl(Config c, uint64_t uid, Endpoint addr, uint64_t seed, Now now);

  Config cfg;
  std::string self_name;
  uint64_t self_uid;
  Endpoint self_addr;
  uint64_t incarnation = 0;
  bool leaving = false;
  std::mt19937_64 rng;
  Now now{};
  uint64_t start_us = 0;

  crdt::Replica replica;
  Counters counters;
  wire::Reassembler reassembler;
  std::vector<Datagram> outbox;
  Faults faults;
  bool durable = false;
  std::vector<LogOp> log_ops;
  wire::Value storage_info;
  std::multimap<uint64_t, Datagram> delayed;  // injected delay: release time -> datagram
  std::vector<LogLine> logs;
  std::deque<Change> changes;

  // Membership.
  std::map<std::string, Member, std::less<>> members;
  // Kept by set_state() and apply_update(), so that per-event work does not
  // walk every member (the 1000-node simulation spent most of its time there).
  size_t suspect_count = 0, reachable_count = 0;
  std::unordered_map<uint64_t, std::string> uid_names;  // every uid ever seen, for display
  std::vector<Broadcast> broadcasts;
  std::vector<std::string> probe_order;
  size_t probe_index = 0;
  Probe probe;
  uint64_t probe_seq = 0;
  std::map<uint64_t, Relay> relays;  // by our probe seq
  std::vector<Endpoint> seeds;
  std::unordered_map<uint64_t, uint64_t> introduced_us;  // unknown uid -> when we asked it
  uint64_t last_intro_us = 0;

  // Replication.
  uint64_t msg_seq = 0;
  std::vector<crdt::KeyedEntry> unpushed;  // local writes not yet packed into pushes
  size_t unpushed_bytes = 0;                // their entry_size_bound sum
  uint64_t last_push_us = 0;                // when pushes last left
  uint64_t push_due_us = 0;                 // held writes leave by then (0: none held)
  uint64_t last_write_us = 0;               // the last local write
  uint64_t write_gap_us = 2000;             // smoothed time between local writes (at most 2 ms)
  void note_local_write(const crdt::KeyedEntry& ke);
  using Timer = std::pair<uint64_t, std::pair<std::string, uint64_t>>;  // deadline, (member, msg_seq)
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> retransmit_timers;
  std::unordered_map<uint64_t, SeqWindow> push_seen;  // by sender uid
  std::map<std::string, uint64_t> ae_followup;       // member -> when to digest again
  std::map<uint64_t, Trace> traces;                  // by msg_seq of the traced push

  // Sealing (secure.cc).
  struct KeyState {
    crypto::ClusterKey key;
    crypto::Key32 datagram_key;  // derived from the cluster key for kind-1 datagrams
  };
  struct PeerIdentity {
    crypto::PublicKey pk;
    std::string name, fingerprint;
    std::map<uint64_t, crypto::Key32> pair_keys;  // by cluster key id
  };
  bool sealed = false;
  size_t wire_mtu = 0;  // cfg.mtu is what messages may take inside the seal
  std::vector<KeyState> keys;  // [0] seals
  crypto::Identity identity{};
  std::string self_fingerprint;
  std::string self_signature;  // over (self_uid, self_name)
  std::vector<crypto::PublicKey> allowed_peers;
  std::unordered_map<uint64_t, PeerIdentity> identities;  // by uid, proven by a Hello
  std::unordered_map<uint64_t, crypto::ReplayWindow> pair_windows, cluster_windows;  // by sender uid
  std::unordered_map<uint64_t, uint64_t> send_counters;  // pair-sealed, by receiver uid
  uint64_t cluster_counter = 0;                           // cluster-sealed, any receiver
  std::map<Endpoint, uint64_t> hello_asked_us;            // by address: when we last asked
  // The process that last proved its identity from an address. A restarted
  // node is there before membership says so, and only it can open what we
  // seal for that address.
  std::map<Endpoint, uint64_t> proven_at;
  std::set<std::string> refused_logged;

  // Tombstone garbage collection and resynchronisation (gc.cc).
  struct PeerVector {
    crdt::VersionVector vv;    // reassembled from the peer's digests
    uint64_t updated_us = 0;   // when a digest last changed or confirmed it
    bool resyncing = false;    // the peer said it is starting over
  };
  std::unordered_map<uint64_t, PeerVector> peer_vv;       // by member uid
  std::deque<std::pair<uint64_t, std::string>> tomb_fifo;  // (wall ms noticed, key)
  std::vector<std::string> tomb_ripe;  // past the grace period, waiting for every member
  bool tombs_scanned = false;          // tombstones loaded at start are queued once
  uint64_t next_gc_us = 0;
  uint64_t quorum_lost_us = 0;     // monotonic; 0 while in a quorum
  uint64_t quorum_back_us = 0;     // when the quorum was last regained
  uint64_t last_quorum_wall_ms = 0, quorum_logged_ms = 0;
  bool startup_checked = false;
  bool must_resync = false;
  bool want_compaction = false;
  uint64_t gc_collected = 0, gc_collected_since_compaction = 0, resyncs = 0, resync_dropped = 0;

  // Periodic timers (monotonic us).
  uint64_t next_probe_us = 0, next_gossip_us = 0, next_ae_us = 0, next_reconnect_us = 0,
           next_expire_us = 0;
  // While alone, seeds are retried from 100 ms, doubling to 1 s: a node
  // started together with its seed should not wait a second for it.
  uint64_t alone_retry_ms = 100;

  // ---- engine.cc ----
  void log(LogLevel level, std::string text);
  void send(const Endpoint& to, wire::Message msg);
  void send_raw(const Endpoint& to, const wire::Bytes& bytes, bool unbound_ok = false);
  void receive(const Endpoint& from, const uint8_t* data, size_t n);
  void dispatch(const Endpoint& from, wire::Envelope env);
  void flush_pushes();
  // flush_pushes, unless writes come fast, pushes left less than 1 ms ago
  // and the waiting writes do not fill a datagram: then they wait for more
  // (replication.cc, kPushHoldUs).
  void flush_pushes_gathered();
  void on_push(const Endpoint& from, uint64_t sender, const wire::Push& p);
  void on_ack(uint64_t sender, const wire::Ack& a);
  void on_digest(const Endpoint& from, uint64_t sender, const wire::Digest& d);
  void on_chunk(uint64_t sender, const wire::ChunkMsg& c);
  // A full digest, or, when `peer` is given and our last word from it says
  // it holds what we hold, a summary (one hash) asking it to confirm.
  void send_digest(const Endpoint& to, bool counter, const Member* peer = nullptr,
                   bool ask_back = false);
  void retransmit_due();
  // Sends waiting pushes while the member's window has room.
  void release_waiting(Member& m);
  // Forgets a pending push (acknowledged, given up or dropped).
  void drop_pending(Member& m, std::map<uint64_t, PendingPush>::iterator it);
  void record_change(const crdt::KeyedEntry& ke, bool local);
  void log_local_write(const crdt::KeyedEntry& ke);
  void log_entry(const crdt::KeyedEntry& ke) {
    if (durable) log_ops.push_back(LogOp{LogOp::Kind::kEntry, false, ke, 0, 0, 0});
  }
  std::string name_at(const Endpoint& addr) const;
  void fault_out(Datagram d, std::vector<Datagram>& ready);
  bool faults_cover(const std::string& name) const;
  Member* member_by_uid(uint64_t uid);

  // ---- secure.cc ----
  bool open_sealed(const Endpoint& from, const uint8_t* data, size_t n, wire::Bytes& inner,
                   bool& unbound);
  void seal_to(const Endpoint& to, const wire::Bytes& msg, bool unbound, std::vector<uint8_t>& out);
  const crypto::Key32* pair_key(uint64_t uid, uint64_t key_id);
  bool identity_known(uint64_t uid) const { return identities.count(uid) != 0; }
  void ask_identity(const Endpoint& to);
  wire::Hello hello(bool want_reply) const;
  void on_hello(const Endpoint& from, uint64_t sender, const wire::Hello& h);
  Member* member_at(const Endpoint& addr);

  // ---- gc.cc ----
  void gc_tick();
  bool has_quorum() const;
  void note_peer_vv(uint64_t uid, const wire::Digest& d);
  // Its summary matched our context: it holds exactly our vector.
  void note_peer_in_sync(uint64_t uid);
  bool try_resync();
  wire::Value gc_status() const;

  // ---- membership.cc ----
  void apply_update(const wire::MemberUpdate& u, const Endpoint* from);
  void refute(uint64_t seen_incarnation);
  void queue_broadcast(const wire::MemberUpdate& u);
  std::vector<wire::MemberUpdate> take_piggyback(size_t budget_bytes);
  std::vector<wire::MemberUpdate> all_updates() const;
  void send_members(const Endpoint& to, const std::vector<wire::MemberUpdate>& ups);
  void on_ping(const Endpoint& from, uint64_t sender, const wire::Ping& p);
  void on_ping_req(const Endpoint& from, const wire::PingReq& p);
  void on_ping_ack(uint64_t sender, const wire::PingAck& a);
  void on_join(const Endpoint& from, const wire::Join& j);
  void heard_from(const Endpoint& from, uint64_t uid);
  void set_state(Member& m, wire::MemberState s, uint64_t incarnation);
  void probe_tick();
  void gossip_tick();
  void reconnect_tick();
  void suspicion_tick();
  size_t live_count() const;
  std::vector<Member*> random_members(size_t k, const std::string& except);
  wire::MemberUpdate self_update() const;
};

}  // namespace meshkv::node
