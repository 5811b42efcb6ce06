#include "net/ctl_seal.h"

#include <sodium.h>

#include <cstring>
#include <string_view>

#include "crypto/seal.h"

namespace meshkv::net {

namespace {
constexpr uint8_t kClientMagic[4] = {'M', 'K', 'C', '1'};
constexpr uint8_t kServerMagic[4] = {'M', 'K', 'S', '1'};

crypto::Key32 direction_key(const crypto::ClusterKey& key, std::string_view label, const Nonce24& cn,
                            const Nonce24& sn) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.key.data(), key.key.size(), 32);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  crypto_generichash_update(&st, cn.data(), cn.size());
  crypto_generichash_update(&st, sn.data(), sn.size());
  crypto::Key32 out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

void counter_ad(uint64_t n, uint8_t (&ad)[8]) {
  for (int i = 0; i < 8; ++i) ad[i] = static_cast<uint8_t>(n >> (8 * i));
}
}  // namespace

Nonce24 random_nonce() {
  (void)crypto::init();
  Nonce24 n{};
  randombytes_buf(n.data(), n.size());
  return n;
}

wire::Bytes client_hello(uint64_t key_id, const Nonce24& cn) {
  wire::Bytes b(kClientMagic, kClientMagic + 4);
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(key_id >> (8 * i)));
  b.insert(b.end(), cn.begin(), cn.end());
  return b;
}

bool parse_client_hello(const wire::Bytes& body, uint64_t& key_id, Nonce24& cn) {
  if (body.size() != 4 + 8 + 24 || std::memcmp(body.data(), kClientMagic, 4) != 0) return false;
  key_id = 0;
  for (int i = 7; i >= 0; --i) key_id = (key_id << 8) | body[4 + static_cast<size_t>(i)];
  std::memcpy(cn.data(), body.data() + 12, 24);
  return true;
}

wire::Bytes server_hello(const Nonce24& sn) {
  wire::Bytes b(kServerMagic, kServerMagic + 4);
  b.insert(b.end(), sn.begin(), sn.end());
  return b;
}

bool parse_server_hello(const wire::Bytes& body, Nonce24& sn) {
  if (body.size() != 4 + 24 || std::memcmp(body.data(), kServerMagic, 4) != 0) return false;
  std::memcpy(sn.data(), body.data() + 4, 24);
  return true;
}

CtlSession::CtlSession(const crypto::ClusterKey& key, const Nonce24& cn, const Nonce24& sn, bool is_node) {
  const crypto::Key32 c2s = direction_key(key, "meshkv control c2s v1", cn, sn);
  const crypto::Key32 s2c = direction_key(key, "meshkv control s2c v1", cn, sn);
  tx_ = is_node ? s2c : c2s;
  rx_ = is_node ? c2s : s2c;
}

wire::Bytes CtlSession::seal(const wire::Bytes& plain) {
  uint8_t ad[8];
  counter_ad(tx_n_++, ad);
  wire::Bytes out;
  crypto::seal(tx_, ad, sizeof ad, plain.data(), plain.size(), out);
  return out;
}

bool CtlSession::open(const wire::Bytes& body, wire::Bytes& plain) {
  uint8_t ad[8];
  counter_ad(rx_n_, ad);
  if (!crypto::open(rx_, ad, sizeof ad, body.data(), body.size(), plain)) return false;
  ++rx_n_;
  return true;
}

}  // namespace meshkv::net
