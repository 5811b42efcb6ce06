// Internal to src/node: the membership component. It owns the member table
// and SWIM failure detection: probes, indirect probes through relays,
// suspicion, incarnations, gossip broadcasts, and the seeds it rejoins
// through. Nothing outside membership.cc and probe.cc changes a Member.
//
// Contract:
//   - Every change to what this node believes about a member (a member
//     added; a newer statement applied; a suspect or a dead declared) and
//     every refutation of a rumour about this node is reported once, as a
//     MemberEvent, after the table reflects it. Components react to events;
//     they read the table only through the const accessors below.
//   - In a sealed mesh an update about a process is applied only once
//     `admit` accepts it (its identity is proven).
//   - Membership forgets: a member dead, or left, for longer than
//     Config::reap_after() is removed (a kRemoved event), and so is one an
//     operator forgets (forget(), which tells the others to remove it too).
//     What is removed is remembered as "gone" (name, process, incarnation)
//     for another reap_after(), so that gossip about it (dead, left, or a
//     stale alive) does not bring it back; a new process of that name, or
//     the same process at a newer incarnation (it refuted), is added afresh.
//   - Bounded: at most 4096 members, 4096 gone, 1024 relayed probes,
//     8192 names of processes and 1024 statements waiting to be gossiped.
//     New members and relays beyond their bound are refused (queue drops);
//     the oldest gone and names of processes that are no longer members are
//     evicted (table drops); the most gossiped statement makes room for a
//     new one (gossip drops).
//   - A member is `verified` once this node hears from it directly: a
//     datagram from its process, from its address; every event says
//     whether it was before and after (events.h).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <random>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "node/config.h"
#include "node/effects.h"
#include "node/events.h"
#include "node/protocol_math.h"
#include "node/sender.h"
#include "node/timers.h"
#include "wire/messages.h"
#include "wire/value.h"

namespace meshkv::node {

struct Member {
  uint64_t key = 0;  // unique and stable for this record: names its timers
  std::string name;
  uint64_t uid = 0;
  Endpoint addr;
  uint64_t incarnation = 0;
  wire::MemberState state = wire::MemberState::kAlive;
  uint64_t state_since_us = 0;
  uint64_t last_contact_us = 0;  // 0: never heard from directly
  RttEstimator rtt;              // from probes and from acknowledged pushes
  // Its wall clock minus ours (ms), smoothed; valid once has_offset;
  // measured at offset_at_us. Forgotten when a new process takes the name.
  double clock_offset_ms = 0;
  bool has_offset = false;
  uint64_t offset_at_us = 0;
  uint64_t wall_sent_us = 0;  // when our PingAck to it last carried our wall clock
  bool has_wall_sent = false;
  uint64_t suspect_deadline_us = 0;  // when a suspect is declared dead
  uint64_t told_us = 0;              // when we last told it a rumour about itself
  std::string fingerprint;           // of its identity, in a sealed mesh
  // A datagram from process `uid`, sent from `addr`, reached us (reset when
  // either changes). Until then it may exist only in a forged datagram: it
  // does not count toward the majority (anti_entropy.cc).
  bool verified = false;
  // Greeting pings sent while it was not verified (Membership::greet_due):
  // at most kMaxGreetings, so a forged name costs a few datagrams, not a
  // stream of them.
  uint8_t greetings = 0;

  bool reachable() const { return MemberEvent::reachable(state); }
  wire::MemberUpdate update() const { return {name, uid, addr, incarnation, state}; }
};

class Membership {
 public:
  struct Counters {
    uint64_t probes_sent = 0, probe_failures = 0;
    uint64_t queue_drops = 0;  // members or relays refused at their bound
    uint64_t removed = 0;      // members removed: reaped, or forgotten (here or elsewhere)
    uint64_t forgotten = 0;    // of them, forgotten at this node's operator's request
    uint64_t table_drops = 0;  // gone members and process names evicted at their bound
    uint64_t gossip_drops = 0;  // statements not gossiped on: the queue was at its bound
  };
  struct Hooks {
    Sender* sender = nullptr;
    // Whether an update about process `uid` at `addr` may be applied.
    std::function<bool(uint64_t uid, const Endpoint& addr)> admit;
    std::function<void(const MemberEvent&)> changed;
    LogFn log;
    // The anti-entropy digest to ride in a direct probe of `target` (at most
    // `budget` bytes encoded), when one is due; none otherwise.
    std::function<std::optional<wire::Digest>(const Member& target, size_t budget)> digest;
  };
  struct Self {
    std::string name;
    uint64_t uid = 0;
    Endpoint addr;
  };

  // Draws the first probe's jitter from `rng` (construction order matters
  // for a reproducible simulation).
  Membership(const Config& cfg, Self self, const Now& now, std::mt19937_64& rng, Timers& timers,
             Hooks hooks);

  // ---- inputs ----
  // Contacts `seeds` (remembered: while alone, they are retried).
  void join(const std::vector<Endpoint>& seeds);
  // Announces a graceful leave to every reachable member; this node then
  // speaks of itself as left.
  void leave();
  bool leaving() const { return leaving_; }
  // Any datagram from process `uid` at `from`.
  void heard_from(const Endpoint& from, uint64_t uid);
  // `from`: where the update came from directly, if it did (to answer it).
  void apply_update(const wire::MemberUpdate& u, const Endpoint* from);
  void on_members(const Endpoint& from, const wire::Members& m);
  void on_join(const Endpoint& from, const wire::Join& j);
  void on_ping(const Endpoint& from, uint64_t sender, const wire::Ping& p);
  void on_ping_req(const Endpoint& from, const wire::PingReq& p);
  void on_ping_ack(uint64_t sender, const wire::PingAck& a);
  // Runs what is due: suspicion timeouts, probes, gossip, reconnection.
  void tick();
  // An RTT measured by another component (an acknowledged push).
  void sample_rtt(std::string_view name, uint64_t rtt_us);
  // A push to `name` first sent at `sent_us` was not acknowledged within the
  // RTO: see RttEstimator::expired.
  void rto_expired(std::string_view name, uint64_t sent_us, uint64_t now_us);
  // The fingerprint of process `uid`'s proven identity, shown by peers.
  void note_identity(uint64_t uid, const std::string& fingerprint);
  // Removes member `name` at once, everywhere: it is declared left (told to
  // every reachable member, itself included, and gossiped), then removed
  // here. Returns its record as it was. Refused: NotFound for a name that is
  // no member, Invalid for this node and for a member that is alive (a live
  // process would refute and be added again at once: stop it instead). A
  // suspect that is in fact alive refutes and comes back.
  Result<wire::MemberUpdate> forget(std::string_view name);

  // ---- queries ----
  const std::map<std::string, Member, std::less<>>& members() const { return members_; }
  const Member* find(std::string_view name) const;
  const Member* by_uid(uint64_t uid) const;
  const Member* at(const Endpoint& addr) const;
  // The name a process (uid) went by, self included; "" if never seen.
  const std::string& name_of(uint64_t uid) const;
  // Up to `k` reachable members other than `except`, at random (uses the
  // engine's generator), verified members before the others.
  std::vector<const Member*> random_members(size_t k, std::string_view except) const;
  // The clock offsets (ms) of reachable members whose estimate is current:
  // measured within the last offset_fresh_us(). What the clock-offset guard
  // judges this node's clock by; a member not yet measured does not count.
  std::vector<double> current_offsets() const;
  // Whether `m`'s offset estimate is current (see current_offsets).
  bool offset_current(const Member& m) const;
  // Reachable members, self included.
  size_t live_count() const { return 1 + reachable_count_; }
  bool has_seeds() const { return !seeds_.empty(); }
  uint64_t incarnation() const { return incarnation_; }
  const std::string& self_name() const { return self_.name; }
  wire::MemberUpdate self_update() const;
  const Counters& counters() const { return counters_; }
  // Whether `name` is remembered as gone (removed, and not back since).
  bool gone(std::string_view name) const { return ghosts_.count(name) != 0; }
  // {reap_after_ms, removed, forgotten, gone, process_names, introductions,
  // gossip_queue, unverified, table_drops, gossip_drops} (status): counters,
  // and the sizes of the bounded tables.
  wire::Value status() const;

 private:
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
  // A member removed from the table, remembered for reap_after().
  struct Gone {
    uint64_t uid = 0;
    Endpoint addr;
    uint64_t incarnation = 0;
    wire::MemberState state = wire::MemberState::kDead;  // when removed
    uint64_t since_us = 0;                               // when removed
    uint64_t told_us = 0;  // when we last told that process it is gone
    wire::MemberUpdate update(const std::string& name) const { return {name, uid, addr, incarnation, state}; }
  };
  // A process's name, and when it was last a member's process.
  struct UidName {
    std::string name;
    uint64_t seen_us = 0;
  };
  // A membership update waiting to be gossiped a few more times.
  struct Broadcast {
    wire::MemberUpdate update;
    unsigned transmits_left = 0;
    uint64_t seq = 0;  // queued order, for ties
  };

  Member* find_mut(std::string_view name);
  Member* by_uid_mut(uint64_t uid);
  void add(const wire::MemberUpdate& u);
  // Whether an update about a name that is no member is news: the gone
  // record `g` stops what it already knows (and answers a stale alive from
  // that process itself, so that it refutes).
  bool news_despite(const wire::MemberUpdate& u, Gone& g);
  // Takes `m` out of the table, remembers it as gone, reports kRemoved.
  void remove(Member& m);
  void remember_gone(const wire::MemberUpdate& u);
  // Names process `uid` (for by_uid and display); evicts, at the bound,
  // names of processes that are no longer members, oldest first.
  void name_uid(uint64_t uid, const std::string& name);
  // Removes members dead or left for reap_after(), forgets gone records as
  // old, and re-arms the reap timer.
  void reap_tick();
  void due_for_reaping(uint64_t at_us);
  // Applies a state (and incarnation) to `m`, then reports the change
  // (`was_verified`: m.verified before the caller changed it).
  void change(Member& m, wire::MemberState s, uint64_t incarnation, bool new_process, bool was_verified);
  // Heard from directly: reports that it now counts.
  void verify(Member& m);
  // A member we were told of and have not heard from gets a ping at once
  // (within kGreetingsPerRound a gossip interval; the rest at the next
  // gossip rounds): its answer verifies it here, and the ping verifies us
  // there. Until then neither side pushes writes to the other.
  void greet(const Member& m);
  void greet_due();
  void refute(uint64_t seen_incarnation);
  void queue_broadcast(const wire::MemberUpdate& u);
  std::vector<wire::MemberUpdate> take_piggyback(size_t budget_bytes);
  std::vector<wire::MemberUpdate> all_updates() const;
  void send_members(const Endpoint& to, const std::vector<wire::MemberUpdate>& ups);
  uint64_t suspicion_deadline() const;
  void probe_tick();
  uint64_t offset_fresh_us() const;
  void probe_timeout(Member& target);
  void start_probe();
  void gossip_tick();
  void reconnect_tick();
  void check_silent_seeds();
  static constexpr uint64_t kSeedSilentMs = 5000;
  static constexpr size_t kMaxSeedWatch = 64;
  void suspicion_tick();
  // Timers follow the fields they mirror: these re-set them.
  void arm_gossip();
  void arm_probe();

  const Config& cfg_;
  const Self self_;
  const Now& now_;
  std::mt19937_64& rng_;
  Timers& timers_;
  Hooks hooks_;
  Counters counters_;
  uint64_t incarnation_ = 0;
  bool leaving_ = false;

  std::map<std::string, Member, std::less<>> members_;
  uint64_t next_key_ = 0;
  // Kept by add() and change(), so that per-event work does not walk every
  // member (the 1000-node simulation spent most of its time there).
  size_t reachable_count_ = 0;
  std::unordered_map<uint64_t, UidName> uid_names_;  // members' processes, and past ones for display
  std::map<std::string, Gone, std::less<>> ghosts_;  // removed members, by name
  std::deque<std::pair<uint64_t, std::string>> ghost_order_;  // (since_us, name), oldest first; may be stale
  // The gossip queue, by member name, and its order: (transmits_left, seq)
  // -> name, so that replacing a member's statement, evicting the most-told
  // one and taking the least-told ones cost a lookup each, not a walk of the
  // queue (a flood of forged statements made that walk most of a node's work).
  std::unordered_map<std::string, Broadcast> broadcasts_;
  std::map<std::pair<unsigned, uint64_t>, std::string> broadcast_order_;
  uint64_t broadcast_seq_ = 0;
  // Suspects by deadline: (suspect_deadline_us, name). suspicion_tick takes
  // only those due, and gossip_tick reminds only suspects, without walking
  // every member on each event.
  std::set<std::pair<uint64_t, std::string>> suspects_;
  // Members by address, for at(): transport and sealing ask it of every
  // datagram.
  std::set<std::pair<Endpoint, std::string>> by_addr_;
  // Members whose clock offset was measured (has_offset): only members that
  // answered probes, few beside the forged ones a flood adds.
  std::set<std::string, std::less<>> measured_;
  // Members heard from directly (verified): few, and what random_members
  // and gossip_tick look at first.
  std::set<std::string, std::less<>> verified_;
  std::vector<std::string> probe_order_;
  size_t probe_index_ = 0;
  Probe probe_;
  uint64_t probe_seq_ = 0;
  std::map<uint64_t, Relay> relays_;  // by our probe seq
  std::vector<Endpoint> seeds_;
  // Each address join() was asked to contact: whether anything sealed and
  // well-formed came back from it. One that stays silent for kSeedSilentMs
  // is logged once (per join), with what can make a node silent.
  struct SeedWatch {
    Endpoint addr;
    uint64_t asked_us = 0;
    bool answered = false;
    bool warned = false;
  };
  std::vector<SeedWatch> seed_watch_;
  std::unordered_map<uint64_t, uint64_t> introduced_us_;  // unknown uid -> when we asked it (last second)
  uint64_t last_intro_us_ = 0;
  uint64_t last_gossip_us_ = 0;
  // Members to greet (greet()), oldest first; may be stale. Greetings sent
  // in the gossip interval from greet_window_us_.
  std::deque<std::string> to_greet_;
  uint64_t greet_window_us_ = 0;
  size_t greeted_ = 0;
  // Greetings in flight by probe seq: whom, and when. Their answers are
  // round-trip samples, so a member's RTO is measured before its first
  // probe (a round of N probes). The oldest go past kMaxGreetingsInFlight.
  std::map<uint64_t, std::pair<std::string, uint64_t>> greetings_in_flight_;

  // Periodic work (monotonic us).
  uint64_t next_probe_us_ = 0, next_gossip_us_ = 0, next_reconnect_us_ = 0;
  uint64_t next_reap_us_ = ~uint64_t{0};  // the earliest a member or gone record is due
  // While alone, seeds are retried from 100 ms, doubling to 1 s: a node
  // started together with its seed should not wait a second for it.
  uint64_t alone_retry_ms_ = 100;
};

}  // namespace meshkv::node
