// Seeds of the simulator tests: a test runs seeds base .. base+count-1;
// MESHKV_SIM_SEED=<seed> replays one, MESHKV_SIM_SEEDS=<n> runs n of them,
// MESHKV_SIM_BASE=<seed> starts them there instead (fresh histories).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace meshkv::testing {

inline constexpr uint64_t kSec = 1'000'000;  // simulated microseconds

inline std::vector<uint64_t> seeds(uint64_t base, uint64_t count) {
  if (const char* s = std::getenv("MESHKV_SIM_SEED")) return {std::strtoull(s, nullptr, 10)};
  if (const char* n = std::getenv("MESHKV_SIM_SEEDS")) count = std::strtoull(n, nullptr, 10);
  if (const char* b = std::getenv("MESHKV_SIM_BASE")) base = std::strtoull(b, nullptr, 10);
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < count; ++i) out.push_back(base + i);
  return out;
}

}  // namespace meshkv::testing
