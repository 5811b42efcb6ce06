#include "node/transport.h"

#include <algorithm>

#include "common/crc32c.h"
#include "wire/codec.h"

namespace meshkv::node {

namespace {
constexpr uint64_t kMs = 1000;
constexpr uint64_t kExpireEveryUs = 5000 * kMs;

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}
}  // namespace

wire::Bytes with_checksum(const wire::Bytes& message) {
  wire::Bytes out;
  out.reserve(message.size() + kChecksumBytes);
  out = message;
  const uint32_t c = crc32c(message.data(), message.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(c >> (8 * i)));
  return out;
}

Transport::Transport(const Config& cfg, size_t wire_mtu, uint64_t self_uid, const Now& now,
                     std::mt19937_64& rng, Timers& timers, Sealing& sealing,
                     std::function<std::string(const Endpoint&)> name_at, LogFn log)
    : cfg_(cfg),
      wire_mtu_(wire_mtu),
      self_uid_(self_uid),
      now_(now),
      rng_(rng),
      timers_(timers),
      sealing_(sealing),
      name_at_(std::move(name_at)),
      log_(std::move(log)),
      next_expire_us_(now.mono_us + kExpireEveryUs) {
  faults_.drop = cfg.loss;
  timers_.set(TimerKind::kFragments, 0, next_expire_us_);
}

// ---- sending -------------------------------------------------------------------

void Transport::send(const Endpoint& to, wire::Message msg) {
  // Introductions may be sealed before we know the receiver's identity; a
  // Join goes with our Hello, so the answer can be sealed for us.
  const bool intro = std::holds_alternative<wire::Hello>(msg) || std::holds_alternative<wire::Join>(msg);
  if (sealing_.enabled() && std::holds_alternative<wire::Join>(msg)) send(to, sealing_.hello(true));
  const auto type = static_cast<size_t>(wire::type_of(msg));
  wire::Bytes b = wire::encode(wire::Envelope{wire::kVersion, self_uid_, std::move(msg)});
  ++counters_.sent_by_type[type];
  counters_.sent_bytes_by_type[type] += b.size();
  if (b.size() <= cfg_.mtu) {
    send_datagram(to, b, intro);
    return;
  }
  for (const auto& f : wire::fragment(self_uid_, b, cfg_.mtu)) send_datagram(to, f, false);
}

std::vector<wire::Bytes> Transport::encode(wire::Message msg, size_t copies) {
  const auto type = static_cast<size_t>(wire::type_of(msg));
  wire::Bytes b = wire::encode(wire::Envelope{wire::kVersion, self_uid_, std::move(msg)});
  counters_.sent_by_type[type] += copies;
  counters_.sent_bytes_by_type[type] += b.size() * copies;
  if (b.size() <= cfg_.mtu) return {std::move(b)};
  return wire::fragment(self_uid_, b, cfg_.mtu);
}

void Transport::send_encoded(const Endpoint& to, const wire::Bytes& payload) {
  send_datagram(to, payload, false);
}

void Transport::send_datagram(const Endpoint& to, const wire::Bytes& payload, bool unbound_ok) {
  Datagram d{to, {}};
  if (sealing_.enabled()) {
    sealing_.seal(to, payload, unbound_ok, d.bytes);
    if (d.bytes.empty()) return;
  } else {
    d.bytes = with_checksum(payload);
  }
  ++counters_.datagrams_sent;
  counters_.bytes_sent += d.bytes.size();
  sent_.push_back(std::move(d));
}

void Transport::release(Outbox& out) {
  std::vector<Datagram> sent = std::exchange(sent_, {});
  if (!faults_.active() && delayed_.empty()) {
    for (auto& d : sent) out.send(std::move(d));
    return;
  }
  std::vector<Datagram> ready;
  for (auto& d : sent) {
    if (faults_.active()) {
      fault_out(std::move(d), ready);
    } else {
      ready.push_back(std::move(d));
    }
  }
  while (!delayed_.empty() && delayed_.begin()->first <= now_.mono_us) {
    ready.push_back(std::move(delayed_.begin()->second));
    delayed_.erase(delayed_.begin());
  }
  arm_delayed();
  for (auto& d : ready) out.send(std::move(d));
}

void Transport::arm_delayed() {
  if (delayed_.empty() && delayed_in_.empty()) return timers_.cancel(TimerKind::kDelayed, 0);
  uint64_t at = ~uint64_t{0};
  if (!delayed_.empty()) at = delayed_.begin()->first;
  if (!delayed_in_.empty()) at = std::min(at, delayed_in_.begin()->first);
  timers_.set(TimerKind::kDelayed, 0, at);
}

std::vector<Transport::Held> Transport::take_due_in() {
  std::vector<Held> due;
  while (!delayed_in_.empty() && delayed_in_.begin()->first <= now_.mono_us) {
    due.push_back(std::move(delayed_in_.begin()->second));
    delayed_in_.erase(delayed_in_.begin());
  }
  if (!due.empty()) arm_delayed();
  return due;
}

std::optional<wire::Envelope> Transport::receive_held(const Held& d) {
  return open_datagram(d.from, d.bytes.data(), d.bytes.size());
}

bool Transport::held_in(const Endpoint& from, const uint8_t* data, size_t n) {
  if (faults_.dup == 0 && faults_.delay_ms == 0 && faults_.jitter_ms == 0) return false;
  if (!faults_.applies_in() || !faults_cover(name_at_(from))) return false;
  std::uniform_real_distribution<double> u(0, 1);
  const int copies = u(rng_) < faults_.dup ? 2 : 1;
  counters_.injected_dups += static_cast<uint64_t>(copies - 1);
  bool now_too = false;
  for (int c = 0; c < copies; ++c) {
    const uint64_t delay_us = (faults_.delay_ms + (faults_.jitter_ms ? rng_() % faults_.jitter_ms : 0)) * kMs;
    if (delay_us == 0 && !now_too) {
      now_too = true;  // this copy is handled now
      continue;
    }
    if (delay_us > 0) ++counters_.injected_delays;
    delayed_in_.emplace(now_.mono_us + delay_us, Held{from, wire::Bytes(data, data + n)});
  }
  arm_delayed();
  return !now_too;
}

// ---- receiving -----------------------------------------------------------------

std::optional<wire::Envelope> Transport::receive(const Endpoint& from, const uint8_t* data, size_t n) {
  ++counters_.datagrams_received;
  counters_.bytes_received += n;
  wire::Bytes corrupted;
  if (faults_.active()) {
    if (faulted_in(from, data, n, corrupted)) {
      if (corrupted.empty()) return std::nullopt;
      data = corrupted.data();
    }
    if (held_in(from, data, n)) return std::nullopt;
  }
  return open_datagram(from, data, n);
}

std::optional<wire::Envelope> Transport::open_datagram(const Endpoint& from, const uint8_t* data, size_t n) {
  if (n > wire_mtu_) {
    ++counters_.malformed;  // nobody in this mesh sends these
    return std::nullopt;
  }
  const size_t wire_bytes = n;
  wire::Bytes inner;
  if (sealing_.enabled()) {
    if (!sealing_.open(from, data, n, inner)) return std::nullopt;
    data = inner.data();
    n = inner.size();
  } else if (!checked(data, n)) {
    if (Sealing::looks_sealed(data, n)) {
      sealing_.log_refusal(from, "sealed, and this node is not (start it with the mesh's --key-file)");
    }
    return std::nullopt;
  }
  auto env = wire::decode(data, n);
  if (!env.ok()) {
    ++counters_.malformed;
    log_(LogLevel::kDebug, "malformed datagram from " + from.to_string() + ": " + env.status().to_string());
    return std::nullopt;
  }
  const auto type = static_cast<size_t>(wire::type_of(env->msg));
  ++counters_.received_by_type[type];
  counters_.received_bytes_by_type[type] += wire_bytes;
  return std::move(*env);
}

// An unsealed datagram: the message, `n` shortened to it, if its checksum holds.
bool Transport::checked(const uint8_t* data, size_t& n) {
  if (n < kChecksumBytes) {
    ++counters_.malformed;
    return false;
  }
  n -= kChecksumBytes;
  const uint32_t want = static_cast<uint32_t>(data[n]) | static_cast<uint32_t>(data[n + 1]) << 8 |
                        static_cast<uint32_t>(data[n + 2]) << 16 | static_cast<uint32_t>(data[n + 3]) << 24;
  if (crc32c(data, n) != want) {
    ++counters_.bad_checksum;
    return false;
  }
  return true;
}

std::optional<wire::Envelope> Transport::reassemble(uint64_t sender, const wire::Fragment& f) {
  // The reassembler counts in ms, as tick() expires it: a partial message
  // whose pieces stop for its timeout is dropped, not only evicted by the
  // count and byte budgets.
  auto whole = reassembler_.add(sender, f.xfer_id, f.index, f.count, f.bytes, now_.mono_us / kMs);
  if (!whole) return std::nullopt;
  auto inner = wire::decode(*whole);
  if (!inner.ok() || std::holds_alternative<wire::Fragment>(inner->msg) || inner->sender != sender) {
    ++counters_.malformed;
    return std::nullopt;
  }
  return std::move(*inner);
}

void Transport::tick() {
  const uint64_t t = now_.mono_us;
  if (t < next_expire_us_) return;
  next_expire_us_ = t + kExpireEveryUs;
  timers_.set(TimerKind::kFragments, 0, next_expire_us_);
  reassembler_.expire(t / kMs);
}

// ---- fault injection -----------------------------------------------------------

Status Transport::set_faults(Faults f) {
  if (Status st = f.validate(); !st.ok()) return st;
  faults_ = std::move(f);
  return Status::Ok();
}

bool Transport::faults_cover(const std::string& name) const {
  return faults_.peers.empty() || contains(faults_.peers, name);
}

// Whether an injected fault took the datagram: dropped (`corrupted` stays
// empty), or damaged (`corrupted` holds the damaged copy).
bool Transport::faulted_in(const Endpoint& from, const uint8_t* data, size_t n, wire::Bytes& corrupted) {
  const std::string name = name_at_(from);
  const bool covered = faults_.applies_in() && faults_cover(name);
  std::uniform_real_distribution<double> u(0, 1);
  if ((!name.empty() && contains(faults_.partition, name)) || (covered && u(rng_) < faults_.drop)) {
    ++counters_.injected_drops;
    return true;
  }
  if (covered && n > 0 && u(rng_) < faults_.corrupt) {
    ++counters_.injected_corrupts;
    corrupted.assign(data, data + n);
    corrupted[rng_() % n] ^= static_cast<uint8_t>(1u << (rng_() % 8));
    return true;
  }
  return false;
}

void Transport::fault_out(Datagram d, std::vector<Datagram>& ready) {
  const std::string name = name_at_(d.to);
  if (!name.empty() && contains(faults_.partition, name)) {
    ++counters_.injected_drops;
    return;
  }
  if (!faults_.applies_out() || !faults_cover(name)) {
    ready.push_back(std::move(d));
    return;
  }
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng_) < faults_.drop) {
    ++counters_.injected_drops;
    return;
  }
  if (!d.bytes.empty() && u(rng_) < faults_.corrupt) {
    ++counters_.injected_corrupts;
    d.bytes[rng_() % d.bytes.size()] ^= static_cast<uint8_t>(1u << (rng_() % 8));
  }
  const int copies = u(rng_) < faults_.dup ? 2 : 1;
  counters_.injected_dups += static_cast<uint64_t>(copies - 1);
  for (int c = 0; c < copies; ++c) {
    const uint64_t delay_us = (faults_.delay_ms + (faults_.jitter_ms ? rng_() % faults_.jitter_ms : 0)) * kMs;
    if (delay_us == 0) {
      ready.push_back(d);
    } else {
      ++counters_.injected_delays;
      delayed_.emplace(now_.mono_us + delay_us, d);
    }
  }
}

}  // namespace meshkv::node
