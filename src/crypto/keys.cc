#include "crypto/keys.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace meshkv::crypto {

namespace {

constexpr int kB64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr std::string_view kPublicPrefix = "mkpub:";
constexpr std::string_view kClusterHeader = "meshkv-cluster-key-v1";
constexpr std::string_view kIdentityHeader = "meshkv-identity-v1";
// Real key files are about 110 bytes; the bound keeps a mistaken path (a log,
// a device) from being read into memory.
constexpr size_t kMaxKeyFile = 4096;

// Functions that cannot return a Status still need libsodium initialised;
// without it there is no safe way to go on.
void require_init() {
  if (Status s = init(); !s.ok()) {
    std::fprintf(stderr, "meshkv: %s\n", s.to_string().c_str());
    std::abort();
  }
}

std::string hex(const uint8_t* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

// A secret's text form, built in a fixed buffer rather than a std::string so
// that no reallocation leaves copies behind, and wiped when done.
class SecretText {
 public:
  SecretText(std::string_view header, const uint8_t* secret, size_t n) {
    // Header, newline, base64 (whose encoded length counts a NUL), newline.
    if (header.size() + 1 + sodium_base64_ENCODED_LEN(n, kB64) + 1 > buf_.size()) std::abort();
    std::memcpy(buf_.data(), header.data(), header.size());
    len_ = header.size();
    buf_[len_++] = '\n';
    sodium_bin2base64(buf_.data() + len_, buf_.size() - len_, secret, n, kB64);
    len_ += std::strlen(buf_.data() + len_);
    buf_[len_++] = '\n';
  }
  ~SecretText() { sodium_memzero(buf_.data(), buf_.size()); }
  SecretText(const SecretText&) = delete;
  SecretText& operator=(const SecretText&) = delete;
  const char* data() const { return buf_.data(); }
  size_t size() const { return len_; }

 private:
  std::array<char, 256> buf_{};
  size_t len_ = 0;
};

// Writes and syncs `text`, closing the file. Its name is the caller's to sync.
Status fill(store::WritableFile& f, const SecretText& text) {
  Status s = f.append(std::string_view(text.data(), text.size()));
  if (s.ok()) s = f.sync();
  const Status closed = f.close();
  return s.ok() ? closed : s;
}

// Random characters for a temporary name, as mkstemp would pick them.
std::string random_suffix() {
  static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out(6, 'x');
  for (char& c : out) c = chars[randombytes_uniform(sizeof chars - 1)];
  return out;
}

// A new file at a private temporary name next to `path`, mode 0600.
Result<std::unique_ptr<store::WritableFile>> create_temporary(store::Env& env, const std::string& path,
                                                              std::string& tmp) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = path + ".tmp-" + random_suffix();
    auto f = env.open_writable(tmp, {.exclusive = true, .owner_only = true});
    if (f.ok() || f.status().code() != Code::kAlreadyExists) return f;
  }
  return Status::Io("cannot create a temporary file for " + path + ": every name tried exists");
}

Status write_key_file(const std::string& path, const SecretText& text, bool force, store::Env& env) {
  if (Status s = init(); !s.ok()) return s;
  const std::string dir = store::parent_dir(path);
  if (!force) {
    // Exclusive creation also refuses a symlink planted at the path, so the
    // key cannot be written through it to somewhere else.
    auto f = env.open_writable(path, {.exclusive = true, .owner_only = true});
    if (!f.ok()) {
      if (f.status().code() == Code::kAlreadyExists) {
        return Status::Denied(path + " already exists; a key file is never overwritten unless forced");
      }
      return f.status();
    }
    if (Status s = fill(**f, text); !s.ok()) {
      (void)env.remove(path);  // ours, and useless half-written
      return s;
    }
    return env.sync_dir(dir);
  }
  // Replacing: the new key goes to a private temporary name first, so that
  // the path holds the old key or the whole new one at every moment.
  std::string tmp;
  auto f = create_temporary(env, path, tmp);
  if (!f.ok()) return f.status();
  Status s = fill(**f, text);
  if (s.ok()) s = env.rename(tmp, path);
  if (!s.ok()) {
    (void)env.remove(tmp);
    return s;
  }
  return env.sync_dir(dir);
}

std::string mode_octal(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Reads a key file into `buf` (wiped by its owner), refusing what is not a
// private, small, regular file. Returns the number of bytes read.
Result<size_t> read_key_file(const std::string& path, std::array<char, kMaxKeyFile + 1>& buf, store::Env& env) {
  if (Status s = init(); !s.ok()) return s;
  auto f = env.open_readable(path);
  if (!f.ok()) return f.status();
  // Checked on the opened file, not the name, so a swap in between cannot
  // slip a different file past the checks.
  auto st = (*f)->stat();
  if (!st.ok()) return st.status();
  if (!st->regular) return Status::Invalid(path + ": not a regular file, so not a meshkv key file");
  if ((st->mode & 077) != 0) {
    return Status::Denied(path + ": mode " + mode_octal(st->mode) +
                          " lets other users read or change this secret key; it must be private "
                          "to its owner (fix: chmod 600 " + path + ")");
  }
  if (st->size > kMaxKeyFile) {
    return Status::TooLarge(path + ": " + std::to_string(st->size) + " bytes, more than any meshkv key file (" +
                            std::to_string(kMaxKeyFile) + " at most)");
  }
  size_t n = 0;
  while (n < buf.size()) {
    auto r = (*f)->read(buf.data() + n, buf.size() - n);
    if (!r.ok()) return r.status();
    if (*r == 0) break;
    n += *r;
  }
  if (n > kMaxKeyFile) {  // grew after the stat
    return Status::TooLarge(path + ": more than " + std::to_string(kMaxKeyFile) + " bytes, so not a meshkv key file");
  }
  return n;
}

// Checks the header and decodes the payload line of a key file into `out`
// (exactly out_len bytes). `kind` and `other` name this format and the other
// one, so that swapped files get a message saying just that.
Status decode_key_file(const std::string& path, std::string_view text, std::string_view header,
                       const std::string& kind, std::string_view other_header, const std::string& other_kind,
                       uint8_t* out, size_t out_len) {
  auto a = [](const std::string& noun) { return (noun[0] == 'i' ? "an " : "a ") + noun; };
  const auto nl = text.find('\n');
  std::string_view first = text.substr(0, nl);
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  if (first != header) {
    if (first == other_header) return Status::Invalid(path + ": this is a meshkv " + other_kind + ", not " + a(kind));
    return Status::Invalid(path + ": not a meshkv " + kind + " file (its first line must be '" +
                           std::string(header) + "')");
  }
  std::string_view payload = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  // One line, optionally ended by a newline (CRLF too, for files that went
  // through a Windows editor); nothing after it.
  if (!payload.empty() && payload.back() == '\n') payload.remove_suffix(1);
  if (!payload.empty() && payload.back() == '\r') payload.remove_suffix(1);
  if (payload.empty()) return Status::Corruption(path + ": the key line is missing");
  if (payload.find('\n') != std::string_view::npos) {
    return Status::Corruption(path + ": unexpected text after the key line");
  }
  std::array<uint8_t, (kMaxKeyFile * 3) / 4 + 3> bin{};
  size_t bin_len = 0;
  const int rc = sodium_base642bin(bin.data(), bin.size(), payload.data(), payload.size(), nullptr, &bin_len,
                                   nullptr, kB64);
  Status s;
  if (rc != 0) {
    s = Status::Corruption(path + ": the key line is not valid unpadded URL-safe base64 (damaged or truncated?)");
  } else if (bin_len != out_len) {
    s = Status::Corruption(path + ": the key is " + std::to_string(bin_len) + " bytes, " + a(kind) + " has " +
                           std::to_string(out_len) + " (truncated or damaged?)");
  } else {
    std::memcpy(out, bin.data(), out_len);
  }
  sodium_memzero(bin.data(), bin.size());
  return s;
}

}  // namespace

Status init() {
  // A function-local static is initialised exactly once even when threads
  // race here; sodium_init itself is idempotent, this just avoids the lock.
  static const int rc = sodium_init();
  if (rc < 0) return Status::Internal("libsodium failed to initialise (no usable random number source?)");
  return Status::Ok();
}

uint64_t cluster_key_id(const Key32& key) {
  require_init();
  static constexpr std::string_view kLabel = "meshkv cluster key id";
  crypto_generichash_state st;
  std::array<uint8_t, 32> digest{};
  crypto_generichash_init(&st, nullptr, 0, digest.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size());
  crypto_generichash_update(&st, key.data(), key.size());
  crypto_generichash_final(&st, digest.data(), digest.size());
  sodium_memzero(&st, sizeof st);  // it absorbed the key
  uint64_t id = 0;
  for (int i = 7; i >= 0; --i) id = (id << 8) | digest[static_cast<size_t>(i)];
  return id == 0 ? 1 : id;
}

std::string key_id_hex(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::string fingerprint(const PublicKey& pk) {
  require_init();
  std::array<uint8_t, 32> digest{};
  crypto_generichash(digest.data(), digest.size(), pk.bytes.data(), pk.bytes.size(), nullptr, 0);
  return "mk:" + hex(digest.data(), 8);
}

std::string encode_public(const PublicKey& pk) {
  char b64[sodium_base64_ENCODED_LEN(32, kB64)];
  sodium_bin2base64(b64, sizeof b64, pk.bytes.data(), pk.bytes.size(), kB64);
  return std::string(kPublicPrefix) + b64;
}

Result<PublicKey> parse_public(std::string_view text) {
  require_init();
  // The input is not echoed: people paste the wrong line, and the wrong line
  // may be a secret.
  static const std::string kExpected =
      "not a meshkv public key: expected mkpub: followed by 43 URL-safe base64 characters";
  if (text.substr(0, kPublicPrefix.size()) != kPublicPrefix) {
    return Status::Invalid(kExpected + " (it does not start with mkpub:)");
  }
  text.remove_prefix(kPublicPrefix.size());
  PublicKey pk{};
  size_t len = 0;
  // A NULL end pointer makes libsodium refuse trailing characters, and it
  // refuses non-zero padding bits, so each key has exactly one spelling.
  if (sodium_base642bin(pk.bytes.data(), pk.bytes.size(), text.data(), text.size(), nullptr, &len, nullptr, kB64) !=
          0 ||
      len != pk.bytes.size()) {
    return Status::Invalid(kExpected + " (got " + std::to_string(text.size()) +
                           " characters after mkpub:, or characters outside A-Z a-z 0-9 - _)");
  }
  if (crypto_core_ed25519_is_valid_point(pk.bytes.data()) != 1) {
    return Status::Invalid("not a usable meshkv public key: it decodes, but not to a valid Ed25519 point "
                           "(damaged, or made to be weak)");
  }
  return pk;
}

ClusterKey new_cluster_key() {
  require_init();
  ClusterKey k{};
  randombytes_buf(k.key.data(), k.key.size());
  k.id = cluster_key_id(k.key);
  return k;
}

Identity new_identity() {
  require_init();
  Identity id{};
  crypto_sign_keypair(id.pk.bytes.data(), id.sk.data());
  return id;
}

Identity identity_from_seed(const Key32& seed) {
  require_init();
  Identity id{};
  crypto_sign_seed_keypair(id.pk.bytes.data(), id.sk.data(), seed.data());
  return id;
}

Status write_cluster_key(const std::string& path, const ClusterKey& key, bool force, store::Env& env) {
  SecretText text(kClusterHeader, key.key.data(), key.key.size());
  return write_key_file(path, text, force, env);
}

Status write_identity(const std::string& path, const Identity& id, bool force, store::Env& env) {
  // Only the secret key is stored; a mismatched public key would be lost
  // silently and replaced by the derived one at the next load.
  if (std::memcmp(id.sk.data() + 32, id.pk.bytes.data(), 32) != 0) {
    return Status::Invalid("refusing to write " + path + ": the identity's public key does not match its secret key");
  }
  SecretText text(kIdentityHeader, id.sk.data(), id.sk.size());
  return write_key_file(path, text, force, env);
}

Result<ClusterKey> load_cluster_key(const std::string& path, store::Env& env) {
  std::array<char, kMaxKeyFile + 1> buf{};
  auto n = read_key_file(path, buf, env);
  if (!n.ok()) return n.status();
  ClusterKey k{};
  Status s = decode_key_file(path, std::string_view(buf.data(), *n), kClusterHeader, "cluster key", kIdentityHeader,
                             "identity", k.key.data(), k.key.size());
  sodium_memzero(buf.data(), buf.size());
  if (!s.ok()) return s;
  k.id = cluster_key_id(k.key);
  Result<ClusterKey> r(k);
  sodium_memzero(&k, sizeof k);
  return r;
}

Result<Identity> load_identity(const std::string& path, store::Env& env) {
  std::array<char, kMaxKeyFile + 1> buf{};
  auto n = read_key_file(path, buf, env);
  if (!n.ok()) return n.status();
  Identity id{};
  Status s = decode_key_file(path, std::string_view(buf.data(), *n), kIdentityHeader, "identity", kClusterHeader,
                             "cluster key", id.sk.data(), id.sk.size());
  sodium_memzero(buf.data(), buf.size());
  if (!s.ok()) return s;
  // The secret key carries its public key in its second half. Derive it
  // afresh from the seed: a flipped bit there would otherwise give a node
  // whose signatures nobody can verify, failing far from the cause.
  std::array<uint8_t, 32> derived_pk{};
  std::array<uint8_t, 64> derived_sk{};
  crypto_sign_seed_keypair(derived_pk.data(), derived_sk.data(), id.sk.data());
  const bool match = std::memcmp(derived_sk.data(), id.sk.data(), derived_sk.size()) == 0;
  sodium_memzero(derived_sk.data(), derived_sk.size());
  if (!match) {
    sodium_memzero(id.sk.data(), id.sk.size());
    return Status::Corruption(path + ": damaged identity (its public half does not match its secret seed)");
  }
  crypto_sign_ed25519_sk_to_pk(id.pk.bytes.data(), id.sk.data());
  Result<Identity> r(id);
  sodium_memzero(&id, sizeof id);
  return r;
}

}  // namespace meshkv::crypto
