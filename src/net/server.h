// The Asio shell around one protocol engine: the only place (with
// control_client.cc) that touches sockets, clocks and signals.
//
// One io_context, one thread. Every call into the engine happens on that
// thread: datagrams, the engine's single timer, control connections, and the
// closures given to post() or watch_readable(). After each of these the shell
// flushes: it carries out the engine's effects (node/effects.h) — log
// records to the write-ahead log, datagrams to the socket, log lines and
// changes to the sinks — and re-arms the timer for the engine's next Timer.
// Local writes from the control requests of one loop iteration are packed
// into pushes together, at the flush that follows them.
//
// Control plane: TCP on the same IP and port number as the UDP mesh socket.
// A connection carries frames (wire/frame.h), each a CtlRequest answered by
// one CtlResponse frame. Oversized frames close the connection; undecodable
// ones get a kCtlBadRequest response, then close. A connection idle for
// kControlIdle is closed. Requests are routed by wire::kCtlOps: the engine
// answers most (node/control.h); the shell answers
//   keys  -> the engine's security(); only on a sealed node
//   watch -> {watching, prefix}, then a response with `more` set for every
//            change under the prefix: {time_ms, key, value, deleted, origin,
//            node, seq, hlc, local}
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/endpoint.h"
#include "common/status.h"
#include "node/config.h"
#include "node/engine.h"
#include "wire/messages.h"

namespace meshkv::net {

// A control connection that completes no request in this long is closed
// (bytes that do not finish a request are not progress).
inline constexpr std::chrono::seconds kControlIdle{30};
// Concurrent control connections. When all are taken, a new one evicts the
// oldest connection that has not authenticated, or else the one longest
// without a request if that was kControlEvictIdle ago (never a watch);
// otherwise it is closed at once.
inline constexpr size_t kMaxControlConnections = 256;
inline constexpr std::chrono::seconds kControlEvictIdle{5};
// Before the key handshake of a sealed node has completed, a connection may
// send one frame of at most kPreauthFrameBytes (the hello is 36) and must
// complete the handshake within kHandshakeDeadline, or it is closed. At most
// kMaxPreauthConnections connections wait for their handshake, at most
// kMaxPreauthPerAddress of them from one source address; beyond either, a
// new connection evicts the oldest such one (of its address, or of all).
inline constexpr size_t kPreauthFrameBytes = 4096;
inline constexpr std::chrono::seconds kHandshakeDeadline{2};
inline constexpr size_t kMaxPreauthConnections = 64;
inline constexpr size_t kMaxPreauthPerAddress = 32;
// When the configured port is taken and was not given explicitly, this many
// following ports are tried.
inline constexpr unsigned kPortAttempts = 100;

// Reads the clocks: monotonic microseconds and wall-clock milliseconds, the
// latter shifted by `wall_offset_ms` (a testing aid: a skewed clock; never
// below 1).
node::Now now(int64_t wall_offset_ms = 0);

class Server {
 public:
  using LogSink = std::function<void(const node::LogLine&)>;
  using ChangeSink = std::function<void(const node::Change&)>;

  // Binds the UDP socket and the TCP control listener, then builds the engine
  // with `cfg.listen` set to the bound address (so a default id follows a
  // moved port). A taken port moves on to the next free one unless
  // cfg.listen_explicit; an explicit taken port is an error naming it.
  // REQUIRES: cfg.validate().ok(), uid != 0.
  // With keys in `sec`, datagrams and control connections are sealed.
  static Result<std::unique_ptr<Server>> open(node::Config cfg, uint64_t uid, uint64_t seed,
                                              node::Security sec = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, and the port that was asked for (differs when moved).
  Endpoint address() const;
  uint16_t requested_port() const;

  // Sinks run on the loop thread, after each event. Unset sinks discard.
  void set_log_sink(LogSink sink);
  void set_change_sink(ChangeSink sink);

  // Joins cfg.join, handles SIGINT/SIGTERM/SIGHUP as stop(), and runs the
  // loop until stop() completes. Returns once the loop has ended.
  Status run();

  // Leaves the mesh gracefully: announces the leave, flushes, and ends the
  // loop ~100 ms later so the leave datagrams go out. Idempotent.
  // REQUIRES: called on the loop thread (use post() from elsewhere).
  void stop();
  bool stopping() const;

  // Runs `fn` on the loop thread, then flushes. Thread-safe.
  void post(std::function<void()> fn);

  // Calls `on_ready` on the loop thread each time `fd` is readable, for as
  // long as it returns true. `fd` stays owned by the caller. Used for stdin.
  // REQUIRES: called before or during run(), on the loop thread once running.
  Status watch_readable(int fd, std::function<bool()> on_ready);

  // Executes a control request against the engine and flushes, exactly as a
  // control connection would; the shell's own ops (keys, watch) are refused
  // with kCtlBadRequest. REQUIRES: called on the loop thread.
  wire::CtlResponse control(const wire::CtlRequest& req);
  // The same for a request that may be answered later (a write that waits,
  // a quorum read: node/control.h): `done` runs with the answer, at once or
  // from the loop once the engine has it.
  void control(const wire::CtlRequest& req, std::function<void(const wire::CtlResponse&)> done);

  // The engine. REQUIRES: used on the loop thread only.
  node::Engine& engine();

  // Packs the engine's gathered writes into pushes, then carries out its
  // effects: logs and syncs, sends, feeds the sinks, re-arms the timer.
  // REQUIRES: called on the loop thread.
  void flush();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshkv::net
