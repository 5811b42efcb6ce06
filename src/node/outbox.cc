#include "node/outbox.h"

#include <algorithm>

namespace meshkv::node {

namespace {
constexpr size_t kMaxLogLines = 4096;
constexpr size_t kMaxChanges = 65536;
}  // namespace

void Outbox::log(LogLevel level, std::string text) {
  if (logs_ >= kMaxLogLines) return;
  ++logs_;
  queue_.emplace_back(LogLine{level, std::move(text)});
}

void Outbox::change(Change c) {
  if (changes_.size() >= kMaxChanges) {
    // Dropped where it is; take() leaves it out.
    dropped_.push_back(changes_.front());
    changes_.pop_front();
    ++changes_dropped_;
  }
  changes_.push_back(queue_.size());
  queue_.emplace_back(std::move(c));
}

void Outbox::compact() {
  if (std::exchange(compaction_, true)) return;
  queue_.emplace_back(CompactionRequest{});
}

std::vector<Effect> Outbox::take(Timer timer) {
  std::vector<Effect> out = std::exchange(queue_, {});
  if (!dropped_.empty()) {
    // dropped_ is ascending: changes are dropped oldest first.
    size_t next = 0, kept = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      if (next < dropped_.size() && dropped_[next] == i) {
        ++next;
        continue;
      }
      out[kept++] = std::move(out[i]);
    }
    out.resize(kept);
    dropped_.clear();
  }
  out.emplace_back(timer);
  changes_.clear();
  logs_ = 0;
  compaction_ = false;
  return out;
}

}  // namespace meshkv::node
