// meshkv_forge: a test-only attacker for tests/proc_attack_mesh.sh. It sends
// datagrams an unsealed node accepts (valid encoding, valid CRC-32C) but that
// no honest node sent, from a socket bound to 127.0.0.2 (another host, as
// far as the node can tell). Not part of the meshkv binary.
//
//   meshkv_forge flood NODE SECONDS RATE
//       Members datagrams of 55 updates each, every update about a member
//       (and process) never heard of before, alive, suspect, dead and left
//       in turn, RATE datagrams a second, each from a fresh sender uid.
//   meshkv_forge fake NODE COUNT
//       One Members datagram listing COUNT alive members, f00, f01, ..., at
//       addresses where nothing listens (127.0.0.3).
//   meshkv_forge pipeline NODE COUNT
//       Not an attack: COUNT sets (the middle one waiting for all members),
//       then COUNT gets of the same keys, then a watch, all written to one
//       control connection at once; prints each answer as it arrives:
//       "ID CODE VALUE" (VALUE of a get, "-" otherwise). Sealed with the
//       key in $MESHKV_KEY_FILE, if set.
//
// It prints what it sent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/crc32c.h"
#include "common/endpoint.h"
#include "crypto/keys.h"
#include "net/control_client.h"
#include "wire/codec.h"

namespace {

using namespace meshkv;

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: meshkv_forge flood NODE SECONDS RATE\n"
               "       meshkv_forge fake NODE COUNT\n"
               "       meshkv_forge pipeline NODE COUNT\n");
  std::exit(2);
}

// An unsealed datagram: the encoded envelope and its CRC-32C, little-endian.
wire::Bytes datagram(uint64_t sender, wire::Message msg) {
  wire::Bytes b = wire::encode(wire::Envelope{wire::kVersion, sender, std::move(msg)});
  const uint32_t c = crc32c(b.data(), b.size());
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(c >> (8 * i)));
  return b;
}

struct Socket {
  int fd = -1;
  sockaddr_in to{};
  explicit Socket(const Endpoint& node) {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
      std::perror("socket");
      std::exit(1);
    }
    sockaddr_in me{};
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(0x7F000002);  // 127.0.0.2
    if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me) != 0) {
      std::perror("bind 127.0.0.2");
      std::exit(1);
    }
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_addr.s_addr, node.ip.data(), 4);
    to.sin_port = htons(node.port);
  }
  ~Socket() { close(fd); }
  bool send(const wire::Bytes& b) const {
    return sendto(fd, b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(b.size());
  }
};

wire::MemberUpdate fake_member(std::string name, uint64_t uid, uint16_t port,
                              wire::MemberState state = wire::MemberState::kAlive) {
  return {std::move(name), uid, Endpoint::v4(127, 0, 0, 3, port), 0, state};
}

int flood(const Endpoint& node, double seconds, double rate) {
  Socket s(node);
  std::mt19937_64 rng(std::random_device{}());
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  uint64_t sent = 0, updates = 0, n = 0;
  while (std::chrono::steady_clock::now() < end) {
    wire::Members m;
    for (int i = 0; i < 55; ++i, ++n) {
      // Every state in turn: statements about members nobody knew that are
      // dead or left are remembered and gossiped too.
      m.updates.push_back(fake_member("x" + std::to_string(n), rng() | 1, static_cast<uint16_t>(1024 + n % 60000),
                                      static_cast<wire::MemberState>(n % 4)));
    }
    if (s.send(datagram(rng() | 1, std::move(m)))) {
      ++sent;
      updates += 55;
    }
    // Paced to RATE datagrams a second.
    std::this_thread::sleep_until(start + std::chrono::duration<double>(static_cast<double>(sent + 1) / rate));
  }
  std::printf("flood: %llu datagrams, %llu forged members with fresh uids\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(updates));
  return 0;
}

int fake(const Endpoint& node, int count) {
  Socket s(node);
  std::mt19937_64 rng(std::random_device{}());
  wire::Members m;
  for (int i = 0; i < count; ++i) {
    const std::string name = (i < 10 ? "f0" : "f") + std::to_string(i);
    m.updates.push_back(fake_member(name, rng() | 1, static_cast<uint16_t>(40000 + i)));
  }
  const wire::Bytes b = datagram(rng() | 1, std::move(m));
  if (!s.send(b)) {
    std::perror("sendto");
    return 1;
  }
  std::printf("fake: one datagram of %zu bytes listing %d fake members\n", b.size(), count);
  return 0;
}

}  // namespace

int pipeline(const Endpoint& node, int count) {
  // A sealed node's client: the key in MESHKV_KEY_FILE, as meshkv reads it.
  if (const char* file = std::getenv("MESHKV_KEY_FILE"); file != nullptr && *file != '\0') {
    auto key = crypto::load_cluster_key(file);
    if (!key.ok()) {
      std::fprintf(stderr, "pipeline: %s\n", key.status().message().c_str());
      return 1;
    }
    net::set_client_key(*key);
  }
  auto conn = net::Connection::open(node);
  if (!conn.ok()) {
    std::fprintf(stderr, "pipeline: %s\n", conn.status().message().c_str());
    return 1;
  }
  std::vector<wire::CtlRequest> reqs;
  uint64_t id = 0;
  for (int i = 0; i < count; ++i) {
    wire::Value args = wire::Value::object();
    args.set("key", "pl/" + std::to_string(i));
    args.set("value", "v" + std::to_string(i));
    if (i == count / 2) args.set("wait", "all");
    reqs.push_back(wire::CtlRequest{++id, "set", std::move(args)});
  }
  for (int i = 0; i < count; ++i) {
    wire::Value args = wire::Value::object();
    args.set("key", "pl/" + std::to_string(i));
    reqs.push_back(wire::CtlRequest{++id, "get", std::move(args)});
  }
  wire::Value args = wire::Value::object();
  args.set("prefix", "pl/");
  reqs.push_back(wire::CtlRequest{++id, "watch", std::move(args)});
  if (Status s = conn->send(std::span<const wire::CtlRequest>(reqs)); !s.ok()) {
    std::fprintf(stderr, "pipeline: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("sent %zu requests in one write\n", reqs.size());
  size_t got = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got < reqs.size() && std::chrono::steady_clock::now() < end) {
    pollfd p{conn->fd(), POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    std::vector<wire::CtlResponse> out;
    if (Status s = conn->receive(out); !s.ok()) {
      std::fprintf(stderr, "pipeline: %s\n", s.message().c_str());
      return 1;
    }
    for (const auto& r : out) {
      const wire::Value& v = r.body.get("value");
      std::printf("%llu %d %s\n", static_cast<unsigned long long>(r.req_id), static_cast<int>(r.code),
                  v.is_string() ? v.as_string().c_str() : "-");
      if (r.code != wire::kCtlOk) std::printf("  error: %s\n", r.error.c_str());
      ++got;
    }
  }
  std::fflush(stdout);
  return got == reqs.size() ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 4) usage();
  const std::string mode = argv[1];
  const auto node = Endpoint::parse(argv[2]);
  if (!node || node->family != 4) usage();
  if (mode == "flood" && argc == 5) return flood(*node, std::atof(argv[3]), std::max(1.0, std::atof(argv[4])));
  if (mode == "fake" && argc == 4) return fake(*node, std::atoi(argv[3]));
  if (mode == "pipeline" && argc == 4) return pipeline(*node, std::max(1, std::atoi(argv[3])));
  usage();
}
