// The cryptographic building blocks: what they accept, and above all what
// they refuse (forgeries, replays, foreign keys, careless key files).
#include <doctest/doctest.h>

#include "test_util.h"
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/replay.h"
#include "crypto/seal.h"

using namespace meshkv;
using namespace meshkv::crypto;

namespace {
using meshkv::testing::slurp;
using meshkv::testing::spit;
struct TempDir : meshkv::testing::TempDir {
  TempDir() : meshkv::testing::TempDir("meshkv-crypto-test") {}
};
unsigned mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

const std::vector<uint8_t> kAd = bytes("header: v1 from a");
const std::vector<uint8_t> kBody = bytes("set color blue, and a little more to make it longer than a block");

std::vector<uint8_t> sealed_sample(const Key32& key) {
  std::vector<uint8_t> out;
  seal(key, kAd.data(), kAd.size(), kBody.data(), kBody.size(), out);
  return out;
}

bool opens(const Key32& key, const std::vector<uint8_t>& ad, const std::vector<uint8_t>& sealed,
           std::vector<uint8_t>* plain = nullptr) {
  std::vector<uint8_t> out;
  const bool ok = open(key, ad.data(), ad.size(), sealed.data(), sealed.size(), out);
  if (plain) *plain = out;
  if (!ok) CHECK(out.empty());  // nothing unauthenticated leaks out
  return ok;
}
}  // namespace

TEST_CASE("crypto: init succeeds and is idempotent") {
  CHECK(init().ok());
  CHECK(init().ok());
}

TEST_CASE("crypto: seal and open round trip") {
  const Key32 key = new_cluster_key().key;
  const auto sealed = sealed_sample(key);
  CHECK(sealed.size() == kBody.size() + kNonceBytes + kTagBytes);
  std::vector<uint8_t> plain;
  REQUIRE(opens(key, kAd, sealed, &plain));
  CHECK(plain == kBody);

  SUBCASE("seal appends after what is already there") {
    std::vector<uint8_t> out = {1, 2, 3};
    seal(key, kAd.data(), kAd.size(), kBody.data(), kBody.size(), out);
    REQUIRE(out.size() == 3 + sealed.size());
    CHECK(out[0] == 1);
    CHECK(out[2] == 3);
    std::vector<uint8_t> tail(out.begin() + 3, out.end());
    CHECK(opens(key, kAd, tail));
  }
  SUBCASE("empty body and empty ad") {
    std::vector<uint8_t> out;
    seal(key, nullptr, 0, nullptr, 0, out);
    CHECK(out.size() == kNonceBytes + kTagBytes);
    std::vector<uint8_t> got = {9};
    CHECK(open(key, nullptr, 0, out.data(), out.size(), got));
    CHECK(got.empty());
  }
  SUBCASE("open replaces previous contents of out") {
    std::vector<uint8_t> out = {7, 7, 7};
    REQUIRE(open(key, kAd.data(), kAd.size(), sealed.data(), sealed.size(), out));
    CHECK(out == kBody);
  }
}

TEST_CASE("crypto: every single-bit flip of a sealed message or its ad is refused") {
  const Key32 key = new_cluster_key().key;
  const auto sealed = sealed_sample(key);
  int refused = 0, tried = 0;
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      auto bad = sealed;
      bad[i] ^= static_cast<uint8_t>(1u << b);
      ++tried;
      if (!opens(key, kAd, bad)) ++refused;
    }
  }
  for (size_t i = 0; i < kAd.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      auto bad_ad = kAd;
      bad_ad[i] ^= static_cast<uint8_t>(1u << b);
      ++tried;
      if (!opens(key, bad_ad, sealed)) ++refused;
    }
  }
  CHECK(tried == 8 * static_cast<int>(sealed.size() + kAd.size()));
  CHECK(refused == tried);
  CHECK(opens(key, kAd, sealed));  // the original still opens
}

TEST_CASE("crypto: truncated, extended or missing ad is refused") {
  const Key32 key = new_cluster_key().key;
  const auto sealed = sealed_sample(key);
  for (size_t len = 0; len < sealed.size(); ++len) {
    std::vector<uint8_t> cut(sealed.begin(), sealed.begin() + static_cast<long>(len));
    CHECK_FALSE(opens(key, kAd, cut));
  }
  // Cut from the front too: losing the nonce's first bytes.
  std::vector<uint8_t> front(sealed.begin() + 1, sealed.end());
  CHECK_FALSE(opens(key, kAd, front));
  auto longer = sealed;
  longer.push_back(0);
  CHECK_FALSE(opens(key, kAd, longer));
  CHECK_FALSE(opens(key, {}, sealed));
  std::vector<uint8_t> out;
  CHECK_FALSE(open(key, kAd.data(), kAd.size(), nullptr, 0, out));
}

TEST_CASE("crypto: a different key does not open") {
  const Key32 key = new_cluster_key().key;
  const auto sealed = sealed_sample(key);
  CHECK_FALSE(opens(new_cluster_key().key, kAd, sealed));
  Key32 near = key;
  near[31] ^= 0x80;
  CHECK_FALSE(opens(near, kAd, sealed));
}

TEST_CASE("crypto: nonces are fresh for every seal") {
  const Key32 key = new_cluster_key().key;
  std::set<std::vector<uint8_t>> nonces;
  std::set<std::vector<uint8_t>> bodies;
  for (int i = 0; i < 100; ++i) {
    const auto s = sealed_sample(key);
    nonces.emplace(s.begin(), s.begin() + kNonceBytes);
    bodies.emplace(s.begin() + kNonceBytes, s.end());
  }
  CHECK(nonces.size() == 100);
  CHECK(bodies.size() == 100);  // same plaintext, different ciphertext each time
}

TEST_CASE("crypto: pair keys agree between the two and differ for anyone else") {
  const ClusterKey cluster = new_cluster_key();
  const Identity a = new_identity(), b = new_identity(), c = new_identity();
  auto ab = pair_key(cluster, a, b.pk);
  auto ba = pair_key(cluster, b, a.pk);
  REQUIRE(ab.ok());
  REQUIRE(ba.ok());
  CHECK(*ab == *ba);

  auto ac = pair_key(cluster, a, c.pk);
  auto cb = pair_key(cluster, c, b.pk);
  REQUIRE(ac.ok());
  REQUIRE(cb.ok());
  CHECK(*ac != *ab);
  CHECK(*cb != *ab);

  const ClusterKey other = new_cluster_key();
  auto ab2 = pair_key(other, a, b.pk);
  REQUIRE(ab2.ok());
  CHECK(*ab2 != *ab);

  // A pair key seals like any key; the third party cannot open.
  std::vector<uint8_t> sealed;
  seal(*ab, kAd.data(), kAd.size(), kBody.data(), kBody.size(), sealed);
  CHECK(opens(*ba, kAd, sealed));
  CHECK_FALSE(opens(*ac, kAd, sealed));
}

TEST_CASE("crypto: pair keys refuse invalid and small-order public keys") {
  const ClusterKey cluster = new_cluster_key();
  const Identity a = new_identity();
  PublicKey zero{};  // a small-order point (y = 0)
  CHECK_FALSE(pair_key(cluster, a, zero).ok());
  PublicKey identity_point{};  // the neutral element, y = 1
  identity_point.bytes[0] = 1;
  CHECK_FALSE(pair_key(cluster, a, identity_point).ok());
  PublicKey not_canonical;  // y = 2^255 - 1, above the field prime
  not_canonical.bytes.fill(0xff);
  not_canonical.bytes[31] = 0x7f;
  auto r = pair_key(cluster, a, not_canonical);
  CHECK_FALSE(r.ok());
  CHECK(r.status().message().find("mk:") != std::string::npos);  // names the key by fingerprint
}

TEST_CASE("crypto: certificates verify only for their key, uid and name") {
  const Identity a = new_identity(), b = new_identity();
  const auto sig = sign_cert(a, 0x1122334455667788ull, "node-a");
  CHECK(verify_cert(a.pk, 0x1122334455667788ull, "node-a", sig));
  CHECK_FALSE(verify_cert(a.pk, 0x1122334455667789ull, "node-a", sig));
  CHECK_FALSE(verify_cert(a.pk, 0x1122334455667788ull, "node-b", sig));
  CHECK_FALSE(verify_cert(a.pk, 0x1122334455667788ull, "node-a ", sig));
  CHECK_FALSE(verify_cert(a.pk, 0x1122334455667788ull, "", sig));
  CHECK_FALSE(verify_cert(b.pk, 0x1122334455667788ull, "node-a", sig));
  auto bad = sig;
  bad[10] ^= 1;
  CHECK_FALSE(verify_cert(a.pk, 0x1122334455667788ull, "node-a", bad));
  // Empty names certify too, distinctly from any other.
  const auto empty = sign_cert(a, 7, "");
  CHECK(verify_cert(a.pk, 7, "", empty));
  CHECK_FALSE(verify_cert(a.pk, 7, std::string(1, '\0'), empty));
}

TEST_CASE("crypto: replay window") {
  ReplayWindow w;
  CHECK(w.highest() == 0);

  SUBCASE("0 is never accepted") {
    CHECK_FALSE(w.check(0));
    CHECK_FALSE(w.accept(0));
    CHECK(w.accept(1));
    CHECK_FALSE(w.accept(0));
  }
  SUBCASE("in order, each once") {
    for (uint64_t c = 1; c <= 5000; ++c) REQUIRE(w.accept(c));
    CHECK(w.highest() == 5000);
    for (uint64_t c = 5000 - ReplayWindow::kWindow + 1; c <= 5000; ++c) REQUIRE_FALSE(w.accept(c));
  }
  SUBCASE("out of order within the window, duplicates refused") {
    CHECK(w.accept(100));
    CHECK(w.accept(98));
    CHECK(w.accept(99));
    CHECK(w.accept(1));
    CHECK_FALSE(w.accept(98));
    CHECK_FALSE(w.accept(100));
    CHECK_FALSE(w.accept(1));
    CHECK(w.accept(97));
    CHECK(w.highest() == 100);
    CHECK(w.accept(101));
    CHECK_FALSE(w.check(99));
    CHECK(w.check(50));
  }
  SUBCASE("the window's edge") {
    const uint64_t top = 10'000;
    CHECK(w.accept(top));
    CHECK(w.check(top - ReplayWindow::kWindow + 1));  // the oldest remembered slot
    CHECK_FALSE(w.check(top - ReplayWindow::kWindow));  // too old
    CHECK_FALSE(w.check(1));
    CHECK(w.accept(top - ReplayWindow::kWindow + 1));
    CHECK_FALSE(w.accept(top - ReplayWindow::kWindow + 1));
  }
  SUBCASE("check does not record") {
    CHECK(w.check(5));
    CHECK(w.check(5));
    CHECK(w.highest() == 0);
    w.commit(5);
    CHECK_FALSE(w.check(5));
  }
  SUBCASE("moving forward forgets old slots but not recent ones") {
    for (uint64_t c = 1; c <= 1024; ++c) REQUIRE(w.accept(c));
    // Slide by less than a window: counters still inside stay refused;
    // slots reused for new counters start unseen.
    CHECK(w.accept(1500));
    for (uint64_t c = 1500 - ReplayWindow::kWindow + 1; c <= 1024; ++c) REQUIRE_FALSE(w.check(c));
    for (uint64_t c = 1025; c < 1500; ++c) REQUIRE(w.check(c));
    CHECK_FALSE(w.check(1500 - ReplayWindow::kWindow));
  }
  SUBCASE("big jumps") {
    for (uint64_t c = 1; c <= 300; ++c) REQUIRE(w.accept(c));
    CHECK(w.accept(1'000'000));
    CHECK(w.highest() == 1'000'000);
    CHECK_FALSE(w.check(300));
    CHECK(w.check(999'999));
    CHECK(w.check(1'000'000 - ReplayWindow::kWindow + 1));
    CHECK(w.accept(999'000));
    CHECK_FALSE(w.accept(999'000));
    const uint64_t max = ~uint64_t{0};
    CHECK(w.accept(max - 5));
    CHECK(w.accept(max));  // must not loop forever clearing slots up to the largest counter
    CHECK(w.highest() == max);
    CHECK_FALSE(w.accept(max));
    CHECK_FALSE(w.accept(max - 5));
    CHECK(w.accept(max - 1));
    CHECK_FALSE(w.check(1'000'000));
  }
  SUBCASE("commit of a refused counter changes nothing") {
    CHECK(w.accept(5000));
    w.commit(1);  // too old: ignored
    CHECK(w.highest() == 5000);
    w.commit(0);
    CHECK(w.highest() == 5000);
    CHECK(w.accept(4999));
  }
}

TEST_CASE("crypto: public keys encode, parse and fingerprint") {
  const Identity a = new_identity();
  const std::string enc = encode_public(a.pk);
  CHECK(enc.rfind("mkpub:", 0) == 0);
  CHECK(enc.size() == 6 + 43);
  CHECK(enc.find_first_of("+/=") == std::string::npos);
  auto back = parse_public(enc);
  REQUIRE(back.ok());
  CHECK(*back == a.pk);

  const std::string fp = fingerprint(a.pk);
  CHECK(fp.size() == 3 + 16);
  CHECK(fp.rfind("mk:", 0) == 0);
  CHECK(fp.find_first_not_of("0123456789abcdef", 3) == std::string::npos);
  CHECK(fp == fingerprint(a.pk));
  CHECK(fp != fingerprint(new_identity().pk));

  for (const std::string& bad : std::vector<std::string>{
           "", "mkpub:", "mkpub", "garbage", enc.substr(6), "MKPUB:" + enc.substr(6), enc + "A", enc.substr(0, enc.size() - 1),
        enc + "\n", " " + enc, "mkpub:" + std::string(43, '!'), "mkpub:" + std::string(44, 'A'),
        // The same key in the standard alphabet or with padding: one spelling only.
        "mkpub:" + std::string(42, 'A') + "+", enc + "="}) {
    auto r = parse_public(bad);
    CHECK_MESSAGE(!r.ok(), "accepted: '" << bad << "'");
    if (!r.ok()) CHECK(r.status().message().find("not a meshkv public key") != std::string::npos);
  }
  // Decodes, but a small-order point is not a usable key.
  PublicKey zero{};
  auto r = parse_public(encode_public(zero));
  CHECK_FALSE(r.ok());
  // Non-zero trailing bits: the 43rd character carries 2 unused bits.
  std::string odd = enc;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t last = alphabet.find(odd.back());
  REQUIRE(last != std::string::npos);
  odd.back() = alphabet[last ^ 1];  // flips an unused low bit
  CHECK_FALSE(parse_public(odd).ok());
}

TEST_CASE("crypto: cluster key ids") {
  const ClusterKey k = new_cluster_key();
  CHECK(k.id != 0);
  CHECK(k.id == cluster_key_id(k.key));
  CHECK(k.id != new_cluster_key().id);
  CHECK(key_id_hex(0x00ab01ull) == "000000000000ab01");
  CHECK(key_id_hex(k.id).size() == 16);
  Key32 other = k.key;
  other[0] ^= 1;
  CHECK(cluster_key_id(other) != k.id);
}

// Known answers, computed independently of libsodium (Python's hashlib and
// the cryptography package, Ed25519 to X25519 by the birational map), pin
// every derivation to its documented formula: nodes of different builds and
// implementations must agree byte for byte.
TEST_CASE("crypto: known answers for ids, fingerprints, pair keys and certificates") {
  auto seq = [](uint8_t from) {
    Key32 k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(from + i);
    return k;
  };
  auto hex = [](const uint8_t* p, size_t n) {
    std::string s;
    char b[3];
    for (size_t i = 0; i < n; ++i) {
      std::snprintf(b, sizeof b, "%02x", p[i]);
      s += b;
    }
    return s;
  };
  const ClusterKey cluster{seq(64), cluster_key_id(seq(64))};
  CHECK(cluster.id == 0xcd3db3af17d183d3ull);
  CHECK(cluster_key_id(seq(0)) == 0x4657d12a464d39a1ull);

  const Identity a = identity_from_seed(seq(0)), b = identity_from_seed(seq(32));
  CHECK(hex(a.pk.bytes.data(), 32) == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
  CHECK(hex(b.pk.bytes.data(), 32) == "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7");
  CHECK(fingerprint(a.pk) == "mk:9d24e2eeaf27c2a0");
  CHECK(encode_public(a.pk) == "mkpub:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg");

  auto ab = pair_key(cluster, a, b.pk);
  REQUIRE(ab.ok());
  CHECK(hex(ab->data(), 32) == "031af2477242ce615c9f83dcd81fa190bc5613c9ed76eafc00e72ef91698920d");

  const auto sig = sign_cert(a, 0x1122334455667788ull, "node-a");
  CHECK(hex(sig.data(), 64) ==
        "fb8dc202ac63716937b5d620b3552452af501dd99a11aacd06dc950523e570da"
        "0d5d78a594928476036ff3424920e39c6c752eafdef8f260c12c1faac28b2301");
}

TEST_CASE("crypto: key files round trip with mode 0600") {
  TempDir d;
  const std::string kf = d.path + "/meshkv.key", idf = d.path + "/meshkv.identity";
  const ClusterKey k = new_cluster_key();
  const Identity id = new_identity();
  // A permissive umask must not loosen the files.
  const mode_t old_umask = ::umask(0);
  Status ks = write_cluster_key(kf, k, false);
  Status is = write_identity(idf, id, false);
  ::umask(old_umask);
  REQUIRE_MESSAGE(ks.ok(), ks.to_string());
  REQUIRE_MESSAGE(is.ok(), is.to_string());
  CHECK(mode_of(kf) == 0600);
  CHECK(mode_of(idf) == 0600);

  const std::string text = slurp(kf);
  CHECK(text.rfind("meshkv-cluster-key-v1\n", 0) == 0);
  CHECK(text.size() == 22 + 43 + 1);
  CHECK(slurp(idf).rfind("meshkv-identity-v1\n", 0) == 0);
  CHECK(slurp(idf).size() == 19 + 86 + 1);

  auto k2 = load_cluster_key(kf);
  REQUIRE_MESSAGE(k2.ok(), k2.status().to_string());
  CHECK(k2->key == k.key);
  CHECK(k2->id == k.id);
  auto id2 = load_identity(idf);
  REQUIRE_MESSAGE(id2.ok(), id2.status().to_string());
  CHECK(id2->pk == id.pk);
  CHECK(id2->sk == id.sk);

  // A loaded identity still signs what the original verifies and vice versa.
  CHECK(verify_cert(id.pk, 1, "a", sign_cert(*id2, 1, "a")));

  SUBCASE("an existing file is refused without force, replaced with it") {
    const ClusterKey k3 = new_cluster_key();
    Status s = write_cluster_key(kf, k3, false);
    CHECK_FALSE(s.ok());
    CHECK(s.message().find("already exists") != std::string::npos);
    CHECK(s.message().find(kf) != std::string::npos);
    CHECK(load_cluster_key(kf)->key == k.key);  // untouched
    CHECK_FALSE(write_identity(idf, new_identity(), false).ok());

    REQUIRE(write_cluster_key(kf, k3, true).ok());
    CHECK(load_cluster_key(kf)->key == k3.key);
    CHECK(mode_of(kf) == 0600);
    // No temporary file left behind.
    CHECK(std::system(("test $(ls -A " + d.path + " | wc -l) -eq 2").c_str()) == 0);
  }
  SUBCASE("force also creates a file that does not exist") {
    REQUIRE(write_identity(d.path + "/new.identity", id, true).ok());
    CHECK(mode_of(d.path + "/new.identity") == 0600);
    CHECK(load_identity(d.path + "/new.identity")->pk == id.pk);
  }
  SUBCASE("a symlink at the path is not written through") {
    const std::string target = d.path + "/target", link = d.path + "/link.key";
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    CHECK_FALSE(write_cluster_key(link, k, false).ok());
    CHECK(::access(target.c_str(), F_OK) != 0);
  }
}

TEST_CASE("crypto: key files with loose modes are refused, naming the fix") {
  TempDir d;
  const std::string kf = d.path + "/meshkv.key";
  REQUIRE(write_cluster_key(kf, new_cluster_key(), false).ok());
  for (mode_t m : {0644, 0640, 0604, 0660, 0602}) {
    REQUIRE(::chmod(kf.c_str(), m) == 0);
    auto r = load_cluster_key(kf);
    REQUIRE_FALSE(r.ok());
    const std::string& msg = r.status().message();
    CHECK(msg.find("chmod 600 " + kf) != std::string::npos);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(m));
    CHECK_MESSAGE(msg.find(octal) != std::string::npos, msg);
  }
  REQUIRE(::chmod(kf.c_str(), 0400) == 0);  // owner-only read is fine
  CHECK(load_cluster_key(kf).ok());
  const std::string idf = d.path + "/meshkv.identity";
  REQUIRE(write_identity(idf, new_identity(), false).ok());
  REQUIRE(::chmod(idf.c_str(), 0644) == 0);
  auto r = load_identity(idf);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("chmod 600 " + idf) != std::string::npos);
}

TEST_CASE("crypto: damaged key files are refused with the file's name") {
  TempDir d;
  const std::string kf = d.path + "/meshkv.key", idf = d.path + "/meshkv.identity";
  REQUIRE(write_cluster_key(kf, new_cluster_key(), false).ok());
  REQUIRE(write_identity(idf, new_identity(), false).ok());
  const std::string key_text = slurp(kf), id_text = slurp(idf);
  const std::string key_b64 = key_text.substr(22, 43);

  auto refused = [&](const std::string& contents, const char* expect) {
    spit(kf, contents);
    auto r = load_cluster_key(kf);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find(kf) != std::string::npos);
    CHECK_MESSAGE(r.status().message().find(expect) != std::string::npos, r.status().message());
  };
  refused("meshkv-cluster-key-v2\n" + key_b64 + "\n", "first line");
  refused("\n" + key_b64 + "\n", "first line");
  refused(key_b64 + "\n", "first line");
  refused("", "first line");
  refused("meshkv-cluster-key-v1\n", "missing");
  refused("meshkv-cluster-key-v1\n" + key_b64.substr(0, 40) + "\n", "truncated");
  refused("meshkv-cluster-key-v1\n" + key_b64.substr(0, 42) + "\n", "truncated");
  refused("meshkv-cluster-key-v1\n" + key_b64 + "AAAA\n", "bytes");
  refused("meshkv-cluster-key-v1\n" + key_b64.substr(0, 20) + "*" + key_b64.substr(21) + "\n", "base64");
  refused("meshkv-cluster-key-v1\n" + key_b64 + "\nextra\n", "after the key line");
  refused(id_text, "identity, not a cluster key");
  refused(std::string(5000, 'x'), "4096");

  // What a text editor may do to a good file is still accepted.
  spit(kf, "meshkv-cluster-key-v1\n" + key_b64);
  CHECK(load_cluster_key(kf).ok());
  spit(kf, "meshkv-cluster-key-v1\r\n" + key_b64 + "\r\n");
  CHECK(load_cluster_key(kf).ok());

  // An identity whose stored public half was damaged.
  std::string damaged = id_text;
  damaged[19 + 80] = damaged[19 + 80] == 'A' ? 'B' : 'A';
  spit(idf, damaged);
  auto r = load_identity(idf);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find(idf) != std::string::npos);
  spit(idf, key_text);
  CHECK(load_identity(idf).status().message().find("cluster key, not an identity") != std::string::npos);

  CHECK_FALSE(load_cluster_key(d.path + "/missing.key").ok());
  CHECK(load_cluster_key(d.path + "/missing.key").status().message().find("missing.key") != std::string::npos);
  CHECK_FALSE(load_cluster_key(d.path).ok());  // a directory
}

TEST_CASE("crypto: write_identity refuses a mismatched pair") {
  TempDir d;
  Identity id = new_identity();
  id.pk = new_identity().pk;
  CHECK_FALSE(write_identity(d.path + "/x", id, false).ok());
  CHECK(::access((d.path + "/x").c_str(), F_OK) != 0);
}
