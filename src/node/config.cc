#include "node/config.h"

#include <algorithm>

#include "wire/fragment.h"

namespace meshkv::node {

namespace {
constexpr int64_t kMaxClockOffsetMs = 86'400'000;  // one day
constexpr uint64_t kDay = 86'400'000;
constexpr uint64_t kMaxReapAfterMs = 3650 * kDay;  // ten years: "never", in practice
}  // namespace

uint64_t Config::reap_after() const {
  return reap_after_ms.value_or(std::min(std::max(kDay, tombstone_grace_ms), kMaxReapAfterMs));
}

std::string Config::effective_id() const {
  if (!id.empty()) return id;
  std::string host = listen.to_string();
  auto colon = host.rfind(':');
  std::string name = host.substr(0, colon);
  name.erase(std::remove_if(name.begin(), name.end(), [](char c) { return c == '[' || c == ']'; }),
             name.end());
  std::replace(name.begin(), name.end(), ':', '.');
  return name + "-" + std::to_string(listen.port);
}

Status Config::validate() const {
  if (id.size() > 64) return Status::Invalid("id: at most 64 bytes");
  for (char c : id) {
    if (c <= ' ' || c == 0x7f) return Status::Invalid("id: no spaces or control characters");
  }
  if (mtu < wire::kMinMtu || mtu > 65000) {
    return Status::Invalid("mtu: must be between 576 and 65000 bytes");
  }
  if (gossip_interval_ms == 0 || gossip_interval_ms > 60'000) {
    return Status::Invalid("gossip_interval_ms: must be between 1 and 60000");
  }
  if (probe_interval_ms < 10 || probe_interval_ms > 60'000) {
    return Status::Invalid("probe_interval_ms: must be between 10 and 60000");
  }
  if (probe_timeout_ms == 0 || probe_timeout_ms >= probe_interval_ms) {
    return Status::Invalid("probe_timeout_ms: must be positive and below probe_interval_ms");
  }
  if (indirect_probes > 16) return Status::Invalid("indirect_probes: at most 16");
  if (suspicion_mult == 0 || suspicion_mult > 100) {
    return Status::Invalid("suspicion_mult: must be between 1 and 100");
  }
  if (anti_entropy_interval_ms < 10 || anti_entropy_interval_ms > 3'600'000) {
    return Status::Invalid("anti_entropy_interval_ms: must be between 10 and 3600000");
  }
  if (max_retransmits == 0 || max_retransmits > 100) {
    return Status::Invalid("max_retransmits: must be between 1 and 100");
  }
  if (sync != "always" && sync != "interval") return Status::Invalid("sync: always or interval");
  if (sync_interval_ms == 0 || sync_interval_ms > 60'000) {
    return Status::Invalid("sync_interval_ms: must be between 1 and 60000");
  }
  if (tombstone_grace_ms < 2000) return Status::Invalid("tombstone_grace_ms: at least 2000");
  if (reap_after_ms && *reap_after_ms < tombstone_grace_ms) {
    return Status::Invalid("reap_after_ms: " + std::to_string(*reap_after_ms) +
                           " is below the tombstone grace period (" + std::to_string(tombstone_grace_ms) +
                           " ms): a member reaped before the grace period could come back holding "
                           "values whose deletes the others have collected; give at least " +
                           std::to_string(tombstone_grace_ms));
  }
  if (reap_after_ms && *reap_after_ms > kMaxReapAfterMs) {
    return Status::Invalid("reap_after_ms: at most " + std::to_string(kMaxReapAfterMs) + " (ten years)");
  }
  if (snapshot_log_bytes < (1u << 20)) return Status::Invalid("snapshot_log_bytes: at least 1048576");
  if (clock_offset_ms < -kMaxClockOffsetMs || clock_offset_ms > kMaxClockOffsetMs) {
    return Status::Invalid("clock_offset_ms: must be between -86400000 and 86400000");
  }
  if (max_clock_offset_ms > static_cast<uint64_t>(kMaxClockOffsetMs)) {
    return Status::Invalid("max_clock_offset_ms: at most 86400000 (0 turns the guard off)");
  }
  if (!(loss >= 0 && loss <= 1)) return Status::Invalid("loss: a probability between 0 and 1");
  static const char* levels[] = {"debug", "info", "warn", "error"};
  if (std::find_if(std::begin(levels), std::end(levels),
                   [&](const char* l) { return log_level == l; }) == std::end(levels)) {
    return Status::Invalid("log_level: one of debug, info, warn, error");
  }
  if (listen.port == 0) return Status::Invalid("listen: a port is required");
  return Status::Ok();
}

}  // namespace meshkv::node
