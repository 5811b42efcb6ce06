// Internal to src/net: one control connection of the Asio shell, its
// buffers and its idle timeout.
//
// Its buffers and session are private to ControlPort (net/control_port.h),
// which reads frames, answers them and writes responses. Once a connection
// turns into a watch stream (net/watch_streams.h) the port lets go of it:
// the stream uses only the public member functions below.
#pragma once

#include <array>
#include <asio.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "net/ctl_seal.h"
#include "net/server.h"
#include "wire/codec.h"
#include "wire/frame.h"

namespace meshkv::net {

class ControlPort;

namespace detail {
// An allocator that leaves new bytes uninitialised: the control read buffer
// grows by 64 KiB before each read, and zeroing that much per request cost
// more than parsing the request.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
}  // namespace detail

struct Conn;

// The open connections of a port, for its caps: all of them, in order of
// acceptance, and those that have not authenticated yet (by source address
// too). Shared with every connection, so that one destroyed during
// io_context teardown touches nothing already freed.
struct ConnTable {
  std::list<Conn*> all;
  std::list<Conn*> preauth;
  std::map<asio::ip::address, size_t> preauth_by_addr;
  size_t live() const { return all.size(); }
};

// Every pending operation holds a shared_ptr to the connection.
struct Conn : std::enable_shared_from_this<Conn> {
  using tcp = asio::ip::tcp;

  Conn(tcp::socket s, std::shared_ptr<ConnTable> t, asio::ip::address from)
      : sock(std::move(s)), idle(sock.get_executor()), deadline(sock.get_executor()), table(std::move(t)),
        addr(from) {
    in_all = table->all.insert(table->all.end(), this);
    in_preauth = table->preauth.insert(table->preauth.end(), this);
    ++table->preauth_by_addr[addr];
  }
  ~Conn() {
    leave_preauth();
    table->all.erase(in_all);
  }

  // No longer counted among the connections waiting for their handshake:
  // authenticated, or being closed. Idempotent.
  void leave_preauth() {
    if (!preauth_listed) return;
    preauth_listed = false;
    table->preauth.erase(in_preauth);
    auto it = table->preauth_by_addr.find(addr);
    if (--it->second == 0) table->preauth_by_addr.erase(it);
  }

  // `r` as a frame for this connection: sealed once a session is open.
  wire::Bytes frame(uint64_t node_uid, const wire::CtlResponse& r) {
    wire::Bytes plain = wire::encode(wire::Envelope{wire::kVersion, node_uid, r});
    if (session) plain = session->seal(plain);
    return wire::frame(plain);
  }

  void close() {
    std::error_code ignored;
    idle.cancel();
    deadline.cancel();
    leave_preauth();
    sock.close(ignored);
  }

  // Closes the connection unless it makes progress within the idle timeout.
  // Progress only stamps the time: the one timer re-arms itself when it
  // finds the connection was active meanwhile, so a busy connection costs
  // no timer work per request. No-op once watching.
  void touch() {
    if (watching) return;  // a watch is quiet for as long as nothing changes
    last_active = std::chrono::steady_clock::now();
    if (!idle_armed) wait_idle();
  }

  // The connection now carries a watch stream: no idle timeout, and no more
  // requests read. `on_input` runs once, when the client closes or sends
  // anything (a watch client sends nothing more).
  void begin_watch(std::function<void()> on_input) {
    watching = true;
    idle.cancel();
    asio::async_read(sock, asio::buffer(hdr),
                     [self = shared_from_this(), fn = std::move(on_input)](std::error_code, size_t) { fn(); });
  }

  // Writes `bytes`, which must stay alive and unchanged until `done` runs.
  void write(const wire::Bytes& bytes, std::function<void(std::error_code)> done) {
    asio::async_write(sock, asio::buffer(bytes),
                      [self = shared_from_this(), done = std::move(done)](std::error_code ec, size_t) { done(ec); });
  }

 private:
  friend class ControlPort;

  tcp::socket sock;
  asio::steady_timer idle;
  asio::steady_timer deadline;  // the handshake's, on a sealed node
  std::shared_ptr<ConnTable> table;
  asio::ip::address addr;  // the peer's
  std::list<Conn*>::iterator in_all, in_preauth;
  bool authed = false;     // handshake done (sealed), or a whole request received (unsealed)
  bool preauth_listed = true;
  bool refusing = false;   // answered with a refusal, closing
  bool evicted = false;
  std::array<uint8_t, 4> hdr{};
  std::vector<uint8_t, detail::UninitAllocator<uint8_t>> in;  // read, not yet cut into frames, from in_pos
  size_t in_pos = 0;
  wire::Bytes body;  // the frame being answered
  wire::Bytes out;
  // Answers to pipelined requests not yet written (ControlPort::send_response).
  wire::Bytes pending;
  size_t pending_count = 0;
  bool watching = false;
  bool waiting = false;  // its request is answered later (ControlPort::complete)
  bool idle_armed = false;
  std::chrono::steady_clock::time_point last_active{};
  std::unique_ptr<CtlSession> session;  // sealed nodes: set by the handshake

  void wait_idle() {
    idle_armed = true;
    idle.expires_at(last_active + kControlIdle);
    idle.async_wait([w = weak_from_this()](std::error_code ec) {
      auto conn = w.lock();
      if (!conn) return;
      conn->idle_armed = false;
      if (ec || conn->watching) return;
      if (conn->waiting) {  // an answer is due (at most kMaxWaitMs away): not idle
        conn->last_active = std::chrono::steady_clock::now();
        return conn->wait_idle();
      }
      if (std::chrono::steady_clock::now() < conn->last_active + kControlIdle) return conn->wait_idle();
      std::error_code ignored;
      conn->sock.close(ignored);
    });
  }
};

}  // namespace meshkv::net
