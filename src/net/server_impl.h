// Internal to src/net: the Asio shell's state, written only by server.cc
// (the UDP socket, the engine's timer, control op dispatch, lifecycle). The
// other concerns are components it wires together, each owning its state:
// ControlPort (control connections), Storage (the data directory, group
// commit), WatchStreams, MetricsHttp and ControlKeys.
#pragma once

#include <sys/socket.h>

#include <array>
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "net/control_keys.h"
#include "net/control_port.h"
#include "net/metrics_http.h"
#include "net/server.h"
#include "net/storage.h"
#include "net/watch_streams.h"
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
// Datagram I/O in batches (issue 19): one recvmmsg reads up to kRecvBatch
// datagrams, and the engine's datagrams leave kSendBatch per sendmmsg.
// Under load a node received a push, flushed, and sent its acknowledgement
// one system call each; now a wake-up handles what the socket holds (up to
// kRecvRounds batches, then other work gets a turn) and flushes once.
constexpr size_t kRecvBatch = 32;
constexpr size_t kRecvSlotBytes = 65536;  // the largest UDP payload
constexpr int kRecvRounds = 8;
constexpr size_t kSendBatch = 64;

}  // namespace detail

using detail::tcp;
using detail::udp;
using detail::kRecvBatch;
using detail::kRecvSlotBytes;
using detail::kRecvRounds;
using detail::kSendBatch;

struct Server::Impl {
  // Declared first so it is destroyed last: every I/O object below needs it.
  asio::io_context io{1};
  node::Config cfg;
  uint16_t requested_port = 0;
  udp::socket usock{io};
  ControlPort ctl{io};
  asio::steady_timer timer{io};       // the engine's one timer
  asio::steady_timer stop_timer{io};  // ends the loop after a leave
  asio::steady_timer trim_timer{io};  // see note_churn()
  MetricsHttp metrics{io};
  std::unique_ptr<asio::signal_set> signals;
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> watched;
  std::unique_ptr<node::Engine> engine;
  std::unique_ptr<ControlKeys> ctl_keys;
  LogSink log_sink;
  ChangeSink change_sink;
  // kRecvBatch slots of kRecvSlotBytes, not zeroed: only the pages the
  // kernel writes datagrams into become resident.
  std::unique_ptr<uint8_t[]> rbufs{new uint8_t[kRecvBatch * kRecvSlotBytes]};
  udp::endpoint rfrom;
  std::array<mmsghdr, kRecvBatch> rhdrs{};
  std::array<iovec, kRecvBatch> riov{};
  std::array<sockaddr_storage, kRecvBatch> raddrs{};
  // The engine's datagrams not sent yet, in order (send_queued).
  std::vector<node::Datagram> tx;
  std::array<mmsghdr, kSendBatch> shdrs{};
  std::array<iovec, kSendBatch> siov{};
  std::array<sockaddr_storage, kSendBatch> saddrs{};
  uint64_t armed_us = 0;
  uint64_t last_tick_us = 0;
  bool stopping = false;
  std::unique_ptr<WatchStreams> watches;  // built with the engine
  // Deferred answers the prompt waits for (Server::control), by the
  // engine's id; the others go to the control port.
  std::map<uint64_t, std::function<void(const wire::CtlResponse&)>> prompt_waits;

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
  void send_queued();  // sends `tx`, kSendBatch datagrams per sendmmsg
  void flush();  // packs the engine's gathered writes, then drain()
  void drain();  // carries out the engine's effects
  void schedule_flush();  // flush() after the handlers already queued
  bool flush_posted = false;
  void arm_timer(uint64_t deadline_us);
  void on_timer(std::error_code ec);
  void start_receive();
  void receive_more();  // reads the rest of what the socket holds in batches, then flushes once
  void start_control();
  // A control request's body to its response (ControlPort::Hooks::answer).
  ControlPort::Reply answer(const wire::Bytes& body);
  // The ops kCtlOps gives to the shell (keys, watch), arguments checked.
  wire::CtlResponse answer_shell(wire::CtlOp op, const wire::CtlRequest& req, bool& watch);
  void watch(asio::posix::stream_descriptor* d, std::function<bool()> cb);
  void ready(asio::posix::stream_descriptor* d, std::function<bool()> cb);
  void stop();
  void compact();
  // Bytes of requests and datagrams handled. Their decoding leaves freed
  // small blocks that glibc keeps mapped (a batch load of 1,000,000 keys:
  // 6-7 MB, scripts/bench_mem.sh); once kTrimAfterBytes have passed, the
  // allocator hands free pages back when a quarter-second check finds
  // under kQuietBytes more. (At 2 MiB, the last part of a batch load could
  // come in under it after a trim, and its garbage stayed: 4 of 9 loads.)
  static constexpr uint64_t kTrimAfterBytes = 256 << 10, kQuietBytes = 1 << 20;
  uint64_t churn_bytes = 0;       // since the last trim
  uint64_t churn_at_check = 0;    // churn_bytes at the last check
  bool trim_armed = false;
  void note_churn(size_t n);
  void check_trim();
  // What /metrics serves: the engine's figures, then the shell's.
  std::string metrics_body() const;
};

}  // namespace meshkv::net
