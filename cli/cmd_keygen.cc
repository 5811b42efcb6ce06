// meshkv keygen: create a node identity or the cluster key, each in its own
// private file. Prints only what may be shared (the public key, fingerprints,
// the key id) and the path: the secret itself never reaches a terminal, a
// scrollback buffer or a CI log.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "crypto/keys.h"

namespace meshkv::cli {

namespace {
struct KeygenOptions {
  bool cluster = false, force = false;
  std::string out;  // empty: the default name for the kind of key
};

// A friendlier refusal than the library's for the common mistake of running
// keygen twice; the library still refuses atomically (O_EXCL) if the file
// appears in between.
bool refuse_existing(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  if (S_ISDIR(st.st_mode)) {
    std::cerr << "meshkv keygen: " << path << " is a directory; name the file to create with --out FILE\n";
  } else {
    std::cerr << "meshkv keygen: " << path
              << " already exists; not overwritten, since a replaced key is lost for good "
                 "(--force replaces it)\n";
  }
  return true;
}
}  // namespace

Handler setup_keygen(CLI::App& sub) {
  auto o = std::make_shared<KeygenOptions>();
  sub.footer(
      "Creates a node identity (an Ed25519 key pair), or with --cluster the key shared by\n"
      "every member of a mesh, in a new file of mode 0600 that only its owner may read.\n"
      "It prints the path and what may be shared: an identity's public key (mkpub:...) and\n"
      "fingerprint (mk:...), a cluster key's id; never the secret itself. An existing file\n"
      "is refused (exit 2) unless --force, which replaces it atomically.\n"
      "Keys are passed to nodes by path, never by value: a value on a command line is\n"
      "visible to every user of the machine. Copy a cluster key to the other nodes over a\n"
      "secure channel and keep it mode 0600: meshkv refuses to load a key file that group\n"
      "or others may read or write.\n"
      "Examples:\n"
      "  meshkv keygen                          # ./meshkv.identity\n"
      "  meshkv keygen --cluster -o /etc/meshkv/cluster.key\n"
      "  meshkv keygen --out /etc/meshkv/node.identity --force");
  sub.add_flag("--cluster", o->cluster, "create a cluster key instead of a node identity");
  CLI::Option* out = sub.add_option("-o,--out", o->out,
                 "the file to create (default meshkv.identity, or meshkv.key with --cluster)")
      ->type_name("FILE");
  sub.add_flag("--force", o->force, "replace an existing file (the old key is lost)");
  return [o, out] {
    if (out->count() > 0 && o->out.empty()) {
      std::cerr << "meshkv keygen: --out needs a file name\n";
      return kExitUsage;
    }
    const std::string path = !o->out.empty() ? o->out : o->cluster ? "meshkv.key" : "meshkv.identity";
    if (Status s = crypto::init(); !s.ok()) {
      std::cerr << "meshkv keygen: " << s.message() << "\n";
      return kExitUsage;
    }
    if (!o->force && refuse_existing(path)) return kExitUsage;

    if (o->cluster) {
      const crypto::ClusterKey key = crypto::new_cluster_key();
      if (Status s = crypto::write_cluster_key(path, key, o->force); !s.ok()) {
        std::cerr << "meshkv keygen: " << s.message() << "\n";
        return kExitUsage;
      }
      std::cout << "wrote cluster key to " << path << " (mode 0600)\n"
                << "key id: " << crypto::key_id_hex(key.id) << "\n";
      return kExitOk;
    }
    const crypto::Identity id = crypto::new_identity();
    if (Status s = crypto::write_identity(path, id, o->force); !s.ok()) {
      std::cerr << "meshkv keygen: " << s.message() << "\n";
      return kExitUsage;
    }
    std::cout << "wrote node identity to " << path << " (mode 0600)\n"
              << "public key:  " << crypto::encode_public(id.pk) << "\n"
              << "fingerprint: " << crypto::fingerprint(id.pk) << "\n";
    return kExitOk;
  };
}

}  // namespace meshkv::cli
