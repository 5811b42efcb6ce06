#include "net/control_port.h"

#include <algorithm>
#include <span>
#include <string>
#include <utility>

#include "net/ctl_seal.h"
#include "wire/codec.h"
#include "wire/frame.h"

namespace meshkv::net {

using asio::ip::tcp;

ControlPort::ControlPort(asio::io_context& io) : acceptor_(io), accept_retry_(io) {}

std::error_code ControlPort::listen(const tcp::endpoint& at) {
  std::error_code ec;
  acceptor_.open(at.protocol(), ec);
  // Lets a restarted node take its port back while old control
  // connections linger in TIME_WAIT; a live listener still refuses it.
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(at, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::error_code ignored;
    acceptor_.close(ignored);
  }
  return ec;
}

void ControlPort::start(uint64_t node_uid, const ControlKeys& keys, Storage* storage, WatchStreams& watches,
                        Hooks hooks) {
  uid_ = node_uid;
  keys_ = &keys;
  storage_ = storage;
  watches_ = &watches;
  hooks_ = std::move(hooks);
  accept();
}

void ControlPort::close() {
  closed_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
}

void ControlPort::accept() {
  acceptor_.async_accept([this](std::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors, most likely: back off instead of spinning.
      hooks_.log(node::LogLevel::kWarn, "control: accept failed: " + ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](std::error_code e) {
        if (!e) accept();
      });
      return;
    }
    accepted(std::move(s));
    accept();
  });
}

void ControlPort::accepted(tcp::socket s) {
  std::error_code ec;
  const tcp::endpoint peer = s.remote_endpoint(ec);
  if (ec || closed_ || !admit(peer.address())) {
    if (!ec && !closed_) hooks_.limited(node::ControlLimit::kRejected);
    std::error_code ignored;
    s.close(ignored);
    return;
  }
  auto c = std::make_shared<Conn>(std::move(s), table_, peer.address());
  c->touch();
  if (keys_->sealed()) {
    c->deadline.expires_after(kHandshakeDeadline);
    c->deadline.async_wait([this, w = std::weak_ptr<Conn>(c)](std::error_code e) {
      auto conn = w.lock();
      if (e || !conn || conn->authed) return;
      if (!conn->refusing) hooks_.limited(node::ControlLimit::kHandshakeTimeout);
      conn->close();
    });
  }
  read(std::move(c));
}

// The caps of control_port.h, applied before a connection from `from` is
// admitted: its address's share of the unauthenticated ones, all of those,
// then all connections.
bool ControlPort::admit(const asio::ip::address& from) {
  ConnTable& t = *table_;
  if (keys_->sealed()) {
    auto it = t.preauth_by_addr.find(from);
    if (it != t.preauth_by_addr.end() && it->second >= kMaxPreauthPerAddress) {
      for (Conn* c : t.preauth) {
        if (c->addr == from) {
          evict(c);
          break;
        }
      }
    }
    if (t.preauth.size() >= kMaxPreauthConnections) evict(t.preauth.front());
  }
  if (t.live() < kMaxControlConnections) return true;
  // Evicted connections are counted until their handlers have run: only
  // those not evicted already are in the way.
  size_t open = 0;
  for (Conn* c : t.all) open += c->evicted ? 0 : 1;
  if (open < kMaxControlConnections) return true;
  if (!t.preauth.empty()) {
    evict(t.preauth.front());
    return true;
  }
  Conn* idlest = nullptr;
  const auto cutoff = std::chrono::steady_clock::now() - kControlEvictIdle;
  for (Conn* c : t.all) {
    if (c->evicted || c->watching || c->last_active > cutoff) continue;
    if (!idlest || c->last_active < idlest->last_active) idlest = c;
  }
  if (!idlest) return false;
  evict(idlest);
  return true;
}

void ControlPort::evict(Conn* c) {
  c->evicted = true;
  hooks_.limited(node::ControlLimit::kEvicted);
  c->close();
}

// Frames are cut out of a read buffer: one read usually brings a whole
// request (or several, pipelined), where reading header and body apart cost
// two system calls per request. The buffer grows only as bytes arrive, so a
// lying length costs no memory up front.
//
// Until the handshake of a sealed node is done, the frame limit is
// kPreauthFrameBytes and reads are as small: a client without the key costs
// a few KiB at most. Only a whole request is progress for the idle timeout.
void ControlPort::read(std::shared_ptr<Conn> c) {
  if (c->evicted) return c->close();
  const bool preauth = keys_->sealed() && !c->authed;
  const size_t limit = preauth ? kPreauthFrameBytes : wire::kMaxFrameBytes;
  const wire::FrameCut cut =
      wire::cut_frame(std::span<const uint8_t>(c->in.data() + c->in_pos, c->in.size() - c->in_pos), limit);
  if (cut.kind == wire::FrameCut::kTooLarge) {
    uint64_t announced = 0;
    for (size_t i = 0; i < wire::kFrameHeaderBytes; ++i) {
      announced |= static_cast<uint64_t>(c->in[c->in_pos + i]) << (8 * i);
    }
    if (preauth) {
      hooks_.limited(node::ControlLimit::kHandshakeTooLarge);
      hooks_.refused();
    }
    return refuse_too_large(std::move(c), announced);
  }
  if (cut.kind == wire::FrameCut::kWhole) {
    c->touch();
    c->body.assign(cut.body.begin(), cut.body.end());
    c->in_pos += cut.consumed;
    if (c->in_pos == c->in.size()) {
      c->in.clear();
      c->in_pos = 0;
    }
    return respond(std::move(c));
  }
  if (c->in_pos > 0) {
    c->in.erase(c->in.begin(), c->in.begin() + static_cast<std::ptrdiff_t>(c->in_pos));
    c->in_pos = 0;
  }
  const size_t chunk = preauth ? wire::kFrameHeaderBytes + kPreauthFrameBytes : size_t{64 * 1024};
  const size_t old = c->in.size();
  c->in.resize(old + chunk);
  c->sock.async_read_some(asio::buffer(c->in.data() + old, chunk),
                          [this, c, old](std::error_code ec, size_t n) {
                            if (ec) return c->close();
                            c->in.resize(old + n);
                            read(c);
                          });
}

bool ControlPort::open_frame(const std::shared_ptr<Conn>& c) {
  if (!keys_->sealed()) {
    c->authed = true;
    c->leave_preauth();
    return true;
  }
  if (c->session) {
    wire::Bytes plain;
    if (!c->session->open(c->body, plain)) {
      hooks_.refused();
      c->close();  // forged, replayed or out of order: no answer
      return false;
    }
    c->body = std::move(plain);
    return true;
  }
  // A sealed node talks only to clients that hold a cluster key.
  uint64_t key_id = 0;
  Nonce24 cn{};
  const bool hello = parse_client_hello(c->body, key_id, cn);
  const crypto::ClusterKey* key = hello ? keys_->find(key_id) : nullptr;
  if (!key) {
    hooks_.refused();
    c->refusing = true;
    const wire::CtlResponse denied = wire::ctl_error(
        0, wire::kCtlUnavailable,
        hello ? "permission denied: this node does not hold the cluster key given (id " +
                    crypto::key_id_hex(key_id) + ")"
              : std::string(kControlDenied));
    c->out = c->frame(uid_, denied);
    write(c, true);
    return false;
  }
  const Nonce24 sn = random_nonce();
  c->session = std::make_unique<CtlSession>(*key, cn, sn, true);
  c->authed = true;
  c->leave_preauth();
  c->deadline.cancel();
  c->out = wire::frame(server_hello(sn));
  write(c, false);
  return false;
}

void ControlPort::respond(std::shared_ptr<Conn> c) {
  if (!open_frame(c)) return;
  const Reply r = hooks_.answer(c->body);
  if (r.watch) {
    std::string prefix = r.resp.body.get("prefix").as_string();
    if (c->pending.empty()) return watches_->start(std::move(c), r.resp, std::move(prefix));
    // The answers to the requests before it go first.
    c->out = std::exchange(c->pending, {});
    c->pending_count = 0;
    c->write(c->out, [this, c, resp = r.resp, prefix = std::move(prefix)](std::error_code ec) mutable {
      if (ec) return c->close();
      watches_->start(c, resp, std::move(prefix));
    });
    return;
  }
  if (r.deferred != 0) {
    if (auto e = early_.find(r.deferred); e != early_.end()) {
      wire::CtlResponse resp = std::move(e->second);
      early_.clear();
      return send_response(std::move(c), resp, false);
    }
    // Nothing more is read from it until the answer is written: responses
    // stay in request order. The idle timeout spares it meanwhile.
    c->waiting = true;
    deferred_[r.deferred] = c;
    return;
  }
  send_response(std::move(c), r.resp, r.close_after);
}

void ControlPort::complete(uint64_t id, wire::CtlResponse resp) {
  auto it = deferred_.find(id);
  if (it == deferred_.end()) {
    // Answered while respond() was still handling the request: it sends it.
    if (early_.size() < 16) early_.emplace(id, std::move(resp));
    return;
  }
  std::shared_ptr<Conn> c = std::move(it->second);
  deferred_.erase(it);
  if (!c || !c->sock.is_open()) return;
  c->waiting = false;
  c->touch();
  send_response(std::move(c), resp, false);
}

bool ControlPort::next_buffered(const Conn& c) const {
  if (c.refusing || c.evicted || (keys_->sealed() && !c.authed)) return false;
  const auto cut = wire::cut_frame(std::span<const uint8_t>(c.in.data() + c.in_pos, c.in.size() - c.in_pos),
                                   wire::kMaxFrameBytes);
  return cut.kind == wire::FrameCut::kWhole;
}

// A client that pipelines its requests finds several in one read. Their
// answers are collected while the next request is already read whole, and
// written together: one system call for up to kMaxPipelined answers instead
// of one each. Collected answers never wait for input: the last request
// read flushes them all.
void ControlPort::send_response(std::shared_ptr<Conn> c, const wire::CtlResponse& resp, bool close_after) {
  constexpr size_t kMaxPipelined = 64, kMaxPipelinedBytes = 256 * 1024;
  wire::Bytes frame = c->frame(uid_, resp);
  if (frame.size() - wire::kFrameHeaderBytes > wire::kMaxFrameBytes) {
    const wire::CtlResponse too_big =
        wire::ctl_error(resp.req_id, wire::kCtlBadRequest, "response too large for one frame");
    frame = c->frame(uid_, too_big);
  }
  // A request that was answered before this one's sync became due (sync
  // off, a read, or synced already) is safe to acknowledge whatever this
  // one's sync does.
  const bool sync_due = storage_ && storage_->sync_pending();
  if (!close_after && !sync_due && c->pending_count < kMaxPipelined &&
      c->pending.size() + frame.size() <= kMaxPipelinedBytes && next_buffered(*c)) {
    c->pending.insert(c->pending.end(), frame.begin(), frame.end());
    ++c->pending_count;
    return read(std::move(c));
  }
  c->pending_count = 0;
  if (sync_due) {
    // Never acknowledge a write that is not on disk. A failed sync withdrew
    // the request's writes (net/storage.h): it is refused, not left
    // uncertain.
    storage_->after_sync([this, c = std::move(c), close_after, req_id = resp.req_id,
                          frame = std::move(frame)](const Status& synced) mutable {
      c->out = std::exchange(c->pending, {});
      const wire::Bytes last =
          synced.ok() ? std::move(frame) : c->frame(uid_, wire::ctl_error(req_id, wire::kCtlUnavailable, synced.message()));
      c->out.insert(c->out.end(), last.begin(), last.end());
      write(c, close_after);
    });
    return;
  }
  if (c->pending.empty()) {
    c->out = std::move(frame);
  } else {
    c->out = std::exchange(c->pending, {});
    c->out.insert(c->out.end(), frame.begin(), frame.end());
  }
  write(std::move(c), close_after);
}

void ControlPort::refuse_too_large(std::shared_ptr<Conn> c, uint64_t announced) {
  const size_t buffered = c->in.size() - c->in_pos - wire::kFrameHeaderBytes;
  const uint64_t left = announced > buffered ? announced - buffered : 0;
  c->in.clear();
  c->in_pos = 0;
  c->refusing = true;
  // Before the handshake, a large frame is a request without the key: it
  // gets the same answer as a small one, and its rest is read only until the
  // handshake deadline.
  const wire::CtlResponse refusal =
      keys_->sealed() && !c->authed
          ? wire::ctl_error(0, wire::kCtlUnavailable, std::string(kControlDenied))
          : wire::ctl_error(0, wire::kCtlBadRequest,
                            "request too large: " + std::to_string(announced) + " bytes, the limit is " +
                                std::to_string(wire::kMaxFrameBytes) + " (64 MiB)");
  c->out = c->frame(uid_, refusal);
  c->touch();
  asio::async_write(c->sock, asio::buffer(c->out), [this, c, left](std::error_code ec, size_t) {
    if (ec) return c->close();
    // The answer is all this connection will carry: the client sees it as
    // soon as it has sent its frame and reads.
    std::error_code ignored;
    c->sock.shutdown(tcp::socket::shutdown_send, ignored);
    discard(c, left);
  });
}

// Reads and drops up to `left` bytes, then closes; closing with unread bytes
// would reset the connection and lose the answer on the client's side. The
// idle timeout (or the handshake deadline) still bounds a client that stops
// sending, or sends slowly: the bytes discarded are not progress.
void ControlPort::discard(std::shared_ptr<Conn> c, uint64_t left) {
  if (left == 0 || c->evicted) return c->close();
  constexpr size_t kChunk = 16 * 1024;
  c->in.resize(kChunk);
  c->sock.async_read_some(asio::buffer(c->in.data(), static_cast<size_t>(std::min<uint64_t>(left, kChunk))),
                          [this, c, left](std::error_code ec, size_t n) {
                            if (ec) return c->close();
                            discard(c, left - n);
                          });
}

void ControlPort::write(std::shared_ptr<Conn> c, bool close_after) {
  c->touch();
  asio::async_write(c->sock, asio::buffer(c->out), [this, c, close_after](std::error_code ec, size_t) {
    if (ec || close_after) return c->close();
    read(c);
  });
}

}  // namespace meshkv::net
