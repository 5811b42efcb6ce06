// Internal to src/node: the replication component, the eager path. Local
// writes are packed into pushes and sent to every reachable member, at most
// 256 in flight per member, retransmitted with backoff from the member's RTT
// until acknowledged or given up (anti-entropy then repairs). Received pushes
// are acknowledged always and applied once (a window of seen msg_seqs per
// sender). It owns the per-member push queues, the retransmission timers,
// the dedup windows and the traces of traced writes.
//
// Contract:
//   - A write given to note_local_write() leaves by flush(), or by
//     flush_gathered() once the write rate allows (at most kPushHoldUs
//     later; its kPushHold timer says when).
//   - Queues of a member that becomes unreachable are dropped when its
//     MemberEvent arrives (on_member); those of a removed member, whole.
//   - Entries a push made win are reported through `applied`.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "crdt/replica.h"
#include "node/config.h"
#include "node/events.h"
#include "node/membership.h"
#include "node/sender.h"
#include "node/seq_window.h"
#include "node/timers.h"

namespace meshkv::node {

class Replication {
 public:
  struct Counters {
    uint64_t retransmits = 0;
    uint64_t retransmits_deferred = 0;  // expiries waited out: the member was silent, many in flight
    uint64_t push_gave_up = 0;  // retransmissions exhausted; anti-entropy repairs
    uint64_t duplicates = 0;    // pushes received twice (acked, not re-applied)
    uint64_t dropped = 0;       // pushes refused (bad chunk, not the sender's writes)
    uint64_t queue_drops = 0;   // pushes dropped from a full queue
  };
  struct Hooks {
    Sender* sender = nullptr;
    std::function<void(std::string_view member, uint64_t rtt_us)> sample_rtt;
    std::function<void(const crdt::KeyedEntry&)> applied;  // a replicated entry won
    // Whether the entries of process `uid` are judged (crdt/replica.h).
    std::function<crdt::Judging(uint64_t uid, const Endpoint& from, uint64_t reconciled)> judge;
    LogFn log;
    // `member` acknowledged a push of the local writes with seqs
    // [first_seq, last_seq]: it applied them (or holds newer), and a member
    // with a data directory appended them to its log before answering.
    std::function<void(std::string_view member, uint64_t first_seq, uint64_t last_seq)> acked;
    // Whether a write with a seq in [first_seq, last_seq] is waited for
    // (--wait): its push is then retransmitted every RTO, without backoff
    // and without giving up, until the wait ends (at its deadline at most).
    std::function<bool(uint64_t first_seq, uint64_t last_seq)> urgent;
    // A push to `member` first sent at `sent_us` went unacknowledged for an
    // RTO: the member's RTO backs off (RttEstimator::expired).
    std::function<void(std::string_view member, uint64_t sent_us)> expired;
    // This node's reconciled horizon (node/gc.cc), stamped on each push.
    std::function<uint64_t()> reconciled;
  };

  Replication(const Config& cfg, uint64_t self_uid, const Now& now, crdt::Replica& replica,
              const Membership& members, Timers& timers, Hooks hooks);

  // A local write (already in the replica) to push.
  void note_local_write(const crdt::KeyedEntry& ke);
  // Packs every waiting write into pushes now.
  void flush();
  // flush(), unless writes come fast, pushes left less than 1 ms ago and the
  // waiting writes do not fill a datagram: then they wait for more.
  void flush_gathered();
  void on_push(const Endpoint& from, uint64_t sender, const wire::Push& p);
  void on_ack(uint64_t sender, const wire::Ack& a);
  void on_member(const MemberEvent& e);
  // Local writes with seq >= `from_seq` were withdrawn (never durable): they
  // do not leave. Pushes holding one are dropped whole, with the earlier
  // writes they carry (anti-entropy sends those).
  void retract(uint64_t from_seq);
  // Retransmits what is due.
  void tick();

  // Starts a trace of the last push (see Engine::traced_set): its id.
  // REQUIRES: called right after flush() sent the traced write alone.
  uint64_t trace_last_push();
  wire::Value trace_report(uint64_t id, uint64_t now_us) const;

  size_t pending() const;
  size_t pending_for(std::string_view member) const;
  // Whether writers should wait (backpressure): the queue toward some
  // member that is alive and answering (it acknowledged a push within
  // kAnsweringUs, or was sent its first push less than that ago) holds
  // kCongestedAt pushes or more. Suspect, dead and silent members never
  // count: a partitioned member must not slow the writers of the rest.
  bool congested() const;
  // The fullest queue toward such a member, in pushes.
  size_t congestion() const;
  // Twice the push window: the window stays full while writers wait, and
  // a write waits behind at most about two round trips of pushes.
  static constexpr size_t kCongestedAt = 512;
  static constexpr uint64_t kAnsweringUs = 300'000;
  const Counters& counters() const { return counters_; }

 private:
  // An unacknowledged push to one member.
  struct PendingPush {
    std::vector<wire::Bytes> datagrams;  // one message, or its fragments
    uint64_t first_seq = 0, last_seq = 0;  // the seqs of the writes it carries (consecutive)
    bool sent = false;                   // false: waiting for room in the window
    unsigned attempts = 0;
    uint64_t first_sent_us = 0;
    uint64_t deadline_us = 0;
  };
  // Pushes to one member, sent or waiting.
  struct Queue {
    std::map<uint64_t, PendingPush> pending;  // by msg_seq
    size_t in_flight = 0;                     // pending entries sent and not acknowledged
    std::deque<uint64_t> waiting;             // msg_seqs not sent yet, oldest first
    uint64_t answered_us = 0;                 // the last acknowledgement (or the first push sent)
    uint64_t highest_acked = 0;               // the highest msg_seq acknowledged
  };
  // A traced write: when it was pushed, and when each member acknowledged.
  struct Trace {
    uint64_t start_us = 0;
    std::vector<std::pair<std::string, uint64_t>> acks;  // member, ack time (0: none yet)
  };
  using Timer = std::pair<uint64_t, std::pair<std::string, uint64_t>>;  // deadline, (member, msg_seq)

  void enqueue(const Member& m, uint64_t seq, uint64_t first_seq, uint64_t last_seq,
               const std::vector<wire::Bytes>& dgrams);
  // Sends waiting pushes while the member's window has room.
  void release_waiting(const Member& m, Queue& q);
  // Forgets a pending push (acknowledged, given up or dropped).
  void drop_pending(Queue& q, std::map<uint64_t, PendingPush>::iterator it);
  // The earliest retransmission timer, acknowledged or not: an acknowledged
  // one wakes the engine for nothing, which is harmless.
  void arm_retransmit();

  const Config& cfg_;
  const uint64_t self_uid_;
  const Now& now_;
  crdt::Replica& replica_;
  const Membership& members_;
  Timers& timers_;
  Hooks hooks_;
  Counters counters_;

  std::map<std::string, Queue, std::less<>> queues_;  // by member name
  uint64_t msg_seq_ = 0;
  std::vector<crdt::KeyedEntry> unpushed_;  // local writes not yet packed into pushes
  size_t unpushed_bytes_ = 0;               // their entry_size_bound sum
  uint64_t last_push_us_ = 0;               // when pushes last left
  uint64_t last_write_us_ = 0;              // the last local write
  uint64_t write_gap_us_ = 2000;            // smoothed time between local writes (at most 2 ms)
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> retransmit_timers_;
  std::unordered_map<uint64_t, SeqWindow> push_seen_;  // by sender uid
  std::map<uint64_t, Trace> traces_;                   // by msg_seq of the traced push
};

}  // namespace meshkv::node
