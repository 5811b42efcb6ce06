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
#include "node/engine_impl.h"
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

void Engine::secure(Security s) {
  Impl& i = *impl_;
  if (s.keys.empty()) return;
  i.sealed = true;
  i.cfg.mtu = i.wire_mtu - kSealedOverhead;
  for (const auto& k : s.keys) i.keys.push_back({k, datagram_key(k)});
  if (s.identity) {
    i.identity = *s.identity;
  } else {
    // A per-process identity, drawn from the engine's seed so that a
    // simulation stays reproducible.
    crypto::Key32 seed{};
    for (size_t b = 0; b < seed.size(); b += 8) put64(seed.data() + b, i.rng());
    i.identity = crypto::identity_from_seed(seed);
  }
  i.self_fingerprint = crypto::fingerprint(i.identity.pk);
  const auto sig = crypto::sign_cert(i.identity, i.self_uid, i.self_name);
  i.self_signature.assign(sig.begin(), sig.end());
  i.allowed_peers = std::move(s.allowed_peers);
}

bool Engine::sealed() const { return impl_->sealed; }
void Engine::note_control_refused() { ++impl_->counters.control_refused; }

Status Engine::install_key(const crypto::ClusterKey& k) {
  Impl& i = *impl_;
  if (!i.sealed) return Status::Invalid("this node's mesh is not sealed: start it with --key-file");
  for (const auto& have : i.keys) {
    if (have.key.id == k.id) return Status::Invalid("key " + crypto::key_id_hex(k.id) + " is installed already");
  }
  i.keys.push_back({k, datagram_key(k)});
  i.log(LogLevel::kInfo, "installed cluster key " + crypto::key_id_hex(k.id));
  return Status::Ok();
}

Status Engine::use_key(uint64_t id) {
  Impl& i = *impl_;
  auto it = std::find_if(i.keys.begin(), i.keys.end(), [&](const auto& k) { return k.key.id == id; });
  if (it == i.keys.end()) return Status::NotFound("key " + crypto::key_id_hex(id) + " is not installed");
  std::rotate(i.keys.begin(), it, it + 1);
  i.log(LogLevel::kInfo, "sealing with cluster key " + crypto::key_id_hex(id));
  return Status::Ok();
}

Status Engine::remove_key(uint64_t id) {
  Impl& i = *impl_;
  auto it = std::find_if(i.keys.begin(), i.keys.end(), [&](const auto& k) { return k.key.id == id; });
  if (it == i.keys.end()) return Status::NotFound("key " + crypto::key_id_hex(id) + " is not installed");
  if (it == i.keys.begin()) {
    return Status::Invalid("key " + crypto::key_id_hex(id) +
                           " seals this node's datagrams: `use` another key first");
  }
  i.keys.erase(it);
  for (auto& [uid, p] : i.identities) p.pair_keys.erase(id);
  i.log(LogLevel::kInfo, "removed cluster key " + crypto::key_id_hex(id));
  return Status::Ok();
}

wire::Value Engine::security() const {
  const Impl& i = *impl_;
  wire::Value v = wire::Value::object();
  v.set("sealed", i.sealed);
  if (!i.sealed) {
    // Said wherever the node describes itself: nothing is authenticated.
    if (i.cfg.insecure) v.set("insecure", true);
    return v;
  }
  v.set("identity", i.self_fingerprint);
  v.set("public_key", crypto::encode_public(i.identity.pk));
  wire::Value keys = wire::Value::list();
  for (size_t k = 0; k < i.keys.size(); ++k) {
    wire::Value e = wire::Value::object();
    e.set("id", crypto::key_id_hex(i.keys[k].key.id));
    e.set("primary", k == 0);
    keys.push(std::move(e));
  }
  v.set("keys", std::move(keys));
  if (i.allowed_peers.empty()) {
    v.set("allowed_peers", "any holder of a cluster key");
  } else {
    wire::Value a = wire::Value::list();
    for (const auto& pk : i.allowed_peers) a.push(crypto::fingerprint(pk));
    v.set("allowed_peers", std::move(a));
  }
  return v;
}

// ---- datagrams ---------------------------------------------------------------

Member* Engine::Impl::member_at(const Endpoint& addr) {
  for (auto& [name, m] : members) {
    if (m.addr == addr) return &m;
  }
  return nullptr;
}

const crypto::Key32* Engine::Impl::pair_key(uint64_t uid, uint64_t key_id) {
  auto p = identities.find(uid);
  if (p == identities.end()) return nullptr;
  auto& cache = p->second.pair_keys;
  if (auto k = cache.find(key_id); k != cache.end()) return &k->second;
  auto ks = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.key.id == key_id; });
  if (ks == keys.end()) return nullptr;
  auto derived = crypto::pair_key(ks->key, identity, p->second.pk);
  if (!derived.ok()) return nullptr;
  return &cache.emplace(key_id, *derived).first->second;
}

void Engine::Impl::seal_to(const Endpoint& to, const wire::Bytes& msg, bool unbound,
                           std::vector<uint8_t>& out) {
  out.clear();
  const KeyState& primary = keys.front();
  uint64_t receiver = 0;
  if (auto p = proven_at.find(to); p != proven_at.end()) {
    receiver = p->second;
  } else if (const Member* m = member_at(to)) {
    receiver = m->uid;
  }
  const crypto::Key32* key = nullptr;
  uint8_t kind = kKindCluster;
  if (!unbound) {
    key = receiver ? pair_key(receiver, primary.key.id) : nullptr;
    if (!key) {
      // We cannot seal this for the receiver: learn who it is first; the
      // protocol retries (retransmission, anti-entropy, gossip).
      ++counters.awaiting_identity;
      ask_identity(to);
      return;
    }
    kind = kKindPair;
  } else {
    key = &primary.datagram_key;
  }
  uint8_t ad[kSealedHeaderBytes];
  ad[0] = kSealMagic0;
  ad[1] = kSealMagic1;
  ad[2] = kSealVersion;
  ad[3] = kind;
  put64(ad + 4, primary.key.id);
  put64(ad + 12, self_uid);
  put64(ad + 20, receiver);
  // Pair-sealed datagrams count per receiver, so its window sees one dense
  // sequence. Cluster-sealed ones (Hello, Join) share one counter whatever
  // their receiver: the receiver keeps one window for them per sender, and
  // two sequences in one window would collide. The gaps this leaves are
  // harmless, and these datagrams are few.
  const uint64_t counter = kind == kKindPair ? ++send_counters[receiver] : ++cluster_counter;
  std::vector<uint8_t> plain(16 + msg.size());
  put64(plain.data(), counter);
  put64(plain.data() + 8, now.wall_ms);
  std::memcpy(plain.data() + 16, msg.data(), msg.size());
  out.assign(ad, ad + kSealedHeaderBytes);
  crypto::seal(*key, ad, sizeof ad, plain.data(), plain.size(), out);
}

bool Engine::Impl::open_sealed(const Endpoint& from, const uint8_t* d, size_t n, wire::Bytes& inner,
                               bool& unbound) {
  if (n < kSealedOverhead || d[0] != kSealMagic0 || d[1] != kSealMagic1 || d[2] != kSealVersion ||
      (d[3] != kKindCluster && d[3] != kKindPair)) {
    ++counters.unsealed;
    return false;
  }
  const uint8_t kind = d[3];
  const uint64_t key_id = get64(d + 4), sender = get64(d + 12), receiver = get64(d + 20);
  auto ks = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.key.id == key_id; });
  if (ks == keys.end()) {
    ++counters.unknown_key;
    return false;
  }
  if (receiver != 0 && receiver != self_uid) {
    ++counters.stale_session;  // sealed for an earlier process of ours: a replay, or news too late
    return false;
  }
  if (receiver == 0 && kind == kKindPair) {
    ++counters.unsealed;
    return false;
  }
  const crypto::Key32* key = &ks->datagram_key;
  if (kind == kKindPair) {
    key = pair_key(sender, key_id);
    if (!key) {
      ++counters.unknown_sender;
      ask_identity(from);
      return false;
    }
  }
  std::vector<uint8_t> plain;
  if (!crypto::open(*key, d, kSealedHeaderBytes, d + kSealedHeaderBytes, n - kSealedHeaderBytes, plain) ||
      plain.size() < 16) {
    ++counters.auth_failed;
    return false;
  }
  const uint64_t counter = get64(plain.data()), sent_ms = get64(plain.data() + 8);
  unbound = receiver == 0;
  if (unbound) {
    const uint64_t skew = sent_ms > now.wall_ms ? sent_ms - now.wall_ms : now.wall_ms - sent_ms;
    if (skew > kUnboundFreshnessMs) {
      ++counters.replayed;
      return false;
    }
  }
  auto& windows = kind == kKindPair ? pair_windows : cluster_windows;
  if (windows.size() > kMaxIdentities && !windows.count(sender)) windows.clear();
  crypto::ReplayWindow& w = windows[sender];
  if (!w.check(counter)) {
    ++counters.replayed;
    return false;
  }
  w.commit(counter);
  inner.assign(plain.begin() + 16, plain.end());
  // Only introductions may come sealed with the cluster key alone.
  auto h = wire::peek_header(inner.data(), inner.size());
  if (!h.ok() || h->sender != sender) {
    ++counters.malformed;
    return false;
  }
  if (kind == kKindCluster && h->type != wire::MsgType::kHello && h->type != wire::MsgType::kJoin) {
    ++counters.unknown_sender;
    return false;
  }
  return true;
}

// ---- identities --------------------------------------------------------------

wire::Hello Engine::Impl::hello(bool want_reply) const {
  wire::Hello h;
  h.self = self_update();
  h.public_key.assign(identity.pk.bytes.begin(), identity.pk.bytes.end());
  h.signature = self_signature;
  h.want_reply = want_reply;
  return h;
}

void Engine::Impl::ask_identity(const Endpoint& to) {
  if (auto it = hello_asked_us.find(to); it != hello_asked_us.end() && now.mono_us < it->second + kHelloEveryUs) {
    return;
  }
  if (hello_asked_us.size() > 4096) hello_asked_us.clear();
  hello_asked_us[to] = now.mono_us;
  send(to, hello(true));
}

void Engine::Impl::on_hello(const Endpoint& from, uint64_t sender, const wire::Hello& h) {
  if (!sealed || h.self.uid != sender || h.public_key.size() != 32 || h.signature.size() != 64) {
    ++counters.dropped;
    return;
  }
  crypto::PublicKey pk{};
  std::memcpy(pk.bytes.data(), h.public_key.data(), 32);
  std::array<uint8_t, 64> sig{};
  std::memcpy(sig.data(), h.signature.data(), 64);
  if (!crypto::verify_cert(pk, sender, h.self.name, sig)) {
    ++counters.refused_peers;
    return;
  }
  const std::string fp = crypto::fingerprint(pk);
  if (!allowed_peers.empty() &&
      std::find(allowed_peers.begin(), allowed_peers.end(), pk) == allowed_peers.end()) {
    ++counters.refused_peers;
    if (refused_logged.size() < 64 && refused_logged.insert(fp).second) {
      log(LogLevel::kWarn, "refused " + h.self.name + " at " + from.to_string() + ": identity " + fp +
                               " is not in allowed_peers");
    }
    return;
  }
  if (identities.size() >= kMaxIdentities && !identities.count(sender)) {
    // Forget identities of processes that are no longer members.
    std::erase_if(identities, [&](const auto& e) { return member_by_uid(e.first) == nullptr; });
  }
  auto [it, fresh] = identities.try_emplace(sender);
  it->second.pk = pk;
  it->second.name = h.self.name;
  it->second.fingerprint = fp;
  if (proven_at.size() > kMaxIdentities) proven_at.clear();
  proven_at[from] = sender;
  if (h.want_reply) send(from, hello(false));
  wire::MemberUpdate u = h.self;
  u.addr = from;
  apply_update(u, &from);
  if (Member* m = member_by_uid(sender)) m->fingerprint = fp;
}

}  // namespace meshkv::node
