// Sealing and opening datagrams, and proving identities (layout and threat
// model in node/security.h).
//
// Who may send what:
//   - A Hello or a Join may be sealed with the cluster key alone: they are
//     how a process introduces itself, before the receiver knows its
//     identity. Anything else sealed that way is refused.
//   - Everything else is sealed with the key of the (sender, receiver)
//     identity pair, derived from the cluster key and both identities. Only
//     a process whose Hello proved its identity (a signature over its uid and
//     name, from an allowed key) has such a key with us, so a node outside
//     allowed_peers can neither send us state nor have state relayed to it.
//   - A membership update about a process whose identity we do not know yet
//     is not applied; we ask that process for its Hello instead.
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "crypto/seal.h"
#include "node/sealing.h"
#include "wire/codec.h"

namespace meshkv::node {

namespace {
constexpr uint8_t kSealMagic0 = 0x6D, kSealMagic1 = 0x53, kSealVersion = 1;
constexpr uint8_t kKindCluster = 1, kKindPair = 2;
constexpr uint64_t kMs = 1000;
constexpr uint64_t kHelloEveryUs = 500 * kMs;  // asking one address for its identity
constexpr size_t kMaxIdentities = 8192;

void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

crypto::Key32 datagram_key(const crypto::ClusterKey& k) {
  static constexpr char kContext[] = "meshkv datagram v1";
  crypto::Key32 out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const uint8_t*>(kContext),
                     sizeof kContext - 1, k.key.data(), k.key.size());
  return out;
}
}  // namespace

Sealing::Sealing(uint64_t self_uid, const std::string& self_name, const Now& now, Hooks hooks)
    : self_uid_(self_uid), self_name_(self_name), now_(now), hooks_(std::move(hooks)) {}

void Sealing::enable(Security s, std::mt19937_64& rng) {
  enabled_ = true;
  for (const auto& k : s.keys) keys_.push_back({k, datagram_key(k)});
  if (s.identity) {
    identity_ = *s.identity;
  } else {
    // A per-process identity, drawn from the engine's seed so that a
    // simulation stays reproducible.
    crypto::Key32 seed{};
    for (size_t b = 0; b < seed.size(); b += 8) put64(seed.data() + b, rng());
    identity_ = crypto::identity_from_seed(seed);
  }
  self_fingerprint_ = crypto::fingerprint(identity_.pk);
  const auto sig = crypto::sign_cert(identity_, self_uid_, self_name_);
  self_signature_.assign(sig.begin(), sig.end());
  allowed_peers_ = std::move(s.allowed_peers);
}

Status Sealing::install_key(const crypto::ClusterKey& k) {
  if (!enabled_) return Status::Invalid("this node's mesh is not sealed: start it with --key-file");
  for (const auto& have : keys_) {
    if (have.key.id == k.id) return Status::Invalid("key " + crypto::key_id_hex(k.id) + " is installed already");
  }
  keys_.push_back({k, datagram_key(k)});
  hooks_.log(LogLevel::kInfo, "installed cluster key " + crypto::key_id_hex(k.id));
  return Status::Ok();
}

Status Sealing::use_key(uint64_t id) {
  auto it = std::find_if(keys_.begin(), keys_.end(), [&](const auto& k) { return k.key.id == id; });
  if (it == keys_.end()) return Status::NotFound("key " + crypto::key_id_hex(id) + " is not installed");
  std::rotate(keys_.begin(), it, it + 1);
  hooks_.log(LogLevel::kInfo, "sealing with cluster key " + crypto::key_id_hex(id));
  return Status::Ok();
}

Status Sealing::remove_key(uint64_t id) {
  auto it = std::find_if(keys_.begin(), keys_.end(), [&](const auto& k) { return k.key.id == id; });
  if (it == keys_.end()) return Status::NotFound("key " + crypto::key_id_hex(id) + " is not installed");
  if (it == keys_.begin()) {
    return Status::Invalid("key " + crypto::key_id_hex(id) +
                           " seals this node's datagrams: `use` another key first");
  }
  keys_.erase(it);
  for (auto& [uid, p] : identities_) p.pair_keys.erase(id);
  hooks_.log(LogLevel::kInfo, "removed cluster key " + crypto::key_id_hex(id));
  return Status::Ok();
}

wire::Value Sealing::describe(bool insecure) const {
  wire::Value v = wire::Value::object();
  v.set("sealed", enabled_);
  if (!enabled_) {
    // Said wherever the node describes itself: nothing is authenticated.
    if (insecure) v.set("insecure", true);
    return v;
  }
  v.set("identity", self_fingerprint_);
  v.set("public_key", crypto::encode_public(identity_.pk));
  wire::Value keys = wire::Value::list();
  for (size_t k = 0; k < keys_.size(); ++k) {
    wire::Value e = wire::Value::object();
    e.set("id", crypto::key_id_hex(keys_[k].key.id));
    e.set("primary", k == 0);
    keys.push(std::move(e));
  }
  v.set("keys", std::move(keys));
  // Always a list of fingerprints; empty, with any_key_holder true, when no
  // allowlist is set and any holder of a cluster key may join.
  wire::Value a = wire::Value::list();
  for (const auto& pk : allowed_peers_) a.push(crypto::fingerprint(pk));
  v.set("any_key_holder", allowed_peers_.empty());
  v.set("allowed_peers", std::move(a));
  return v;
}

// ---- datagrams ---------------------------------------------------------------

const crypto::Key32* Sealing::pair_key(uint64_t uid, uint64_t key_id) {
  auto p = identities_.find(uid);
  if (p == identities_.end()) return nullptr;
  auto& cache = p->second.pair_keys;
  if (auto k = cache.find(key_id); k != cache.end()) return &k->second;
  auto ks = std::find_if(keys_.begin(), keys_.end(), [&](const auto& k) { return k.key.id == key_id; });
  if (ks == keys_.end()) return nullptr;
  auto derived = crypto::pair_key(ks->key, identity_, p->second.pk);
  if (!derived.ok()) return nullptr;
  return &cache.emplace(key_id, *derived).first->second;
}

uint64_t Sealing::receiver_at(const Endpoint& to) const {
  if (auto p = proven_at_.find(to); p != proven_at_.end()) return p->second;
  return hooks_.member_uid_at(to);
}

void Sealing::seal(const Endpoint& to, const wire::Bytes& msg, bool unbound, std::vector<uint8_t>& out) {
  out.clear();
  const KeyState& primary = keys_.front();
  const uint64_t receiver = receiver_at(to);
  const crypto::Key32* key = &primary.datagram_key;
  if (!unbound) {
    key = receiver ? pair_key(receiver, primary.key.id) : nullptr;
    if (!key) {
      // We cannot seal this for the receiver: learn who it is first; the
      // protocol retries (retransmission, anti-entropy, gossip).
      ++counters_.awaiting_identity;
      ask_identity(to);
      return;
    }
  }
  const uint8_t kind = unbound ? kKindCluster : kKindPair;
  uint8_t ad[kSealedHeaderBytes] = {kSealMagic0, kSealMagic1, kSealVersion, kind};
  put64(ad + 4, primary.key.id);
  put64(ad + 12, self_uid_);
  put64(ad + 20, receiver);
  // Pair-sealed datagrams count per receiver, so its window sees one dense
  // sequence. Cluster-sealed ones (Hello, Join) share one counter whatever
  // their receiver: the receiver keeps one window for them per sender, and
  // two sequences in one window would collide. The gaps this leaves are
  // harmless, and these datagrams are few.
  const uint64_t counter = kind == kKindPair ? ++send_counters_[receiver] : ++cluster_counter_;
  std::vector<uint8_t> plain(16 + msg.size());
  put64(plain.data(), counter);
  put64(plain.data() + 8, now_.wall_ms);
  std::memcpy(plain.data() + 16, msg.data(), msg.size());
  out.assign(ad, ad + kSealedHeaderBytes);
  crypto::seal(*key, ad, sizeof ad, plain.data(), plain.size(), out);
}

bool Sealing::looks_sealed(const uint8_t* d, size_t n) {
  return n >= kSealedOverhead && d[0] == kSealMagic0 && d[1] == kSealMagic1;
}

void Sealing::log_refusal(const Endpoint& from, const std::string& why) {
  if (refusal_logged_.size() >= kMaxRefusalLogs || !refusal_logged_.insert(from).second) return;
  hooks_.log(LogLevel::kWarn, "dropping datagrams from " + from.to_string() + ": " + why +
                                  " (logged once per address; status counts them)");
}

bool Sealing::open(const Endpoint& from, const uint8_t* d, size_t n, wire::Bytes& inner) {
  if (n < kSealedOverhead || d[0] != kSealMagic0 || d[1] != kSealMagic1 || d[2] != kSealVersion ||
      (d[3] != kKindCluster && d[3] != kKindPair)) {
    ++counters_.unsealed;
    log_refusal(from, "not sealed (or damaged on the way), and this mesh is sealed: start that node with the cluster key (--key-file)");
    return false;
  }
  const uint8_t kind = d[3];
  const uint64_t key_id = get64(d + 4), sender = get64(d + 12), receiver = get64(d + 20);
  auto ks = std::find_if(keys_.begin(), keys_.end(), [&](const auto& k) { return k.key.id == key_id; });
  if (ks == keys_.end()) {
    ++counters_.unknown_key;
    log_refusal(from, "sealed with cluster key " + crypto::key_id_hex(key_id) + ", which this node does not hold");
    return false;
  }
  if (receiver != 0 && receiver != self_uid_) {
    ++counters_.stale_session;  // sealed for an earlier process of ours: a replay, or news too late
    return false;
  }
  if (receiver == 0 && kind == kKindPair) {
    ++counters_.unsealed;
    return false;
  }
  const crypto::Key32* key = &ks->datagram_key;
  if (kind == kKindPair) {
    key = pair_key(sender, key_id);
    if (!key) {
      ++counters_.unknown_sender;
      ask_identity(from);
      return false;
    }
  }
  std::vector<uint8_t> plain;
  if (!crypto::open(*key, d, kSealedHeaderBytes, d + kSealedHeaderBytes, n - kSealedHeaderBytes, plain) ||
      plain.size() < 16) {
    ++counters_.auth_failed;
    return false;
  }
  return accept(kind, sender, receiver == 0, plain, inner);
}

// An authentic datagram: whether it is fresh, and what the sender may send
// sealed that way.
bool Sealing::accept(uint8_t kind, uint64_t sender, bool unbound, const std::vector<uint8_t>& plain,
                     wire::Bytes& inner) {
  const uint64_t counter = get64(plain.data()), sent_ms = get64(plain.data() + 8);
  if (unbound) {
    const uint64_t skew = sent_ms > now_.wall_ms ? sent_ms - now_.wall_ms : now_.wall_ms - sent_ms;
    if (skew > kUnboundFreshnessMs) {
      ++counters_.replayed;
      return false;
    }
  }
  auto& windows = kind == kKindPair ? pair_windows_ : cluster_windows_;
  if (windows.size() > kMaxIdentities && !windows.count(sender)) windows.clear();
  crypto::ReplayWindow& w = windows[sender];
  if (!w.check(counter)) {
    ++counters_.replayed;
    return false;
  }
  w.commit(counter);
  inner.assign(plain.begin() + 16, plain.end());
  // Only introductions may come sealed with the cluster key alone.
  auto h = wire::peek_header(inner.data(), inner.size());
  if (!h.ok() || h->sender != sender) {
    ++counters_.malformed;
    return false;
  }
  if (kind == kKindCluster && h->type != wire::MsgType::kHello && h->type != wire::MsgType::kJoin) {
    ++counters_.unknown_sender;
    return false;
  }
  return true;
}

// ---- identities --------------------------------------------------------------

void Sealing::forget(uint64_t uid) {
  identities_.erase(uid);
  std::erase_if(proven_at_, [&](const auto& p) { return p.second == uid; });
}

bool Sealing::admit(uint64_t uid, const Endpoint& addr) {
  if (!enabled_ || identities_.count(uid) != 0) return true;
  ask_identity(addr);
  return false;
}

wire::Hello Sealing::hello(bool want_reply) const {
  wire::Hello h;
  h.self = hooks_.self();
  h.public_key.assign(identity_.pk.bytes.begin(), identity_.pk.bytes.end());
  h.signature = self_signature_;
  h.want_reply = want_reply;
  return h;
}

void Sealing::ask_identity(const Endpoint& to) {
  if (auto it = hello_asked_us_.find(to); it != hello_asked_us_.end() && now_.mono_us < it->second + kHelloEveryUs) {
    return;
  }
  if (hello_asked_us_.size() > 4096) hello_asked_us_.clear();
  hello_asked_us_[to] = now_.mono_us;
  hooks_.sender->send(to, hello(true));
}

std::optional<Sealing::Proven> Sealing::on_hello(const Endpoint& from, uint64_t sender,
                                                 const wire::Hello& h) {
  if (!enabled_ || h.self.uid != sender || h.public_key.size() != 32 || h.signature.size() != 64) {
    ++counters_.dropped;
    return std::nullopt;
  }
  crypto::PublicKey pk{};
  std::memcpy(pk.bytes.data(), h.public_key.data(), 32);
  std::array<uint8_t, 64> sig{};
  std::memcpy(sig.data(), h.signature.data(), 64);
  if (!crypto::verify_cert(pk, sender, h.self.name, sig)) {
    ++counters_.refused_peers;
    return std::nullopt;
  }
  const std::string fp = crypto::fingerprint(pk);
  if (!allowed_peers_.empty() &&
      std::find(allowed_peers_.begin(), allowed_peers_.end(), pk) == allowed_peers_.end()) {
    ++counters_.refused_peers;
    if (refused_logged_.size() < 64 && refused_logged_.insert(fp).second) {
      hooks_.log(LogLevel::kWarn, "refused " + h.self.name + " at " + from.to_string() + ": identity " + fp +
                                      " is not in allowed_peers");
    }
    return std::nullopt;
  }
  if (identities_.size() >= kMaxIdentities && !identities_.count(sender)) {
    // Forget identities of processes that are no longer members.
    std::erase_if(identities_, [&](const auto& e) { return !hooks_.is_member(e.first); });
  }
  auto [it, fresh] = identities_.try_emplace(sender);
  it->second.pk = pk;
  it->second.name = h.self.name;
  it->second.fingerprint = fp;
  if (proven_at_.size() > kMaxIdentities) proven_at_.clear();
  proven_at_[from] = sender;
  if (h.want_reply) hooks_.sender->send(from, hello(false));
  Proven p{h.self, fp};
  p.update.addr = from;
  return p;
}

}  // namespace meshkv::node
