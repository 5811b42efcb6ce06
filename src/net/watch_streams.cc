#include "net/watch_streams.h"

#include <deque>

#include "node/control.h"

namespace meshkv::net {

// Invariant: at most one write per stream is in flight (`writing`), always
// of queue.front(), which therefore stays put until it completes. A closed
// stream takes no new frames; its queue drains, then its connection closes.
struct WatchStreams::Stream {
  std::shared_ptr<Conn> conn;
  uint64_t req_id = 0;
  std::string prefix;
  std::deque<wire::Bytes> queue;
  bool writing = false;
  bool closed = false;
};

void WatchStreams::start(std::shared_ptr<Conn> c, const wire::CtlResponse& first, std::string prefix) {
  auto w = std::make_shared<Stream>();
  w->conn = c;
  w->req_id = first.req_id;
  w->prefix = std::move(prefix);
  w->queue.push_back(c->frame(engine_.uid(), first));
  streams_.push_back(w);
  pump(w);
  // Any read completion (the client's close, or stray bytes) ends the watch.
  c->begin_watch([w] {
    w->closed = true;
    w->conn->close();
  });
}

void WatchStreams::publish(const node::Change& ch) {
  wire::CtlResponse r;
  r.more = true;
  r.body = wire::Value::object();
  r.body.set("time_ms", now().wall_ms);
  // A counter's parts and resets are shown as the counter they make up:
  // its key, its total now, and deleted once it reads as absent (a reset).
  std::string_view key = ch.key;
  // A set's add or remove is shown as the set: its key, the member as the
  // value, and deleted when the member is no longer in the set here.
  if (auto sk = crdt::parse_set_key(ch.key)) {
    key = sk->set;
    std::string member;
    if (sk->remove) {
      if (auto d = crdt::decode_remove(ch.entry.value)) member = std::string(d->member);
    } else if (auto d = crdt::decode_add(ch.entry.value)) {
      member = std::string(d->member);
    }
    r.body.set("key", std::string(key));
    r.body.set("value", member);
    r.body.set("deleted", !engine_.sismember(key, member, now().wall_ms));
    r.body.set("type", "set");
  } else if (auto ik = crdt::parse_internal_key(ch.key)) {
    key = ik->counter;
    const auto c = engine_.counter(key, now().wall_ms);
    r.body.set("key", std::string(key));
    r.body.set("value", c ? wire::Value(std::to_string(c->value)) : wire::Value(nullptr));
    r.body.set("deleted", !c.has_value());
    r.body.set("type", "counter");
  } else {
    r.body.set("key", ch.key);
    r.body.set("value", ch.entry.tombstone ? wire::Value(nullptr) : wire::Value(ch.entry.value));
    r.body.set("deleted", ch.entry.tombstone);
    r.body.set("type", "register");
  }
  r.body.set("origin", node::format_uid(ch.entry.dot.origin));
  r.body.set("node", engine_.origin_name(ch.entry.dot.origin));
  r.body.set("seq", ch.entry.dot.seq);
  r.body.set("hlc", node::format_hlc(ch.entry.hlc));
  r.body.set("local", ch.local);
  std::erase_if(streams_, [](const auto& w) { return w->closed; });
  for (const auto& w : streams_) {
    if (key.compare(0, w->prefix.size(), w->prefix) != 0) continue;
    if (w->queue.size() >= kMaxWatchQueue) {
      const wire::CtlResponse last = wire::ctl_error(w->req_id, wire::kCtlUnavailable,
                                                     "watch: the client fell too far behind; closing");
      w->queue.push_back(w->conn->frame(engine_.uid(), last));
      w->closed = true;
      pump(w);
      continue;
    }
    r.req_id = w->req_id;
    w->queue.push_back(w->conn->frame(engine_.uid(), r));
    pump(w);
  }
}

void WatchStreams::pump(const std::shared_ptr<Stream>& w) {
  if (w->writing) return;
  if (w->queue.empty()) {
    if (w->closed) w->conn->close();
    return;
  }
  w->writing = true;
  w->conn->write(w->queue.front(), [this, w](std::error_code ec) {
    w->writing = false;
    w->queue.pop_front();
    if (ec) {
      w->closed = true;
      w->queue.clear();
      w->conn->close();
      return;
    }
    pump(w);
  });
}

}  // namespace meshkv::net
