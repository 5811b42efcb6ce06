// Internal to src/net: the Asio shell's state, shared by server.cc (sockets,
// timer, control connections, lifecycle), server_durable.cc (the data
// directory, group commit, snapshots) and server_watch.cc (change streams).
#pragma once

#include <array>
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "net/ctl_seal.h"
#include "net/server.h"
#include "net/storage.h"
#include "wire/codec.h"
#include "wire/frame.h"

namespace meshkv::net {

namespace detail {
using asio::ip::tcp;
using asio::ip::udp;
using std::chrono::steady_clock;
// Kernel socket buffers: anti-entropy answers come in bursts of up to ~48
// datagrams per peer; the kernel caps this at net.core.[rw]mem_max.
constexpr int kSocketBufferBytes = 4 * 1024 * 1024;
// An engine deadline further out than this is re-checked then (and keeps
// time_point arithmetic far from overflow).
constexpr uint64_t kMaxTimerUs = 3600ull * 1000 * 1000;
// The engine's timer never fires more often than this when its deadline does
// not advance past a tick, so an engine bug cannot spin the CPU.
constexpr uint64_t kMinRetickUs = 1000;
constexpr std::chrono::milliseconds kLeaveGrace{100};

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

// One control connection and its buffers. Every pending operation holds a
// shared_ptr to it; `live` is shared so that a connection destroyed during
// io_context teardown touches nothing already freed.
struct Conn {
  Conn(tcp::socket s, std::shared_ptr<size_t> l)
      : sock(std::move(s)), idle(sock.get_executor()), live(std::move(l)) {
    ++*live;
  }
  ~Conn() { --*live; }
  tcp::socket sock;
  asio::steady_timer idle;
  std::shared_ptr<size_t> live;
  std::array<uint8_t, 4> hdr{};
  std::vector<uint8_t, UninitAllocator<uint8_t>> in;  // read, not yet cut into frames, from in_pos
  size_t in_pos = 0;
  wire::Bytes body;   // the frame being answered
  wire::Bytes out;
  bool watching = false;
  bool idle_armed = false;
  steady_clock::time_point last_active{};
  std::unique_ptr<CtlSession> session;  // sealed nodes: set by the handshake
};

// A connection that asked to `watch`: change frames queue here and are
// written one at a time. Bounded: a client that falls this far behind is cut
// off with a final frame saying so, rather than growing the node's memory.
struct Watcher {
  std::shared_ptr<Conn> conn;
  uint64_t req_id = 0;
  std::string prefix;
  std::deque<wire::Bytes> queue;
  bool writing = false;
  bool closed = false;
};
constexpr size_t kMaxWatchQueue = 65536;

inline void close_conn(Conn& c) {
  std::error_code ignored;
  c.idle.cancel();
  c.sock.close(ignored);
}

// Closes the connection unless it makes progress within kControlIdle.
// Progress only stamps the time: the one timer re-arms itself when it finds
// the connection was active meanwhile, so a busy connection costs no timer
// work per request.
inline void wait_idle(const std::shared_ptr<Conn>& c) {
  c->idle_armed = true;
  c->idle.expires_at(c->last_active + kControlIdle);
  c->idle.async_wait([w = std::weak_ptr<Conn>(c)](std::error_code ec) {
    auto conn = w.lock();
    if (!conn) return;
    conn->idle_armed = false;
    if (ec || conn->watching) return;
    if (steady_clock::now() < conn->last_active + kControlIdle) return wait_idle(conn);
    std::error_code ignored;
    conn->sock.close(ignored);
  });
}

inline void arm_idle(const std::shared_ptr<Conn>& c) {
  if (c->watching) return;  // a watch is quiet for as long as nothing changes
  c->last_active = steady_clock::now();
  if (!c->idle_armed) wait_idle(c);
}

}  // namespace detail

using detail::Conn;
using detail::Watcher;
using detail::tcp;
using detail::udp;

struct Server::Impl {
  // Declared first so it is destroyed last: every I/O object below needs it.
  asio::io_context io{1};
  node::Config cfg;
  uint16_t requested_port = 0;
  udp::socket usock{io};
  tcp::acceptor acceptor{io};
  asio::steady_timer timer{io};       // the engine's one timer
  asio::steady_timer stop_timer{io};  // ends the loop after a leave
  asio::steady_timer accept_retry{io};
  tcp::acceptor metrics_acceptor{io};
  std::unique_ptr<asio::signal_set> signals;
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> watched;
  std::unique_ptr<node::Engine> engine;
  std::vector<crypto::ClusterKey> ctl_keys;  // control connections open with any of these
  LogSink log_sink;
  ChangeSink change_sink;
  std::array<uint8_t, 65536> rbuf{};
  udp::endpoint rfrom;
  uint64_t armed_us = 0;
  uint64_t last_tick_us = 0;
  bool stopping = false;
  std::shared_ptr<size_t> live_conns = std::make_shared<size_t>(0);
  std::vector<std::shared_ptr<Watcher>> watchers;

  // With cfg.data_dir: the data directory, group commit and snapshots.
  std::unique_ptr<Storage> storage;
  std::vector<node::LogLine> early_logs;

  // The clocks as this node's engine sees them: now() with the configured
  // (testing) offset applied to the wall clock.
  node::Now clock() const { return now(cfg.clock_offset_ms); }
  std::error_code bind_at(const Endpoint& at, const char** which);
  Status bind_with_fallback();
  void log(node::LogLevel level, std::string text);
  void send(const node::Datagram& d);
  void flush();  // packs the engine's gathered writes, then drain()
  void drain();  // carries out the engine's effects
  void schedule_flush();  // flush() after the handlers already queued
  bool flush_posted = false;
  void arm_timer(uint64_t deadline_us);
  void on_timer(std::error_code ec);
  void start_receive();
  void start_accept();
  void accepted(tcp::socket s);
  void read_header(std::shared_ptr<Conn> c);
  void respond(std::shared_ptr<Conn> c);
  wire::CtlResponse answer(const wire::Bytes& body, bool& close_after, bool& watch);
  // The ops kCtlOps gives to the shell (keys, watch), arguments checked.
  wire::CtlResponse answer_shell(wire::CtlOp op, const wire::CtlRequest& req, bool& watch);
  void start_watch(std::shared_ptr<Conn> c, const wire::CtlResponse& first, std::string prefix);
  void publish(const node::Change& ch);
  void pump(const std::shared_ptr<Watcher>& w);
  void watch(asio::posix::stream_descriptor* d, std::function<bool()> cb);
  void ready(asio::posix::stream_descriptor* d, std::function<bool()> cb);
  void stop();
  void compact();
  void write_response(std::shared_ptr<Conn> c, bool close_after);
  wire::Bytes frame_for(Conn& c, const wire::CtlResponse& r);
  // Metrics over HTTP (server_metrics.cc).
  Status open_metrics();
  void accept_metrics();
  std::string shell_metrics() const;
  wire::CtlResponse keys_op(const wire::CtlRequest& req);
};

}  // namespace meshkv::net
