// POSIX sockets rather than Asio: a blocking one-shot exchange needs no event
// loop, and poll() with a deadline bounds every step.
#include "net/control_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include "crypto/seal.h"
#include "net/ctl_seal.h"
#include "wire/codec.h"
#include "wire/frame.h"

namespace meshkv::net {

namespace {
std::optional<crypto::ClusterKey>& client_key() {
  static std::optional<crypto::ClusterKey> key;
  return key;
}

using Clock = std::chrono::steady_clock;

// Closes the descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// "Connection refused" reads as "...: connection refused" mid-sentence.
std::string lowercase(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

struct Exchange {
  const Endpoint& node;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout;

  Status unreachable(int err) const { return unreachable(lowercase(std::strerror(err))); }
  Status unreachable(const std::string& why) const {
    return Status::Unavailable("node " + node.to_string() + " unreachable: " + why);
  }
  Status timed_out(const char* step) const {
    return Status::Unavailable("node " + node.to_string() + " did not answer within " +
                               std::to_string(timeout.count()) + " ms (" + step + ")");
  }
  // Waits until `fd` is ready for `events` or the deadline passes.
  bool wait(int fd, short events) const {
    for (;;) {
      // time_point::max() means "no deadline": poll without a timeout.
      const bool forever = deadline == Clock::time_point::max();
      const auto left =
          forever ? -1
                  : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                        .count();
      if (!forever && left <= 0) return false;
      pollfd p{fd, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }
};

socklen_t fill_sockaddr(const Endpoint& e, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (e.family == 6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(e.port);
    std::memcpy(&a->sin6_addr, e.ip.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(e.port);
  std::memcpy(&a->sin_addr, e.ip.data(), 4);
  return sizeof(sockaddr_in);
}

Status connect_to(const Exchange& x, int fd) {
  sockaddr_storage ss;
  const socklen_t len = fill_sockaddr(x.node, ss);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return Status::Ok();
  if (errno != EINPROGRESS) return x.unreachable(errno);
  if (!x.wait(fd, POLLOUT)) return x.timed_out("connecting");
  int err = 0;
  socklen_t elen = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
  return err == 0 ? Status::Ok() : x.unreachable(err);
}

Status write_all(const Exchange& x, int fd, const wire::Bytes& out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!x.wait(fd, POLLOUT)) return x.timed_out("sending");
    } else {
      return x.unreachable(errno);
    }
  }
  return Status::Ok();
}

Status read_exact(const Exchange& x, int fd, uint8_t* p, size_t want) {
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::recv(fd, p + got, want - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0) {
      return x.unreachable("connection closed before a response");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (!x.wait(fd, POLLIN)) return x.timed_out("waiting for the response");
    } else {
      return x.unreachable(errno);
    }
  }
  return Status::Ok();
}

Result<wire::Bytes> read_frame(const Exchange& x, int fd) {
  std::array<uint8_t, wire::kFrameHeaderBytes> hdr;
  if (Status s = read_exact(x, fd, hdr.data(), hdr.size()); !s.ok()) return s;
  const auto len = wire::frame_length(hdr);
  if (!len.ok()) {
    return Status::Corruption("node " + x.node.to_string() +
                              " does not speak the meshkv control protocol (" + len.status().message() + ")");
  }
  wire::Bytes body;
  // Grown as bytes arrive, so a lying length costs no memory up front.
  while (body.size() < *len) {
    const size_t old = body.size();
    body.resize(old + std::min<size_t>(*len - old, 1 << 20));
    if (Status s = read_exact(x, fd, body.data() + old, body.size() - old); !s.ok()) return s;
  }
  return body;
}

// kTooLarge for a request the node would refuse unread: over its frame limit.
Status check_request_size(size_t body_bytes) {
  if (body_bytes <= wire::kMaxFrameBytes) return Status::Ok();
  return Status::TooLarge("request too large: " + std::to_string(body_bytes) + " bytes, the limit is " +
                          std::to_string(wire::kMaxFrameBytes) + " (64 MiB)");
}

Status write_frame(const Exchange& x, int fd, const wire::Bytes& body) {
  if (Status s = check_request_size(body.size()); !s.ok()) return s;
  return write_all(x, fd, wire::frame(body));
}

Result<wire::CtlResponse> decode_response(const Exchange& x, const uint8_t* data, size_t n);
Result<wire::CtlResponse> decode_response(const Exchange& x, const wire::Bytes& body) {
  return decode_response(x, body.data(), body.size());
}

// On a connected socket: when this process holds a key, the handshake of
// net/ctl_seal.h, leaving `session` set; otherwise nothing.
Status open_session(const Exchange& x, int fd, std::unique_ptr<CtlSession>& session) {
  const auto& key = client_key();
  if (!key) return Status::Ok();
  const Nonce24 cn = random_nonce();
  if (Status s = write_frame(x, fd, client_hello(key->id, cn)); !s.ok()) return s;
  auto reply = read_frame(x, fd);
  if (!reply.ok()) return reply.status();
  Nonce24 sn{};
  if (!parse_server_hello(*reply, sn)) {
    auto r = decode_response(x, *reply);
    if (r.ok() && r->code == wire::kCtlUnavailable) return Status::Denied(r->error);
    return Status::Denied("node " + x.node.to_string() +
                          " is not sealed, or does not hold this cluster key; run without "
                          "--key-file (and MESHKV_KEY_FILE) to talk to an unsealed node");
  }
  session = std::make_unique<CtlSession>(*key, cn, sn, false);
  return Status::Ok();
}

// Connects, opens a sealed session when this process holds a key, and sends
// the request.
Status send_request(const Exchange& x, int fd, const wire::CtlRequest& req,
                    std::unique_ptr<CtlSession>& session) {
  // Refused before connecting: sealing only makes it larger.
  wire::Bytes msg = wire::encode(wire::Envelope{wire::kVersion, 0, req});
  if (Status s = check_request_size(msg.size()); !s.ok()) return s;
  if (Status s = connect_to(x, fd); !s.ok()) return s;
  if (Status s = open_session(x, fd, session); !s.ok()) return s;
  if (session) msg = session->seal(msg);
  return write_frame(x, fd, msg);
}

Result<wire::CtlResponse> decode_response(const Exchange& x, const uint8_t* data, size_t n) {
  auto env = wire::decode(data, n);
  if (!env.ok()) {
    return Status::Corruption("node " + x.node.to_string() + " sent a malformed response: " +
                              env.status().message());
  }
  auto* resp = std::get_if<wire::CtlResponse>(&env->msg);
  if (resp == nullptr) {
    return Status::Corruption("node " + x.node.to_string() + " answered with a " +
                              wire::type_name(wire::type_of(env->msg)) + " message");
  }
  return std::move(*resp);
}

Result<wire::CtlResponse> read_response(const Exchange& x, int fd, const std::unique_ptr<CtlSession>& session) {
  auto body = read_frame(x, fd);
  if (!body.ok()) return body.status();
  if (session) {
    wire::Bytes plain;
    if (!session->open(*body, plain)) {
      return Status::Corruption("node " + x.node.to_string() + " sent a frame that does not authenticate");
    }
    return decode_response(x, plain);
  }
  return decode_response(x, *body);
}

int open_socket(const Endpoint& node) {
  return ::socket(node.family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
}
}  // namespace

Result<wire::CtlResponse> call(const Endpoint& node, const wire::CtlRequest& req,
                               std::chrono::milliseconds timeout) {
  const Exchange x{node, Clock::now() + timeout, timeout};
  Fd fd(open_socket(node));
  if (fd.get() < 0) return Status::Io(std::string("socket: ") + std::strerror(errno));
  std::unique_ptr<CtlSession> session;
  if (Status s = send_request(x, fd.get(), req, session); !s.ok()) return s;
  return read_response(x, fd.get(), session);
}

void set_client_key(const crypto::ClusterKey& key) { client_key() = key; }
bool has_client_key() { return client_key().has_value(); }

Status stream(const Endpoint& node, const wire::CtlRequest& req, std::chrono::milliseconds timeout,
              const std::function<bool(const wire::CtlResponse&)>& on_response) {
  Exchange x{node, Clock::now() + timeout, timeout};
  Fd fd(open_socket(node));
  if (fd.get() < 0) return Status::Io(std::string("socket: ") + std::strerror(errno));
  std::unique_ptr<CtlSession> session;
  if (Status s = send_request(x, fd.get(), req, session); !s.ok()) return s;
  for (bool first = true;; first = false) {
    // The first answer is bounded by the timeout; later ones come when the
    // node has news, however long that takes.
    if (!first) x.deadline = Clock::time_point::max();
    auto r = read_response(x, fd.get(), session);
    if (!r.ok()) return first ? r.status() : Status::Unavailable("node " + node.to_string() + " closed the stream");
    if (!on_response(*r) || !r->more) return Status::Ok();
  }
}

// ---- Connection ----------------------------------------------------------------

struct Connection::State {
  State(const Endpoint& n, int f) : node(n), fd(f) {}

  // Moves every complete frame from `in` to `out`, decoded.
  Status take_frames(std::vector<wire::CtlResponse>& out);
  // One frame's body: opened when sealed, then decoded.
  Result<wire::CtlResponse> decode(const Exchange& x, const uint8_t* body, size_t len);

  Endpoint node;
  Fd fd;
  std::unique_ptr<CtlSession> session;
  wire::Bytes in;   // bytes received; in[head..] not yet taken as frames
  size_t head = 0;
};

Status Connection::State::take_frames(std::vector<wire::CtlResponse>& out) {
  const Exchange x{node, Clock::time_point::max(), std::chrono::milliseconds(0)};
  Status st;
  while (st.ok()) {
    const auto cut = wire::cut_frame(std::span<const uint8_t>(in).subspan(head));
    if (cut.kind == wire::FrameCut::kIncomplete) break;
    if (cut.kind == wire::FrameCut::kTooLarge) {
      const auto len = wire::frame_length(std::span<const uint8_t>(in).subspan(head).first<wire::kFrameHeaderBytes>());
      return Status::Corruption("node " + x.node.to_string() +
                                " does not speak the meshkv control protocol (" + len.status().message() + ")");
    }
    auto r = decode(x, cut.body.data(), cut.body.size());
    head += cut.consumed;
    if (r.ok()) out.push_back(std::move(*r));
    else st = r.status();
  }
  // Compacted now and then, not per frame, so a burst costs one move.
  if (head == in.size()) {
    in.clear();
    head = 0;
  } else if (head >= (size_t{1} << 16)) {
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(head));
    head = 0;
  }
  return st;
}

Result<wire::CtlResponse> Connection::State::decode(const Exchange& x, const uint8_t* body, size_t len) {
  if (!session) return decode_response(x, body, len);
  wire::Bytes plain;
  if (!session->open(wire::Bytes(body, body + len), plain)) {
    return Status::Corruption("node " + node.to_string() + " sent a frame that does not authenticate");
  }
  return decode_response(x, plain);
}

Connection::Connection(std::unique_ptr<State> s) : s_(std::move(s)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Result<Connection> Connection::open(const Endpoint& node, std::chrono::milliseconds timeout) {
  const Exchange x{node, Clock::now() + timeout, timeout};
  auto s = std::make_unique<State>(node, open_socket(node));
  if (s->fd.get() < 0) return Status::Io(std::string("socket: ") + std::strerror(errno));
  if (Status st = connect_to(x, s->fd.get()); !st.ok()) return st;
  const int one = 1;
  ::setsockopt(s->fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (Status st = open_session(x, s->fd.get(), s->session); !st.ok()) return st;
  return Connection(std::move(s));
}

Status Connection::send(const wire::CtlRequest& req, std::chrono::milliseconds timeout) {
  const Exchange x{s_->node, Clock::now() + timeout, timeout};
  wire::Bytes msg = wire::encode(wire::Envelope{wire::kVersion, 0, req});
  if (s_->session) msg = s_->session->seal(msg);
  return write_frame(x, s_->fd.get(), msg);
}

Status Connection::send(std::span<const wire::CtlRequest> reqs, std::chrono::milliseconds timeout) {
  const Exchange x{s_->node, Clock::now() + timeout, timeout};
  std::vector<wire::Bytes> msgs;
  msgs.reserve(reqs.size());
  for (const auto& req : reqs) {
    msgs.push_back(wire::encode(wire::Envelope{wire::kVersion, 0, req}));
    // Checked before any is sealed: a sealed one not sent would leave a gap
    // in the session's sequence.
    if (Status s = check_request_size(msgs.back().size() + (s_->session ? crypto::kSealOverhead : 0)); !s.ok()) return s;
  }
  wire::Bytes all;
  for (wire::Bytes& msg : msgs) {
    if (s_->session) msg = s_->session->seal(msg);
    const wire::Bytes f = wire::frame(msg);
    all.insert(all.end(), f.begin(), f.end());
  }
  return all.empty() ? Status::Ok() : write_all(x, s_->fd.get(), all);
}

Status Connection::receive(std::vector<wire::CtlResponse>& out) {
  // One read a call: a caller multiplexing many connections comes back
  // when poll says so, and no connection can starve the others.
  uint8_t buf[65536];
  const ssize_t n = ::recv(s_->fd.get(), buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Status::Ok();
  const Exchange x{s_->node, Clock::time_point::max(), std::chrono::milliseconds(0)};
  if (n < 0) return x.unreachable(errno);
  if (n == 0) return x.unreachable("connection closed");
  s_->in.insert(s_->in.end(), buf, buf + n);
  return s_->take_frames(out);
}

int Connection::fd() const { return s_->fd.get(); }

}  // namespace meshkv::net
