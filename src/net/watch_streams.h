// Internal to src/net: change streams for `meshkv watch`. A control
// connection that asked to watch a prefix gets a response with `more` set
// for every change under it: {time_ms, key, value, deleted, origin, node,
// seq, hlc, local}.
//
// Bounded per client: frames queue per stream and are written one at a
// time; a client kMaxWatchQueue frames behind is cut off with a final
// kCtlUnavailable frame rather than growing the node's memory.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "net/control_conn.h"
#include "node/engine.h"
#include "wire/messages.h"

namespace meshkv::net {

inline constexpr size_t kMaxWatchQueue = 65536;

class WatchStreams {
 public:
  // REQUIRES: `engine` outlives this object.
  explicit WatchStreams(const node::Engine& engine) : engine_(engine) {}
  WatchStreams(const WatchStreams&) = delete;
  WatchStreams& operator=(const WatchStreams&) = delete;

  // Turns `c` into a stream of changes under `prefix`, opened by `first`
  // (whose req_id every later frame carries). The connection reads no more
  // requests; it closes when the client does, or when a write fails.
  void start(std::shared_ptr<Conn> c, const wire::CtlResponse& first, std::string prefix);

  // Queues `ch` to every stream whose prefix it falls under.
  void publish(const node::Change& ch);

  // Whether no stream was started (publish() would do nothing).
  bool empty() const { return streams_.empty(); }

 private:
  struct Stream;
  void pump(const std::shared_ptr<Stream>& w);

  const node::Engine& engine_;
  std::vector<std::shared_ptr<Stream>> streams_;
};

}  // namespace meshkv::net
