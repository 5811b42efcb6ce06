// The codec group of meshkv_bench: encoding and decoding delta chunks and
// pushes, in MB/s of datagram bytes.
#include <algorithm>
#include <cstdio>
#include <variant>

#include "bench/micro.h"
#include "wire/codec.h"
#include "wire/messages.h"

namespace meshkv::bench::micro {

namespace {

// A chunk message of `n` entries with 16-byte keys and `value_bytes` values.
wire::Envelope make_chunk_msg(size_t n, size_t value_bytes, uint64_t salt) {
  crdt::Chunk c;
  c.origin = kOrigins[salt % 4];
  c.from = 100'000 + salt * n;
  c.to = c.from + n;
  char key[32];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "user:%011llu",
                  static_cast<unsigned long long>(salt * 1000 + i));  // 16 bytes
    crdt::KeyedEntry ke;
    ke.key = key;
    ke.entry.hlc = crdt::Hlc::make(kBaseMs + salt * 10 + i, i);
    ke.entry.dot = crdt::Dot{c.origin, c.from + i + 1};
    ke.entry.value = fixed_value(value_bytes, salt + i);
    c.entries.push_back(std::move(ke));
  }
  return wire::Envelope{wire::kVersion, 0xABCDEF0123456789, wire::ChunkMsg{std::move(c)}};
}

wire::Envelope make_push_msg(uint64_t salt) {
  wire::Envelope env = make_chunk_msg(1, 32, salt);
  crdt::Chunk c = std::move(std::get<wire::ChunkMsg>(env.msg).chunk);
  c.from = c.to = 0;  // pushes carry loose dots
  env.msg = wire::Push{salt + 1, std::move(c)};
  return env;
}

uint64_t sum_of(const wire::Envelope& env) {
  uint64_t h = env.sender;
  const crdt::Chunk* c = nullptr;
  if (const auto* m = std::get_if<wire::ChunkMsg>(&env.msg)) c = &m->chunk;
  if (const auto* m = std::get_if<wire::Push>(&env.msg)) c = &m->chunk;
  if (c) {
    h += c->to + c->entries.size();
    for (const auto& ke : c->entries) h += ke.key.size() + ke.entry.value.size() + ke.entry.dot.seq;
  }
  return h;
}

// Times `reps` passes of encoding `msgs` and of decoding `enc` (the same
// messages, encoded), each `per_run` times over.
void time_codec(const std::vector<wire::Envelope>& msgs, const std::vector<wire::Bytes>& enc, size_t per_run,
                int reps, std::vector<double>& t_enc, std::vector<double>& t_dec) {
  wire::Bytes buf;
  buf.reserve(64 * 1024);
  for (int rep = 0; rep < reps; ++rep) {
    uint64_t sum = 0;
    auto t0 = Clock::now();
    for (size_t p = 0; p < per_run; ++p) {
      for (const auto& m : msgs) {
        buf.clear();
        wire::encode_to(m, buf);
        sum += buf.size() + buf[buf.size() / 2];
      }
    }
    t_enc.push_back(seconds_since(t0));
    consume(sum);
    sum = 0;
    t0 = Clock::now();
    for (size_t p = 0; p < per_run; ++p) {
      for (const auto& b : enc) {
        auto d = wire::decode(b);
        sum += d.ok() ? sum_of(*d) : 1;
      }
    }
    t_dec.push_back(seconds_since(t0));
    consume(sum);
  }
}

// Encodes and decodes `msgs` round-robin until about `total_bytes` went through.
void bench_codec_kind(const char* what, const std::vector<wire::Envelope>& msgs, size_t total_bytes, int reps,
                      double decode_aim) {
  std::vector<wire::Bytes> enc;
  size_t set_bytes = 0;
  bool all_ok = true;
  for (const auto& m : msgs) {
    enc.push_back(wire::encode(m));
    set_bytes += enc.back().size();
    auto d = wire::decode(enc.back());
    if (!d.ok() || *d != m) all_ok = false;
  }
  const size_t avg = set_bytes / msgs.size();
  const size_t per_run = std::max<size_t>(1, total_bytes / set_bytes);  // passes over the set
  const double bytes = static_cast<double>(per_run * set_bytes);
  const double count = static_cast<double>(per_run * msgs.size());
  std::vector<double> t_enc, t_dec;
  time_codec(msgs, enc, per_run, reps, t_enc, t_dec);
  const std::string shape = std::string(what) + " (" + std::to_string(avg) + " B avg)";
  const Stats se = stats_of(t_enc), sd = stats_of(t_dec);
  auto per_msg = [&](const Stats& s) {
    char b[64];
    std::snprintf(b, sizeof b, "%.0f ns/msg", s.median / count * 1e9);
    return std::string(b);
  };
  const std::string round_trip = all_ok ? "" : ", ROUND TRIP MISMATCH";
  add_rate("encode " + shape, "MB/s", bytes, se, 1e6, 0, per_msg(se) + round_trip);
  add_rate("decode " + shape, "MB/s", bytes, sd, 1e6, decode_aim, per_msg(sd) + round_trip);
}

}  // namespace

void bench_codec(int reps) {
  std::printf("codec: encoding and decoding...\n");
  std::fflush(stdout);
  std::vector<wire::Envelope> chunks, pushes;
  for (uint64_t i = 0; i < 64; ++i) chunks.push_back(make_chunk_msg(20, 32, i + 1));
  for (uint64_t i = 0; i < 256; ++i) pushes.push_back(make_push_msg(i + 1));
  bench_codec_kind("ChunkMsg 20 entries", chunks, 100u << 20, reps, 300);
  bench_codec_kind("Push 1 entry", pushes, 50u << 20, reps, 0);
}

}  // namespace meshkv::bench::micro
