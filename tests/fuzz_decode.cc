// libFuzzer target for the wire codec and the fragment reassembler.
//
//   mkdir /tmp/build-fuzz && cd /tmp/build-fuzz
//   cmake -DMESHKV_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ /work/main && make fuzz_decode
//   cp -r /work/main/tests/corpus/decode /tmp/corpus && ./fuzz_decode -max_total_time=60 /tmp/corpus
//
// Properties (a violation traps):
//   - decode never reads out of bounds (ASan) nor hits UB (UBSan);
//   - whatever decodes re-encodes to bytes that decode to the same envelope
//     (the version byte aside: the encoder always writes its own), and that
//     re-encoding is a fixed point;
//   - a decoded Fragment can be fed to a Reassembler; a single-piece one
//     reassembles to its payload, which is decoded in turn;
//   - the re-encoded message, fragmented at the smallest MTU and fed in a
//     data-dependent order with duplicates, reassembles to itself exactly once,
//     and no bytes stay buffered.
//
// Each input uses fresh state, so every crash reproduces from its input alone.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <variant>

#include "wire/codec.h"
#include "wire/fragment.h"

using namespace meshkv;
using namespace meshkv::wire;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Returns the decoded envelope if `data` decodes, after checking the round trip.
std::optional<Envelope> decode_checked(const uint8_t* data, size_t size) {
  auto first = decode(data, size);
  if (!first.ok()) return std::nullopt;
  const Bytes again = encode(*first);
  auto second = decode(again);
  check(second.ok());
  Envelope expect = *first;
  expect.version = kVersion;
  check(*second == expect);
  check(encode(*second) == again);
  return std::move(*first);
}

void reassemble(const Envelope& env) {
  const auto* f = std::get_if<Fragment>(&env.msg);
  if (!f) return;
  Reassembler ra(Reassembler::Limits{4, 4 * 1024 * 1024, 1000});
  auto whole = ra.add(env.sender, f->xfer_id, f->index, f->count, f->bytes, 1);
  if (whole) {
    check(f->count == 1 && Bytes(f->bytes.begin(), f->bytes.end()) == *whole);
    check(ra.buffered_bytes() == 0);
    decode_checked(whole->data(), whole->size());  // a message inside a message
  }
  ra.expire(5000);
  check(ra.partial() == 0 && ra.buffered_bytes() == 0);
}

void refragment(const Envelope& env, const uint8_t* data, size_t size) {
  const Bytes msg = encode(env);
  if (msg.size() > kMaxReassembledBytes) return;
  const auto pieces = fragment(env.sender, msg, kMinMtu);
  const size_t n = pieces.size();
  check(n >= 1);
  Reassembler ra;
  int completions = 0;
  uint64_t now = 1;
  auto feed = [&](size_t i) {
    auto d = decode(pieces[i]);
    check(d.ok() && pieces[i].size() <= kMinMtu);
    const auto& f = std::get<Fragment>(d->msg);
    check(f.count == n && f.index == i);
    if (auto whole = ra.add(d->sender, f.xfer_id, f.index, f.count, f.bytes, now++)) {
      ++completions;
      check(*whole == msg);
    }
  };
  // A rotation (and maybe reversal) of the pieces chosen by the input, with
  // duplicates of some, all before the piece that completes the message.
  const size_t start = data[0] % n;
  const bool reverse = data[size - 1] & 1;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = reverse ? (start + n - k) % n : (start + k) % n;
    feed(i);
    if (k + 1 < n && (data[k % size] & 2)) feed(i);
  }
  check(completions == 1);
  check(ra.partial() == 0 && ra.buffered_bytes() == 0 && ra.dropped() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto env = decode_checked(data, size);
  if (!env) return 0;
  reassemble(*env);
  refragment(*env, data, size);  // size >= kHeaderBytes here
  return 0;
}
