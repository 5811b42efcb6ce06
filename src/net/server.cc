#include "net/server.h"
#include "net/server_impl.h"

#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <asio.hpp>
#include <csignal>
#include <optional>
#include <sstream>
#include <vector>

#include "node/control.h"
#include "wire/codec.h"

namespace meshkv::net {

using asio::ip::tcp;
using asio::ip::udp;
using std::chrono::steady_clock;
using namespace detail;

node::Now now(int64_t wall_offset_ms) {
  using namespace std::chrono;
  node::Now n;
  n.mono_us = static_cast<uint64_t>(
      duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
  const int64_t wall =
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() + wall_offset_ms;
  n.wall_ms = static_cast<uint64_t>(std::max<int64_t>(wall, 1));
  return n;
}

namespace {
asio::ip::address to_asio(const Endpoint& e) {
  if (e.family == 6) {
    asio::ip::address_v6::bytes_type b;
    std::copy(e.ip.begin(), e.ip.end(), b.begin());
    return asio::ip::address_v6(b);
  }
  return asio::ip::address_v4({e.ip[0], e.ip[1], e.ip[2], e.ip[3]});
}

Endpoint from_asio(const asio::ip::address& a, uint16_t port) {
  Endpoint e;
  e.port = port;
  if (a.is_v6() && !a.to_v6().is_v4_mapped()) {
    e.family = 6;
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), e.ip.begin());
    return e;
  }
  const auto b = a.is_v6() ? asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes()
                           : a.to_v4().to_bytes();
  std::copy(b.begin(), b.end(), e.ip.begin());
  return e;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "SIGHUP";
  }
}

bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}
}  // namespace

// ---- binding ------------------------------------------------------------------

std::error_code Server::Impl::bind_at(const Endpoint& at, const char** which) {
  std::error_code ec;
  const asio::ip::address addr = to_asio(at);
  *which = "UDP";
  usock.open(addr.is_v4() ? udp::v4() : udp::v6(), ec);
  if (!ec) usock.bind(udp::endpoint(addr, at.port), ec);
  if (!ec) {
    *which = "TCP";
    ec = ctl.listen(tcp::endpoint(addr, at.port));
  }
  if (ec) {
    std::error_code ignored;
    usock.close(ignored);
  }
  return ec;
}

Status Server::Impl::bind_with_fallback() {
  Endpoint at = cfg.listen;
  const unsigned attempts = cfg.listen_explicit ? 1 : kPortAttempts;
  for (unsigned i = 0; i < attempts && at.port != 0; ++i, ++at.port) {
    const char* which = "";
    std::error_code ec = bind_at(at, &which);
    if (!ec) {
      cfg.listen = at;
      std::error_code ignored;
      usock.non_blocking(true, ignored);
      usock.set_option(asio::socket_base::receive_buffer_size(kSocketBufferBytes), ignored);
      usock.set_option(asio::socket_base::send_buffer_size(kSocketBufferBytes), ignored);
      return Status::Ok();
    }
    if (ec != asio::error::address_in_use || cfg.listen_explicit) {
      std::string why = ec.message();
      if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
      if (ec == asio::error::address_in_use) why += " (is another node running there?)";
      return Status::Io("cannot listen on " + at.to_string() + " (" + which + "): " + why);
    }
  }
  return Status::Io("cannot listen: ports " + std::to_string(cfg.listen.port) + " to " +
                    std::to_string(cfg.listen.port + attempts - 1) + " are all taken");
}

// ---- the engine's I/O -----------------------------------------------------------

void Server::Impl::log(node::LogLevel level, std::string text) {
  if (log_sink) {
    log_sink(node::LogLine{level, std::move(text)});
  } else {
    early_logs.push_back({level, std::move(text)});  // before a sink exists (start-up)
  }
}

void Server::Impl::send(const node::Datagram& d) {
  // UDP is allowed to lose datagrams; a full buffer or an unreachable peer is
  // just loss, which the protocol repairs.
  std::error_code ignored;
  usock.send_to(asio::buffer(d.bytes), udp::endpoint(to_asio(d.to), d.to.port), 0, ignored);
}

void Server::Impl::send_queued() {
  const int fd = usock.native_handle();
  size_t done = 0;
  while (done < tx.size()) {
    const size_t n = std::min(kSendBatch, tx.size() - done);
    for (size_t i = 0; i < n; ++i) {
      const node::Datagram& d = tx[done + i];
      const udp::endpoint to(to_asio(d.to), d.to.port);
      std::memcpy(&saddrs[i], to.data(), to.size());
      siov[i].iov_base = const_cast<uint8_t*>(d.bytes.data());
      siov[i].iov_len = d.bytes.size();
      shdrs[i].msg_hdr = {};
      shdrs[i].msg_hdr.msg_name = &saddrs[i];
      shdrs[i].msg_hdr.msg_namelen = static_cast<socklen_t>(to.size());
      shdrs[i].msg_hdr.msg_iov = &siov[i];
      shdrs[i].msg_hdr.msg_iovlen = 1;
    }
    const int sent = ::sendmmsg(fd, shdrs.data(), static_cast<unsigned>(n), 0);
    // sendmmsg stops at the first datagram it cannot send (a full buffer, an
    // unreachable address); asked again, it fails on that one, which is then
    // skipped: loss, as send() treats it.
    done += sent > 0 ? static_cast<size_t>(sent) : 1;
  }
  tx.clear();
}

void Server::Impl::schedule_flush() {
  if (flush_posted) return;
  flush_posted = true;
  asio::post(io, [this] {
    flush_posted = false;
    flush();
  });
}

void Server::Impl::flush() {
  engine->pack_writes();
  drain();
}

void Server::Impl::drain() {
  std::vector<node::Effect> effects = engine->take_effects();
  // The batch's log records go first: its datagrams (and the responses to
  // its requests) then wait for the sync their local writes need.
  if (storage) storage->append(effects);
  bool compaction = false;
  for (node::Effect& e : effects) {
    std::visit(node::Overloaded{
                   [&](node::Datagram& d) {
                     if (storage && storage->sync_pending()) {
                       // A failed sync withdrew the writes the datagram may carry.
                       storage->after_sync([this, d = std::move(d)](const Status& synced) {
                         if (synced.ok()) send(d);
                       });
                     } else {
                       tx.push_back(std::move(d));
                     }
                   },
                   [](node::LogOp&) {},  // appended above
                   [&](node::CompactionRequest) { compaction = true; },
                   [&](node::Change& c) {
                     if (change_sink) change_sink(c);
                     if (!watches->empty()) watches->publish(c);
                   },
                   [](node::MemberEvent&) {},  // the engine logs them as well
                   [&](node::LogLine& l) {
                     if (log_sink) log_sink(l);
                   },
                   [&](node::Timer t) { arm_timer(t.at_us); },
                   [&](node::Reply& r) {
                     send_queued();  // what the engine sent before answering leaves first
                     if (auto w = prompt_waits.find(r.id); w != prompt_waits.end()) {
                       auto done = std::move(w->second);
                       prompt_waits.erase(w);
                       // The prompt acknowledges only durable writes.
                       if (storage) {
                         if (Status synced = storage->sync_now(); !synced.ok()) {
                           r.resp = wire::ctl_error(r.resp.req_id, wire::kCtlUnavailable, synced.message());
                         }
                       }
                       done(r.resp);
                     } else {
                       ctl.complete(r.id, std::move(r.resp));
                     }
                   },
               },
               e);
  }
  send_queued();
  if (compaction) compact();  // after the datagrams have left
}

void Server::Impl::compact() {
  // The log still holds what was collected or dropped: a snapshot replaces
  // it. Then the allocator returns freed pages to the system.
  if (storage) storage->compact();
  ::malloc_trim(0);
  churn_bytes = churn_at_check = 0;
}

void Server::Impl::note_churn(size_t n) {
  churn_bytes += n;
  if (trim_armed || churn_bytes < kTrimAfterBytes) return;
  trim_armed = true;
  churn_at_check = churn_bytes;
  trim_timer.expires_after(std::chrono::milliseconds(250));
  trim_timer.async_wait([this](std::error_code ec) {
    if (!ec) check_trim();
  });
}

void Server::Impl::check_trim() {
  if (churn_bytes - churn_at_check >= kQuietBytes) {  // still busy: look again later
    churn_at_check = churn_bytes;
    trim_timer.expires_after(std::chrono::milliseconds(250));
    trim_timer.async_wait([this](std::error_code ec) {
      if (!ec) check_trim();
    });
    return;
  }
  ::malloc_trim(0);
  churn_bytes = churn_at_check = 0;
  trim_armed = false;
}

void Server::Impl::arm_timer(uint64_t deadline_us) {
  const uint64_t t = now().mono_us;
  uint64_t d = deadline_us;
  if (d <= last_tick_us) d = last_tick_us + kMinRetickUs;
  d = std::min(d, t + kMaxTimerUs);
  if (d == armed_us) return;  // the pending wait already covers it
  armed_us = d;
  timer.expires_at(steady_clock::time_point(std::chrono::microseconds(d)));
  timer.async_wait([this](std::error_code ec) { on_timer(ec); });
}

void Server::Impl::on_timer(std::error_code ec) {
  if (ec) return;  // re-armed or shut down
  const node::Now n = clock();
  armed_us = 0;
  last_tick_us = n.mono_us;
  engine->tick(n);
  flush();
}

// One datagram by an ordinary (speculative) receive, which also wakes the
// loop; then the rest in batches.
void Server::Impl::start_receive() {
  usock.async_receive_from(asio::buffer(rbufs.get(), kRecvSlotBytes), rfrom, [this](std::error_code ec, size_t n) {
    if (ec == asio::error::operation_aborted || !usock.is_open()) return;
    if (!ec) {
      engine->handle_datagram(from_asio(rfrom.address(), rfrom.port()), rbufs.get(), n, clock());
      note_churn(n);
    }
    receive_more();
  });
}

void Server::Impl::receive_more() {
  const int fd = usock.native_handle();
  bool more = false;
  for (int round = 0; round < kRecvRounds; ++round) {
    for (size_t i = 0; i < kRecvBatch; ++i) {
      riov[i].iov_base = rbufs.get() + i * kRecvSlotBytes;
      riov[i].iov_len = kRecvSlotBytes;
      rhdrs[i].msg_hdr = {};
      rhdrs[i].msg_hdr.msg_name = &raddrs[i];
      rhdrs[i].msg_hdr.msg_namelen = sizeof(raddrs[i]);
      rhdrs[i].msg_hdr.msg_iov = &riov[i];
      rhdrs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, rhdrs.data(), kRecvBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) break;  // drained (or an error, which is loss)
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      udp::endpoint from;
      const size_t len = std::min<size_t>(rhdrs[i].msg_hdr.msg_namelen, from.capacity());
      std::memcpy(from.data(), &raddrs[i], len);
      from.resize(len);
      engine->handle_datagram(from_asio(from.address(), from.port()), rbufs.get() + i * kRecvSlotBytes,
                              rhdrs[i].msg_len, clock());
      note_churn(rhdrs[i].msg_len);
    }
    more = static_cast<size_t>(n) == kRecvBatch;
    if (!more) break;
  }
  flush();
  if (!more) return start_receive();
  // The reactor is edge-triggered: what is left unread raises no new edge,
  // so reading goes on after the other work already queued.
  asio::post(io, [this] {
    if (usock.is_open()) receive_more();
  });
}

// ---- control ops ------------------------------------------------------------------

void Server::Impl::start_control() {
  ControlPort::Hooks hooks;
  hooks.answer = [this](const wire::Bytes& body) { return answer(body); };
  hooks.refused = [this] { engine->note_control_refused(); };
  hooks.limited = [this](node::ControlLimit why) { engine->note_control_limit(why); };
  hooks.log = [this](node::LogLevel l, std::string t) { log(l, std::move(t)); };
  ctl.start(engine->uid(), *ctl_keys, storage.get(), *watches, std::move(hooks));
}

ControlPort::Reply Server::Impl::answer(const wire::Bytes& body) {
  note_churn(body.size());
  auto env = wire::decode(body);
  if (!env.ok()) {
    return {wire::ctl_error(0, wire::kCtlBadRequest, "malformed control frame: " + env.status().message()), true};
  }
  const auto* req = std::get_if<wire::CtlRequest>(&env->msg);
  if (req == nullptr) {
    return {wire::ctl_error(0, wire::kCtlBadRequest, std::string("expected a control request, got ") +
                                                         wire::type_name(wire::type_of(env->msg))),
            true};
  }
  if (stopping) return {wire::ctl_error(req->req_id, wire::kCtlUnavailable, "node is shutting down")};
  ControlPort::Reply r;
  const std::optional<wire::CtlOp> op = wire::find_op(req->op);
  if (op && wire::spec(*op).answerer == wire::Answerer::kShell) {
    r.resp = answer_shell(*op, *req, r.watch);
    return r;
  }
  r.resp = node::handle_control(*engine, *req, clock(), &r.deferred);
  // The write is logged now, so that its response waits for the sync. Its
  // push goes out once the requests already received have been handled
  // too: one datagram then carries all their writes to each peer.
  drain();
  schedule_flush();
  return r;
}

wire::CtlResponse Server::Impl::answer_shell(wire::CtlOp op, const wire::CtlRequest& req, bool& watch) {
  if (auto checked = wire::check_request(req.op, req.args); !checked.ok()) {
    return wire::ctl_error(req.req_id, wire::kCtlBadRequest, checked.status().message());
  }
  switch (op) {
    case wire::CtlOp::kKeys: {
      wire::CtlResponse resp = ctl_keys->op(*engine, req);
      if (resp.code == wire::kCtlOk) flush();  // new keys take effect at once
      return resp;
    }
    case wire::CtlOp::kWatch: {
      watch = true;
      wire::CtlResponse resp;
      resp.req_id = req.req_id;
      resp.more = true;
      resp.body = wire::Value::object();
      resp.body.set("watching", req.args.get("prefix").as_string());
      resp.body.set("prefix", req.args.get("prefix").as_string());
      return resp;
    }
    default: break;
  }
  return wire::ctl_error(req.req_id, wire::kCtlBadRequest,
                         std::string(wire::op_name(op)) + ": answered by the engine, not the shell");
}

std::string Server::Impl::metrics_body() const {
  std::ostringstream w;
  w << engine->metrics(now());
  w << "# HELP meshkv_control_connections Open control connections.\n"
       "# TYPE meshkv_control_connections gauge\n"
    << "meshkv_control_connections " << ctl.live() << "\n";
  if (storage) w << storage->metrics();
  return w.str();
}

// ---- lifecycle ------------------------------------------------------------------

void Server::Impl::watch(asio::posix::stream_descriptor* d, std::function<bool()> cb) {
  d->async_wait(asio::posix::stream_descriptor::wait_read,
                [this, d, cb = std::move(cb)](std::error_code ec) mutable {
                  if (!ec) ready(d, std::move(cb));
                });
}

void Server::Impl::ready(asio::posix::stream_descriptor* d, std::function<bool()> cb) {
  const bool more = cb();
  flush();
  if (!more || stopping) return;
  // The reactor is edge-triggered: input the callback left unread raises no
  // new edge, so the callback runs again (after other pending work) instead.
  if (readable_now(d->native_handle())) {
    asio::post(io, [this, d, cb = std::move(cb)]() mutable { ready(d, std::move(cb)); });
    return;
  }
  watch(d, std::move(cb));
}

void Server::Impl::stop() {
  if (stopping) return;
  stopping = true;
  engine->leave(clock());
  flush();
  if (storage) storage->shut_down();
  ctl.close();
  metrics.close();
  std::error_code ignored;
  if (signals) signals->cancel(ignored);
  stop_timer.expires_after(kLeaveGrace);
  stop_timer.async_wait([this](std::error_code) { io.stop(); });
}

// ---- Server -------------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::open(node::Config cfg, uint64_t uid, uint64_t seed,
                                             node::Security sec) {
  auto impl = std::make_unique<Impl>();
  impl->ctl_keys = std::make_unique<ControlKeys>(sec.keys);
  impl->requested_port = cfg.listen.port;
  impl->cfg = std::move(cfg);
  if (Status s = impl->bind_with_fallback(); !s.ok()) return s;
  if (Status s = impl->metrics.open(impl->cfg.metrics); !s.ok()) return s;
  Impl& i = *impl;
  if (!i.cfg.data_dir.empty()) {
    // Before the engine: the directory may name the node (cfg.id).
    auto storage = Storage::open(i.io, i.cfg, [&i](node::LogLevel l, std::string t) { i.log(l, std::move(t)); });
    if (!storage.ok()) return storage.status();
    i.storage = std::move(*storage);
  }
  i.engine = std::make_unique<node::Engine>(i.cfg, uid, i.cfg.listen, seed, i.clock());
  i.engine->secure(std::move(sec));
  if (i.storage) {
    if (Status s = i.storage->load(*i.engine, i.clock()); !s.ok()) return s;
  }
  i.watches = std::make_unique<WatchStreams>(*i.engine);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Endpoint Server::address() const { return impl_->cfg.listen; }
uint16_t Server::requested_port() const { return impl_->requested_port; }
void Server::set_log_sink(LogSink sink) {
  impl_->log_sink = std::move(sink);
  if (!impl_->log_sink) return;
  for (auto& l : std::exchange(impl_->early_logs, {})) impl_->log_sink(l);
}
void Server::set_change_sink(ChangeSink sink) { impl_->change_sink = std::move(sink); }
node::Engine& Server::engine() { return *impl_->engine; }
bool Server::stopping() const { return impl_->stopping; }
void Server::stop() { impl_->stop(); }
void Server::flush() { impl_->flush(); }

Status Server::run() {
  Impl& s = *impl_;
  s.signals = std::make_unique<asio::signal_set>(s.io, SIGINT, SIGTERM, SIGHUP);
  s.signals->async_wait([&s](std::error_code ec, int sig) {
    if (ec) return;
    s.log(node::LogLevel::kInfo,
          std::string("received ") + signal_name(sig) + "; leaving the mesh");
    s.stop();
  });
  s.engine->gather_writes(true);  // writes leave at flush(): together per loop iteration
  if (!s.cfg.join.empty()) s.engine->join(s.cfg.join, s.clock());
  if (s.storage) s.storage->start([&s] { return s.clock(); }, [&s] { s.flush(); });
  s.flush();
  s.start_receive();
  s.start_control();
  s.metrics.start([&s] { return s.metrics_body(); }, [&s] { return s.engine->readiness(s.clock()); });
  s.io.run();
  return Status::Ok();
}

void Server::post(std::function<void()> fn) {
  asio::post(impl_->io, [this, fn = std::move(fn)] {
    fn();
    impl_->flush();
  });
}

Status Server::watch_readable(int fd, std::function<bool()> on_ready) {
  // A duplicate, because a stream_descriptor closes what it holds.
  const int dup_fd = ::dup(fd);
  if (dup_fd < 0) return Status::Io("cannot watch descriptor " + std::to_string(fd));
  std::error_code ec;
  auto d = std::make_unique<asio::posix::stream_descriptor>(impl_->io);
  d->assign(dup_fd, ec);
  if (ec) {
    ::close(dup_fd);
    return Status::Io("cannot watch descriptor " + std::to_string(fd) + ": " + ec.message());
  }
  impl_->watch(d.get(), std::move(on_ready));
  impl_->watched.push_back(std::move(d));
  return Status::Ok();
}

void Server::control(const wire::CtlRequest& req, std::function<void(const wire::CtlResponse&)> done) {
  uint64_t deferred = 0;
  wire::CtlResponse r = node::handle_control(*impl_->engine, req, impl_->clock(), &deferred);
  if (deferred != 0) impl_->prompt_waits[deferred] = std::move(done);
  impl_->flush();
  if (deferred != 0) return;
  if (impl_->storage) {  // the prompt acknowledges only durable writes
    if (Status synced = impl_->storage->sync_now(); !synced.ok()) {
      r = wire::ctl_error(req.req_id, wire::kCtlUnavailable, synced.message());
    }
  }
  done(r);
}

wire::CtlResponse Server::control(const wire::CtlRequest& req) {
  wire::CtlResponse r = node::handle_control(*impl_->engine, req, impl_->clock());
  impl_->flush();
  if (impl_->storage) {  // the prompt acknowledges only durable writes
    if (Status synced = impl_->storage->sync_now(); !synced.ok()) {
      r = wire::ctl_error(req.req_id, wire::kCtlUnavailable, synced.message());
    }
  }
  return r;
}

}  // namespace meshkv::net
