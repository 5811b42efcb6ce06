// Internal to src/node: the security component. It owns the cluster keys,
// this process's identity, the identities other processes proved, and the
// replay windows; it seals and opens every datagram of a sealed mesh. The
// datagram layout and the threat model are in node/security.h.
//
// Contract:
//   - Until enable(), the mesh is unsealed: seal() and open() must not be
//     called, admit() admits everyone.
//   - open() returns true only for a datagram that authenticates under a key
//     this node holds, is fresh (replay window), and, when sealed with the
//     cluster key alone, is an introduction (Hello or Join). Every refusal
//     is counted by reason.
//   - A process is admitted as a member only once its Hello proved its
//     identity; until then admit() asks it (at most every 500 ms per address).
#pragma once

#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/keys.h"
#include "crypto/replay.h"
#include "node/engine.h"
#include "node/security.h"
#include "node/sender.h"
#include "wire/messages.h"

namespace meshkv::node {

class Sealing {
 public:
  struct Counters {
    uint64_t unsealed = 0, auth_failed = 0, unknown_key = 0, replayed = 0, stale_session = 0;
    uint64_t unknown_sender = 0, refused_peers = 0, awaiting_identity = 0, control_refused = 0;
    uint64_t control_handshake_timeouts = 0, control_handshake_too_large = 0, control_evicted = 0,
             control_rejected = 0;
    uint64_t malformed = 0;  // authentic, but the inner header is not the sender's
    uint64_t dropped = 0;    // Hellos that make no sense (unsealed mesh, bad sizes)
  };
  // What sealing needs to know of the rest of the engine.
  struct Hooks {
    Sender* sender = nullptr;                                // for Hellos
    std::function<uint64_t(const Endpoint&)> member_uid_at;  // 0: no member there
    std::function<bool(uint64_t uid)> is_member;
    std::function<wire::MemberUpdate()> self;  // this node's own membership record
    LogFn log;
  };
  // An identity a Hello proved: the sender's record, to be applied as a
  // membership update, and its fingerprint.
  struct Proven {
    wire::MemberUpdate update;
    std::string fingerprint;
  };

  Sealing(uint64_t self_uid, const std::string& self_name, const Now& now, Hooks hooks);

  // Seals the mesh with `s`; identity drawn from `rng` when `s` has none.
  // REQUIRES: !s.keys.empty(), called once, before any traffic.
  void enable(Security s, std::mt19937_64& rng);
  bool enabled() const { return enabled_; }

  // Key rotation; state is unchanged on error.
  Status install_key(const crypto::ClusterKey& k);
  Status use_key(uint64_t id);
  Status remove_key(uint64_t id);

  // `out` becomes the sealed datagram carrying `msg` to `to`, or stays empty
  // when the receiver's identity is not known yet (it is asked for it).
  // `unbound`: an introduction, sealed with the cluster key alone.
  void seal(const Endpoint& to, const wire::Bytes& msg, bool unbound, std::vector<uint8_t>& out);
  // The message inside a sealed datagram, or false (counted).
  bool open(const Endpoint& from, const uint8_t* data, size_t n, wire::Bytes& inner);
  // Whether `data` starts as a sealed datagram does (for an unsealed node to
  // say why it drops one).
  static bool looks_sealed(const uint8_t* data, size_t n);
  // Logs, once per address (and for at most kMaxRefusalLogs addresses), why
  // datagrams from `from` are dropped: a node that cannot join otherwise
  // hears nothing, so the log of the node refusing it is where the cause shows.
  void log_refusal(const Endpoint& from, const std::string& why);

  // Whether a membership update about process `uid` may be applied; if not,
  // that process is asked to prove its identity.
  bool admit(uint64_t uid, const Endpoint& addr);
  wire::Hello hello(bool want_reply) const;
  // A Hello received: the proven identity, or nothing (refused, counted).
  std::optional<Proven> on_hello(const Endpoint& from, uint64_t sender, const wire::Hello& h);

  // Process `uid` is no longer a member (removed): its proven identity is
  // dropped, so that it must prove it again to come back. Its replay
  // windows and our counter towards it are kept (they only ever hold
  // processes that proved an identity, and bounded): dropping them would
  // let its old datagrams be replayed, or make ours look replayed to it.
  void forget(uint64_t uid);

  void note_control_refused() { ++counters_.control_refused; }
  Counters& control_counters() { return counters_; }
  // {sealed, identity, public_key, keys, allowed_peers} (see Engine::security).
  wire::Value describe(bool insecure) const;
  const Counters& counters() const { return counters_; }

 private:
  struct KeyState {
    crypto::ClusterKey key;
    crypto::Key32 datagram_key;  // derived from the cluster key for kind-1 datagrams
  };
  struct PeerIdentity {
    crypto::PublicKey pk;
    std::string name, fingerprint;
    std::map<uint64_t, crypto::Key32> pair_keys;  // by cluster key id
  };

  const crypto::Key32* pair_key(uint64_t uid, uint64_t key_id);
  uint64_t receiver_at(const Endpoint& to) const;
  bool accept(uint8_t kind, uint64_t sender, bool unbound, const std::vector<uint8_t>& plain,
              wire::Bytes& inner);
  void ask_identity(const Endpoint& to);

  const uint64_t self_uid_;
  const std::string& self_name_;
  const Now& now_;
  Hooks hooks_;
  Counters counters_;
  bool enabled_ = false;
  std::vector<KeyState> keys_;  // [0] seals
  crypto::Identity identity_{};
  std::string self_fingerprint_;
  std::string self_signature_;  // over (self_uid, self_name)
  std::vector<crypto::PublicKey> allowed_peers_;
  std::unordered_map<uint64_t, PeerIdentity> identities_;  // by uid, proven by a Hello
  std::unordered_map<uint64_t, crypto::ReplayWindow> pair_windows_, cluster_windows_;  // by sender uid
  std::unordered_map<uint64_t, uint64_t> send_counters_;  // pair-sealed, by receiver uid
  uint64_t cluster_counter_ = 0;                           // cluster-sealed, any receiver
  std::map<Endpoint, uint64_t> hello_asked_us_;            // by address: when we last asked
  // The process that last proved its identity from an address. A restarted
  // node is there before membership says so, and only it can open what we
  // seal for that address.
  std::map<Endpoint, uint64_t> proven_at_;
  std::set<std::string> refused_logged_;
  static constexpr size_t kMaxRefusalLogs = 64;
  std::set<Endpoint> refusal_logged_;
};

}  // namespace meshkv::node
