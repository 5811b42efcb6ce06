// Change streams for `meshkv watch`: bounded per client.
#include "net/server_impl.h"
#include "node/control.h"

namespace meshkv::net {

using namespace detail;

// ---- watch ----------------------------------------------------------------------

void Server::Impl::start_watch(std::shared_ptr<Conn> c, const wire::CtlResponse& first,
                               std::string prefix) {
  c->watching = true;
  c->idle.cancel();
  auto w = std::make_shared<Watcher>();
  w->conn = c;
  w->req_id = first.req_id;
  w->prefix = std::move(prefix);
  w->queue.push_back(frame_for(*c, first));
  watchers.push_back(w);
  pump(w);
  // The client sends nothing more on a watch; any read completion (its close,
  // or stray bytes) ends the watch.
  asio::async_read(c->sock, asio::buffer(c->hdr), [w](std::error_code, size_t) {
    w->closed = true;
    close_conn(*w->conn);
  });
}

void Server::Impl::publish(const node::Change& ch) {
  wire::CtlResponse r;
  r.more = true;
  r.body = wire::Value::object();
  r.body.set("time_ms", now().wall_ms);
  r.body.set("key", ch.key);
  r.body.set("value", ch.entry.tombstone ? wire::Value(nullptr) : wire::Value(ch.entry.value));
  r.body.set("deleted", ch.entry.tombstone);
  r.body.set("origin", node::format_uid(ch.entry.dot.origin));
  r.body.set("node", engine->origin_name(ch.entry.dot.origin));
  r.body.set("seq", ch.entry.dot.seq);
  r.body.set("hlc", node::format_hlc(ch.entry.hlc));
  r.body.set("local", ch.local);
  std::erase_if(watchers, [](const auto& w) { return w->closed; });
  for (const auto& w : watchers) {
    if (ch.key.compare(0, w->prefix.size(), w->prefix) != 0) continue;
    if (w->queue.size() >= kMaxWatchQueue) {
      const wire::CtlResponse last = wire::ctl_error(w->req_id, wire::kCtlUnavailable,
                                                     "watch: the client fell too far behind; closing");
      w->queue.push_back(frame_for(*w->conn, last));
      w->closed = true;  // no more frames; the queue drains, then it closes
      pump(w);
      continue;
    }
    r.req_id = w->req_id;
    w->queue.push_back(frame_for(*w->conn, r));
    pump(w);
  }
}

void Server::Impl::pump(const std::shared_ptr<Watcher>& w) {
  if (w->writing) return;
  if (w->queue.empty()) {
    if (w->closed) close_conn(*w->conn);
    return;
  }
  w->writing = true;
  asio::async_write(w->conn->sock, asio::buffer(w->queue.front()),
                    [this, w](std::error_code ec, size_t) {
                      w->writing = false;
                      w->queue.pop_front();
                      if (ec) {
                        w->closed = true;
                        w->queue.clear();
                        close_conn(*w->conn);
                        return;
                      }
                      pump(w);
                    });
}

}  // namespace meshkv::net
