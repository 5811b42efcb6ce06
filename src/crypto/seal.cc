#include "crypto/seal.h"

#include <sodium.h>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace meshkv::crypto {

static_assert(kNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(sizeof(Key32) == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(sizeof(Key32) == crypto_generichash_KEYBYTES);

namespace {

// seal() cannot report an error, and a nonce from an uninitialised RNG must
// never be used: stop instead.
void require_init() {
  if (Status s = init(); !s.ok()) {
    std::fprintf(stderr, "meshkv: %s\n", s.to_string().c_str());
    std::abort();
  }
}

constexpr std::string_view kPairLabel = "meshkv pair v1";
constexpr std::string_view kCertLabel = "meshkv cert v1";

// The signed bytes of a certificate; nothing secret in them. Sized once and
// filled in place (GCC 12 also warns spuriously on push_back after reserve).
std::vector<uint8_t> cert_message(uint64_t uid, std::string_view name) {
  std::vector<uint8_t> m(kCertLabel.size() + 8 + 4 + name.size());
  uint8_t* p = m.data();
  std::memcpy(p, kCertLabel.data(), kCertLabel.size());
  p += kCertLabel.size();
  for (int i = 0; i < 8; ++i) *p++ = static_cast<uint8_t>(uid >> (8 * i));
  const auto len = static_cast<uint32_t>(name.size());
  for (int i = 0; i < 4; ++i) *p++ = static_cast<uint8_t>(len >> (8 * i));
  if (!name.empty()) std::memcpy(p, name.data(), name.size());
  return m;
}

bool name_fits(std::string_view name) { return name.size() <= std::numeric_limits<uint32_t>::max(); }

// Nonces: 16 random bytes drawn once per thread, then a 64-bit counter.
// They never repeat: the counter within a thread, the random prefix across
// threads and processes; a forked child draws a new prefix. Drawing 24
// random bytes per message cost a getrandom system call each, 60% of the
// time of a seal.
std::atomic<uint64_t> fork_generation{0};

void next_nonce(uint8_t* nonce) {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
  struct State {
    std::array<uint8_t, 16> prefix{};
    uint64_t counter = 0;
    uint64_t generation = ~uint64_t{0};
  };
  static thread_local State st;
  const uint64_t gen = fork_generation.load(std::memory_order_relaxed);
  if (st.generation != gen || st.counter == ~uint64_t{0}) {
    randombytes_buf(st.prefix.data(), st.prefix.size());
    st.counter = 0;
    st.generation = gen;
  }
  const uint64_t c = st.counter++;
  std::memcpy(nonce, st.prefix.data(), st.prefix.size());
  for (int i = 0; i < 8; ++i) nonce[16 + i] = static_cast<uint8_t>(c >> (8 * i));
}

}  // namespace

void seal(const Key32& key, const uint8_t* ad, size_t ad_len, const uint8_t* plain, size_t n,
          std::vector<uint8_t>& out) {
  require_init();
  const size_t start = out.size();
  out.resize(start + kNonceBytes + n + kTagBytes);
  uint8_t* nonce = out.data() + start;
  next_nonce(nonce);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceBytes, &written, plain, n, ad, ad_len, nullptr, nonce,
                                             key.data());
}

bool open(const Key32& key, const uint8_t* ad, size_t ad_len, const uint8_t* sealed, size_t n,
          std::vector<uint8_t>& out) {
  require_init();
  out.clear();
  if (sealed == nullptr || n < kSealOverhead) return false;
  out.resize(n - kSealOverhead);
  unsigned long long len = 0;
  // libsodium checks the tag before it decrypts anything, so a failure leaves
  // no plaintext behind; clearing is for the caller's sake.
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &len, nullptr, sealed + kNonceBytes,
                                                            n - kNonceBytes, ad, ad_len, sealed, key.data());
  if (rc != 0 || len != out.size()) {
    out.clear();
    return false;
  }
  return true;
}

Result<Key32> pair_key(const ClusterKey& cluster, const Identity& me, const PublicKey& them) {
  if (Status s = init(); !s.ok()) return s;
  std::array<uint8_t, crypto_scalarmult_curve25519_BYTES> their_x{};
  // Refuses points of small order or off the main subgroup, whose
  // Diffie-Hellman result an attacker could predict.
  if (crypto_sign_ed25519_pk_to_curve25519(their_x.data(), them.bytes.data()) != 0) {
    return Status::Invalid("peer public key " + fingerprint(them) + " is not a valid Ed25519 key");
  }
  std::array<uint8_t, crypto_scalarmult_curve25519_SCALARBYTES> my_x{};
  std::array<uint8_t, crypto_scalarmult_curve25519_BYTES> shared{};
  crypto_sign_ed25519_sk_to_curve25519(my_x.data(), me.sk.data());
  const int rc = crypto_scalarmult_curve25519(shared.data(), my_x.data(), their_x.data());
  sodium_memzero(my_x.data(), my_x.size());
  if (rc != 0) {  // an all-zero result: their key contributes nothing
    sodium_memzero(shared.data(), shared.size());
    return Status::Invalid("peer public key " + fingerprint(them) + " gives a degenerate shared secret");
  }

  const bool me_first = std::lexicographical_compare(me.pk.bytes.begin(), me.pk.bytes.end(), them.bytes.begin(),
                                                     them.bytes.end());
  const PublicKey& lo = me_first ? me.pk : them;
  const PublicKey& hi = me_first ? them : me.pk;

  crypto_generichash_state st;
  Key32 out{};
  crypto_generichash_init(&st, cluster.key.data(), cluster.key.size(), out.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kPairLabel.data()), kPairLabel.size());
  crypto_generichash_update(&st, shared.data(), shared.size());
  crypto_generichash_update(&st, lo.bytes.data(), lo.bytes.size());
  crypto_generichash_update(&st, hi.bytes.data(), hi.bytes.size());
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof st);
  sodium_memzero(shared.data(), shared.size());
  Result<Key32> r(out);
  sodium_memzero(out.data(), out.size());
  return r;
}

std::array<uint8_t, 64> sign_cert(const Identity& id, uint64_t uid, std::string_view name) {
  require_init();
  std::array<uint8_t, 64> sig{};
  if (!name_fits(name)) return sig;  // verify_cert refuses such names
  const std::vector<uint8_t> m = cert_message(uid, name);
  crypto_sign_detached(sig.data(), nullptr, m.data(), m.size(), id.sk.data());
  return sig;
}

bool verify_cert(const PublicKey& pk, uint64_t uid, std::string_view name, const std::array<uint8_t, 64>& sig) {
  require_init();
  if (!name_fits(name)) return false;
  const std::vector<uint8_t> m = cert_message(uid, name);
  return crypto_sign_verify_detached(sig.data(), m.data(), m.size(), pk.bytes.data()) == 0;
}

}  // namespace meshkv::crypto
