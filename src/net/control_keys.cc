#include "net/control_keys.h"

#include <sodium.h>

#include <string>

namespace meshkv::net {

namespace {
Result<uint64_t> parse_id(const wire::Value& v) {
  const std::string& s = v.as_string();
  if (s.size() != 16) return Status::Invalid("key id: expected 16 hex digits");
  uint64_t id = 0;
  for (char ch : s) {
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (d < 0) return Status::Invalid("key id: expected 16 hex digits");
    id = (id << 4) | static_cast<uint64_t>(d);
  }
  return id;
}
}  // namespace

const crypto::ClusterKey* ControlKeys::find(uint64_t id) const {
  const crypto::ClusterKey* found = nullptr;
  for (const auto& k : keys_) {
    if (k.id == id) found = &k;
  }
  return found;
}

wire::CtlResponse ControlKeys::op(node::Engine& engine, const wire::CtlRequest& req) {
  const std::string action = req.args.get("action").as_string();
  if (!engine.sealed()) {
    return wire::ctl_error(req.req_id, wire::kCtlBadRequest,
                           "keys: this node's mesh is not sealed (start it with --key-file)");
  }
  if (action == "install") {
    const std::string& hex = req.args.get("key").as_string();
    crypto::ClusterKey k{};
    size_t len = 0;
    if (hex.size() != 64 ||
        sodium_hex2bin(k.key.data(), k.key.size(), hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
        len != 32) {
      return wire::ctl_error(req.req_id, wire::kCtlBadRequest, "keys install: expected a 32-byte key");
    }
    k.id = crypto::cluster_key_id(k.key);
    sodium_memzero(const_cast<char*>(hex.data()), hex.size());
    if (Status s = engine.install_key(k); !s.ok()) {
      return wire::ctl_error(req.req_id, wire::kCtlBadRequest, "keys install: " + s.message());
    }
    keys_.push_back(k);
  } else if (action == "use" || action == "remove") {
    auto id = parse_id(req.args.get("id"));
    if (!id.ok()) {
      return wire::ctl_error(req.req_id, wire::kCtlBadRequest, "keys " + action + ": " + id.status().message());
    }
    Status s = action == "use" ? engine.use_key(*id) : engine.remove_key(*id);
    if (!s.ok()) {
      const wire::CtlCode code = s.code() == Code::kNotFound ? wire::kCtlNotFound : wire::kCtlBadRequest;
      return wire::ctl_error(req.req_id, code, "keys " + action + ": " + s.message());
    }
    if (action == "remove") std::erase_if(keys_, [&](const auto& k) { return k.id == *id; });
  } else if (action != "list" && !action.empty()) {
    return wire::ctl_error(req.req_id, wire::kCtlBadRequest,
                           "keys: unknown action '" + action + "' (list, install, use, remove)");
  }
  wire::CtlResponse r;
  r.req_id = req.req_id;
  r.body = engine.security();
  return r;
}

}  // namespace meshkv::net
