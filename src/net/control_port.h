// Internal to src/net: the control plane's TCP side — the listener, the
// connections it accepts, and their frames.
//
// Each connection reads frames (wire/frame.h) and answers each with one
// response frame, in order. On a sealed node (ControlKeys::sealed()) the
// first frame must be a client hello naming a key the node holds; every
// later frame is opened with the session it sets up. What a request means
// is not the port's business: it hands the plain body to Hooks::answer and
// writes back what that returns. A response is held back while the storage
// has a sync pending, and written only if that sync succeeds (otherwise the
// connection closes unanswered), so no write is acknowledged before it is
// on disk. A frame whose header announces more than wire::kMaxFrameBytes is
// answered with kCtlBadRequest ("request too large: N bytes, the limit is
// M"), its body read and discarded so that the client, still sending, gets
// to read the answer, and the connection closed; one that completes no
// request for kControlIdle is closed.
//
// Connections that have not authenticated cannot crowd out those that have,
// nor cost memory (net/server.h has the figures): on a sealed node the first
// frame may be only kPreauthFrameBytes (a larger one is refused with
// "permission denied" after reading its header) and the handshake must be
// done within kHandshakeDeadline; at most kMaxPreauthConnections wait for
// it, kMaxPreauthPerAddress per source address, and a new connection beyond
// either cap evicts the oldest of them. When kMaxControlConnections are open,
// a new one evicts the oldest unauthenticated connection, else the one
// longest without a request if that was kControlEvictIdle ago, else it is
// closed at once. On an unsealed node a connection counts as authenticated
// once a whole request arrived, and only the total cap applies.
//
// Everything runs on the io_context's one thread.
#pragma once

#include <asio.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "net/control_conn.h"
#include "net/control_keys.h"
#include "net/storage.h"
#include "net/watch_streams.h"
#include "node/engine.h"
#include "wire/messages.h"

namespace meshkv::net {

class ControlPort {
 public:
  // What the server makes of one request.
  struct Reply {
    wire::CtlResponse resp;
    bool close_after = false;  // close the connection once `resp` is written
    bool watch = false;        // `resp` opens a watch stream on `prefix` in its body
    // Not 0: the engine answers later (node/control.h); `resp` is unused and
    // the connection waits for complete(deferred, ...).
    uint64_t deferred = 0;
  };
  struct Hooks {
    // Answers the plain body of one request frame. Called once per frame,
    // in order; after it returns, the storage's sync_pending() tells whether
    // the request appended writes whose sync the response must wait for.
    std::function<Reply(const wire::Bytes& body)> answer;
    // A client failed the handshake or sent a frame its session refused.
    std::function<void()> refused;
    std::function<void(node::LogLevel, std::string)> log;
    // A connection closed by the caps above (counted).
    std::function<void(node::ControlLimit)> limited;
  };

  // REQUIRES: `io` outlives the port.
  explicit ControlPort(asio::io_context& io);
  ControlPort(const ControlPort&) = delete;
  ControlPort& operator=(const ControlPort&) = delete;

  // Opens the listener at `at` (address reuse on, so a restarted node takes
  // its port back past TIME_WAIT). On error the listener stays closed.
  std::error_code listen(const asio::ip::tcp::endpoint& at);

  // Starts accepting. Responses are framed as from `node_uid`.
  // REQUIRES: listen() succeeded; `keys`, `storage` (may be null: no data
  // directory) and `watches` outlive the port's connections.
  void start(uint64_t node_uid, const ControlKeys& keys, Storage* storage, WatchStreams& watches,
             Hooks hooks);

  // Closes the listener; open connections carry on. Idempotent.
  void close();

  // The answer to a deferred request: written to its connection (after the
  // pending sync, as any answer), which then reads its next request. An
  // unknown id (the connection closed meanwhile) is ignored.
  void complete(uint64_t id, wire::CtlResponse resp);

  // Open control connections, watch streams included.
  size_t live() const { return table_->live(); }

 private:
  void accept();
  void accepted(asio::ip::tcp::socket s);
  // Makes room for a new connection from `from`; false if there is none.
  bool admit(const asio::ip::address& from);
  void evict(Conn* c);
  void read(std::shared_ptr<Conn> c);
  void respond(std::shared_ptr<Conn> c);
  // The answer to a frame over the limit: written, then the rest of the
  // frame (`left` more bytes) discarded before the connection closes.
  void refuse_too_large(std::shared_ptr<Conn> c, uint64_t announced);
  void discard(std::shared_ptr<Conn> c, uint64_t left);
  // The sealed handshake; false when `c` was answered or closed instead.
  bool open_frame(const std::shared_ptr<Conn>& c);
  void write(std::shared_ptr<Conn> c, bool close_after);
  // Frames `resp` for `c` and writes it once the storage's pending sync
  // (if any) succeeded.
  void send_response(std::shared_ptr<Conn> c, const wire::CtlResponse& resp, bool close_after);
  // Whether the next request is already read whole (pipelined behind the
  // one being answered).
  bool next_buffered(const Conn& c) const;

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  // Shared with every connection, which outlives the port in teardown.
  std::shared_ptr<ConnTable> table_ = std::make_shared<ConnTable>();
  bool closed_ = false;
  uint64_t uid_ = 0;
  const ControlKeys* keys_ = nullptr;
  Storage* storage_ = nullptr;
  WatchStreams* watches_ = nullptr;
  Hooks hooks_;
  // Connections whose request the engine answers later, by its id. Bounded
  // by the engine's own caps on waits and reads (node/consistency.h), and
  // held until their deadline at most: nothing else keeps them open.
  std::map<uint64_t, std::shared_ptr<Conn>> deferred_;
  // Answers that came while their request was still being handled (a
  // quorum read a node alone meets is answered at once, before respond()
  // learns its id): respond() sends them. At most the one request's.
  std::map<uint64_t, wire::CtlResponse> early_;
};

}  // namespace meshkv::net
