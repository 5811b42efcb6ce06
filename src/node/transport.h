// Internal to src/node: the engine's datagram path. Outgoing, it encodes
// messages, counts them by type, fragments them to the MTU, seals them (or
// appends a checksum) and queues them, then applies injected faults. Incoming,
// it applies injected faults, checks the size, opens or checks, decodes and
// counts, and reassembles fragments. It owns the datagrams sent during the
// current input call, the injected faults and the datagrams they delay, the
// reassembler, and the datagram counters.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "node/config.h"
#include "node/effects.h"
#include "node/faults.h"
#include "node/outbox.h"
#include "node/sealing.h"
#include "node/sender.h"
#include "node/timers.h"
#include "wire/fragment.h"
#include "wire/messages.h"

namespace meshkv::node {

class Transport final : public Sender {
 public:
  struct Counters {
    std::array<uint64_t, 16> sent_by_type{}, sent_bytes_by_type{};
    std::array<uint64_t, 16> received_by_type{}, received_bytes_by_type{};
    uint64_t datagrams_sent = 0, datagrams_received = 0;
    uint64_t bytes_sent = 0, bytes_received = 0;
    uint64_t malformed = 0, bad_checksum = 0;
    uint64_t dropped = 0;  // decoded, but not for this port (control messages), or our own
    uint64_t injected_drops = 0, injected_dups = 0, injected_corrupts = 0, injected_delays = 0;
  };

  // `name_at` names the member at an address ("" if none): faults are
  // chosen by member name. `cfg.mtu` is what a message may take (the
  // engine lowers it when the mesh is sealed); `wire_mtu` bounds datagrams.
  Transport(const Config& cfg, size_t wire_mtu, uint64_t self_uid, const Now& now, std::mt19937_64& rng,
            Timers& timers, Sealing& sealing, std::function<std::string(const Endpoint&)> name_at,
            LogFn log);

  // ---- Sender ----
  void send(const Endpoint& to, wire::Message msg) override;
  std::vector<wire::Bytes> encode(wire::Message msg, size_t copies) override;
  void send_encoded(const Endpoint& to, const wire::Bytes& payload) override;

  // A datagram as received: the message in it, or nothing (dropped and
  // counted: injected loss, damage, a failed seal, a bad encoding).
  std::optional<wire::Envelope> receive(const Endpoint& from, const uint8_t* data, size_t n);
  // A datagram that injected incoming delay or duplication held back (see
  // receive), and those of them due now: each goes to receive_held().
  struct Held {
    Endpoint from;
    wire::Bytes bytes;
  };
  std::vector<Held> take_due_in();
  std::optional<wire::Envelope> receive_held(const Held& d);
  // A fragment: the whole message once every piece arrived.
  std::optional<wire::Envelope> reassemble(uint64_t sender, const wire::Fragment& f);
  // A decoded message that was refused before reaching a component.
  void note_dropped() { ++counters_.dropped; }

  // Hands `out` the datagrams sent since the last call, after injected
  // faults (drawn in the order they were sent), and the delayed ones now due.
  // The engine calls it at the end of each input call.
  void release(Outbox& out);
  // Expires partial messages.
  void tick();

  Status set_faults(Faults f);
  const Faults& faults() const { return faults_; }
  const Counters& counters() const { return counters_; }
  // Pieces refused, and partial messages evicted at the reassembler's
  // bounds (64 messages, 16 MiB) or expired.
  uint64_t fragments_dropped() const { return reassembler_.dropped(); }

 private:
  void send_datagram(const Endpoint& to, const wire::Bytes& payload, bool unbound_ok);
  bool checked(const uint8_t* data, size_t& n);
  bool faulted_in(const Endpoint& from, const uint8_t* data, size_t n, wire::Bytes& corrupted);
  // Injected incoming delay and duplication: copies of the datagram held in
  // delayed_in_; returns whether none is to be handled now.
  bool held_in(const Endpoint& from, const uint8_t* data, size_t n);
  // The datagram past injected faults: checked or unsealed, then decoded.
  std::optional<wire::Envelope> open_datagram(const Endpoint& from, const uint8_t* data, size_t n);
  void fault_out(Datagram d, std::vector<Datagram>& ready);
  bool faults_cover(const std::string& name) const;
  void arm_delayed();

  const Config& cfg_;
  const size_t wire_mtu_;
  const uint64_t self_uid_;
  const Now& now_;
  std::mt19937_64& rng_;
  Timers& timers_;
  Sealing& sealing_;
  std::function<std::string(const Endpoint&)> name_at_;
  LogFn log_;
  Counters counters_;
  std::vector<Datagram> sent_;  // during this input call, before faults
  Faults faults_;
  std::multimap<uint64_t, Datagram> delayed_;  // injected delay: release time -> datagram
  std::multimap<uint64_t, Held> delayed_in_;   // the same for datagrams received
  wire::Reassembler reassembler_;
  uint64_t next_expire_us_ = 0;
};

}  // namespace meshkv::node
