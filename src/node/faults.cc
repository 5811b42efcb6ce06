#include "node/faults.h"

namespace meshkv::node {

namespace {
bool probability(double p) { return p >= 0 && p <= 1; }

// Probabilities travel as integer parts per million: Values carry no floats.
constexpr double kPpm = 1'000'000.0;
}  // namespace

Status Faults::validate() const {
  if (!probability(drop)) return Status::Invalid("drop: a probability between 0 and 1");
  if (!probability(dup)) return Status::Invalid("dup: a probability between 0 and 1");
  if (!probability(corrupt)) return Status::Invalid("corrupt: a probability between 0 and 1");
  if (delay_ms > 60'000 || jitter_ms > 60'000) return Status::Invalid("delay: at most 60000 ms");
  if (direction != "out" && direction != "in" && direction != "both") {
    return Status::Invalid("direction: one of out, in, both");
  }
  return Status::Ok();
}

wire::Value Faults::to_value() const {
  wire::Value v = wire::Value::object();
  v.set("drop_ppm", static_cast<int64_t>(drop * kPpm));
  v.set("dup_ppm", static_cast<int64_t>(dup * kPpm));
  v.set("corrupt_ppm", static_cast<int64_t>(corrupt * kPpm));
  v.set("delay_ms", delay_ms);
  v.set("jitter_ms", jitter_ms);
  v.set("direction", direction);
  wire::Value p = wire::Value::list(), q = wire::Value::list();
  for (const auto& s : peers) p.push(s);
  for (const auto& s : partition) q.push(s);
  v.set("peers", std::move(p));
  v.set("partition", std::move(q));
  return v;
}

Status Faults::merge_from(const wire::Value& v) {
  auto ppm = [&](const char* name, double& out) {
    const wire::Value& x = v.get(name);
    if (x.is_int()) out = static_cast<double>(x.as_int()) / kPpm;
  };
  ppm("drop_ppm", drop);
  ppm("dup_ppm", dup);
  ppm("corrupt_ppm", corrupt);
  if (v.get("delay_ms").is_int()) delay_ms = static_cast<uint64_t>(v.get("delay_ms").as_int());
  if (v.get("jitter_ms").is_int()) jitter_ms = static_cast<uint64_t>(v.get("jitter_ms").as_int());
  if (v.get("direction").is_string()) direction = v.get("direction").as_string();
  auto names = [&](const char* name, std::vector<std::string>& out) {
    const wire::Value& x = v.get(name);
    if (!x.is_list()) return;
    out.clear();
    for (const auto& s : x.as_list()) out.push_back(s.as_string());
  };
  names("peers", peers);
  names("partition", partition);
  return validate();
}

}  // namespace meshkv::node
