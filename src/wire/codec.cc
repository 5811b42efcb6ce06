#include "wire/codec.h"

#include <string>
#include <type_traits>

namespace meshkv::wire {

namespace {

constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxOpBytes = 64;
constexpr size_t kMaxErrorBytes = 4096;
constexpr int kMaxValueDepth = 32;
// Upper bound on a member update's size; also its minimum is > 1 byte.
constexpr size_t kMinMemberBytes = 1 + 8 + 1 + 4 + 2 + 1 + 1;
constexpr size_t kMinEntryBytes = 2 + 1 + 1 + 1;

// ---- encoding ---------------------------------------------------------------

void put_endpoint(Writer& w, const Endpoint& e) {
  w.u8(e.family);
  w.raw(e.ip.data(), e.family == 6 ? 16 : 4);
  w.u16(e.port);
}

void put_member(Writer& w, const MemberUpdate& m) {
  w.bytes(m.name);
  w.u64(m.uid);
  put_endpoint(w, m.addr);
  w.varint(m.incarnation);
  w.u8(static_cast<uint8_t>(m.state));
}

void put_members(Writer& w, const std::vector<MemberUpdate>& ms) {
  w.varint(ms.size());
  for (const auto& m : ms) put_member(w, m);
}

// Entry flags: tombstone, vouched, unordered; and, only in the extended
// message types, a time to live follows the seq.
constexpr uint8_t kEntryTtl = 8;

bool extended(const crdt::Chunk& c) {
  for (const auto& ke : c.entries) {
    if (ke.entry.ttl_ms != 0) return true;
  }
  return false;
}

void put_chunk(Writer& w, const crdt::Chunk& c) {
  w.u64(c.origin);
  w.varint(c.from);
  w.varint(c.to);
  w.varint(c.entries.size());
  for (const auto& ke : c.entries) {
    w.bytes(ke.key);
    w.u8(static_cast<uint8_t>((ke.entry.tombstone ? 1 : 0) | (ke.entry.vouched ? 2 : 0) |
                              (ke.entry.unordered ? 4 : 0) | (ke.entry.ttl_ms != 0 ? kEntryTtl : 0)));
    w.varint(ke.entry.hlc.raw);
    w.varint(ke.entry.dot.seq);
    if (ke.entry.ttl_ms != 0) w.varint(ke.entry.ttl_ms);
    if (!ke.entry.tombstone) w.bytes(ke.entry.value);
  }
}

void put_value(Writer& w, const Value& v) {
  if (v.is_null()) {
    w.u8(0);
  } else if (v.is_bool()) {
    w.u8(v.as_bool() ? 2 : 1);
  } else if (v.is_int()) {
    w.u8(3);
    int64_t x = v.as_int();
    w.varint((static_cast<uint64_t>(x) << 1) ^ static_cast<uint64_t>(x >> 63));  // zigzag
  } else if (v.is_string()) {
    w.u8(4);
    w.bytes(v.as_string());
  } else if (v.is_list()) {
    w.u8(5);
    w.varint(v.as_list().size());
    for (const Value& x : v.as_list()) put_value(w, x);
  } else {
    w.u8(6);
    w.varint(v.as_object().size());
    for (const auto& [k, x] : v.as_object()) {
      w.bytes(k);
      put_value(w, x);
    }
  }
}

// Extension fields of Push and ChunkMsg: the sender's reconciled horizon.
constexpr uint64_t kEntriesExtReconciled = 1;
void put_reconciled(Writer& w, uint64_t reconciled) {
  if (reconciled == 0) return;
  Bytes ext;
  Writer x(ext);
  x.varint(reconciled);
  w.varint(kEntriesExtReconciled);
  w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
}
void put_body(Writer& w, const Push& m) {
  w.varint(m.msg_seq);
  put_chunk(w, m.chunk);
  put_reconciled(w, m.reconciled);
}
void put_body(Writer& w, const Ack& m) { w.varint(m.msg_seq); }
void put_body(Writer& w, const ReadReq& m) {
  w.varint(m.read_id);
  w.u8(m.vector ? 1 : 0);
  w.bytes(m.key);
}
// ReadResp flags: an entry follows (a chunk of one), a vector follows.
constexpr uint8_t kReadEntry = 1;
constexpr uint8_t kReadVector = 2;
void put_body(Writer& w, const ReadResp& m) {
  w.varint(m.read_id);
  const bool entry = !m.chunk.entries.empty();
  w.u8(static_cast<uint8_t>((entry ? kReadEntry : 0) | (m.vector ? kReadVector : 0)));
  if (entry) put_chunk(w, m.chunk);
  if (m.vector) {
    w.varint(m.vv.items().size());
    for (const auto& [o, s] : m.vv.items()) {
      w.u64(o);
      w.varint(s);
    }
  }
}
// Digest flags.
constexpr uint8_t kDigestReply = 1, kDigestCounter = 2, kDigestResyncing = 4, kDigestSummary = 8,
                  kDigestWholeRange = 16,  // origin_lo and origin_hi are left out: 0 .. max
                  kDigestAskBack = 32,
                  kDigestGc = 64,  // the collection fields follow the vector
                  kDigestExclusions = 128;  // and then the exclusions
// Digest extension fields (tags below 64; tests/wire_test.cc treats the rest as unknown).
// 1-3 and 5 in full digests, 4 and 5 in summaries (version 3).
constexpr uint64_t kDigestExtRetired = 1, kDigestExtRoster = 2, kDigestExtAsks = 3, kDigestExtSum = 4,
                   kDigestExtSummaryGc = 5;
void put_body(Writer& w, const Digest& m) {
  const bool whole = m.origin_lo == 0 && m.origin_hi == ~uint64_t{0};
  const bool excl = !m.summary && !m.exclusions.empty();
  const bool gc = !m.summary && (m.horizon != 0 || m.reconciled != 0 || m.excluded || excl);
  w.u8(static_cast<uint8_t>((m.reply ? kDigestReply : 0) | (m.counter ? kDigestCounter : 0) |
                            (m.resyncing ? kDigestResyncing : 0) |
                            (m.summary ? kDigestSummary : 0) | (whole ? kDigestWholeRange : 0) |
                            (m.ask_back ? kDigestAskBack : 0) | (gc ? kDigestGc : 0) | (excl ? kDigestExclusions : 0)));
  if (m.summary) {
    w.u64(m.context_hash);
    if (m.vv_sum != 0) {
      Bytes ext;
      Writer x(ext);
      x.varint(m.vv_sum);
      w.varint(kDigestExtSum);
      w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
    }
    if (m.gc_stated) {
      Bytes ext;
      Writer x(ext);
      x.varint(m.horizon);
      x.varint(m.reconciled);
      x.varint(m.mesh_size);
      w.varint(kDigestExtSummaryGc);
      w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
    }
    return;
  }
  if (!whole) {
    w.u64(m.origin_lo);
    w.u64(m.origin_hi);
  }
  w.varint(m.vv.items().size());
  for (const auto& [o, s] : m.vv.items()) {
    w.u64(o);
    w.varint(s);
  }
  if (gc) {
    w.varint(m.horizon);
    w.varint(m.reconciled);
    w.u8(m.excluded ? 1 : 0);
  }
  if (excl) {
    w.varint(m.exclusions.size());
    for (const auto& [name, h] : m.exclusions) {
      w.bytes(name);
      w.varint(h);
    }
  }
  if (m.retired_count != 0 || m.retired_hash != 0 || !m.retired.empty()) {  // all that decode() reads back
    Bytes ext;
    Writer x(ext);
    x.varint(m.retired_count);
    x.u64(m.retired_hash);
    x.varint(m.retired.size());
    for (const auto& [o, f] : m.retired) {
      x.u64(o);
      x.varint(f);
    }
    w.varint(kDigestExtRetired);
    w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
  }
  if (m.mesh_size != 0) {
    Bytes ext;
    Writer x(ext);
    x.varint(m.mesh_size);
    w.varint(kDigestExtRoster);
    w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
  }
  if (!m.quarantine_asks.empty()) {
    Bytes ext;
    Writer x(ext);
    x.varint(m.quarantine_asks.size());
    for (const crdt::Dot& d : m.quarantine_asks) {
      x.u64(d.origin);
      x.varint(d.seq);
    }
    w.varint(kDigestExtAsks);
    w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
  }
  if (m.reads_summary_gc) {
    w.varint(kDigestExtSummaryGc);
    w.varint(0);  // no payload
  }
}
void put_body(Writer& w, const ChunkMsg& m) {
  put_chunk(w, m.chunk);
  put_reconciled(w, m.reconciled);
}
// Ping flags: the target is spelled out only when named (not 0).
constexpr uint8_t kPingTarget = 1;
// Ping extension fields (tags below 64, as for digests).
constexpr uint64_t kPingExtDigest = 1;
void put_body(Writer& w, const Ping& m) {
  w.varint(m.probe_seq);
  w.u8(m.target_uid != 0 ? kPingTarget : 0);
  if (m.target_uid != 0) w.u64(m.target_uid);
  put_members(w, m.updates);
  if (m.digest) {
    Bytes ext;
    Writer x(ext);
    put_body(x, *m.digest);
    w.varint(kPingExtDigest);
    w.bytes(std::string_view(reinterpret_cast<const char*>(ext.data()), ext.size()));
  }
}
void put_body(Writer& w, const PingReq& m) {
  w.varint(m.probe_seq);
  w.u64(m.target_uid);
  put_endpoint(w, m.target_addr);
  put_members(w, m.updates);
}
// PingAck flags. The answerer is the datagram's sender unless relayed.
constexpr uint8_t kAckRelayed = 1, kAckWall = 2;
void put_ping_ack(Writer& w, const PingAck& m, uint64_t sender) {
  const bool relayed = m.target_uid != sender;
  w.varint(m.probe_seq);
  w.u8(static_cast<uint8_t>((relayed ? kAckRelayed : 0) | (m.wall_ms ? kAckWall : 0)));
  if (relayed) w.u64(m.target_uid);
  if (m.wall_ms) w.varint(m.wall_ms);
  put_members(w, m.updates);
}
void put_body(Writer& w, const Fragment& m) {
  w.u64(m.xfer_id);
  w.varint(m.index);
  w.varint(m.count);
  w.bytes(m.bytes);
}
void put_body(Writer& w, const Join& m) { put_member(w, m.self); }
void put_body(Writer& w, const Members& m) { put_members(w, m.updates); }
void put_body(Writer& w, const Hello& m) {
  put_member(w, m.self);
  w.bytes(m.public_key);
  w.bytes(m.signature);
  w.u8(m.want_reply ? 1 : 0);
}
void put_body(Writer& w, const CtlRequest& m) {
  w.varint(m.req_id);
  w.bytes(m.op);
  put_value(w, m.args);
}
void put_body(Writer& w, const CtlResponse& m) {
  w.varint(m.req_id);
  w.u8(m.code);
  w.bytes(m.error);
  w.u8(m.more ? 1 : 0);
  put_value(w, m.body);
}

// ---- decoding ---------------------------------------------------------------

Endpoint get_endpoint(Reader& r) {
  Endpoint e;
  e.family = r.u8();
  if (e.family != 4 && e.family != 6) {
    r.fail("bad address family");
    return e;
  }
  r.raw(e.ip.data(), e.family == 6 ? 16 : 4);
  e.port = r.u16();
  return e;
}

MemberUpdate get_member(Reader& r) {
  MemberUpdate m;
  m.name = r.bytes(kMaxNameBytes);
  m.uid = r.u64();
  m.addr = get_endpoint(r);
  m.incarnation = r.varint();
  uint8_t st = r.u8();
  if (st > static_cast<uint8_t>(MemberState::kLeft)) r.fail("bad member state");
  m.state = static_cast<MemberState>(st);
  return m;
}

std::vector<MemberUpdate> get_members(Reader& r) {
  std::vector<MemberUpdate> out;
  uint64_t n = r.count(kMinMemberBytes);
  out.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) out.push_back(get_member(r));
  return out;
}

// `ext`: the message is of an extended type (MsgType::kPushExt...), whose
// entries may carry extension fields; elsewhere their flags are ignored, as
// they always were.
crdt::Chunk get_chunk(Reader& r, bool ext = false) {
  crdt::Chunk c;
  c.origin = r.u64();
  c.from = r.varint();
  c.to = r.varint();
  uint64_t n = r.count(kMinEntryBytes);
  c.entries.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    crdt::KeyedEntry ke;
    ke.key = r.bytes(crdt::kMaxKeyBytes);
    if (r.ok() && ke.key.empty()) r.fail("empty key");
    uint8_t flags = r.u8();  // bits above 2 (above 3: extended) are reserved and ignored
    ke.entry.tombstone = flags & 1;
    ke.entry.vouched = flags & 2;
    ke.entry.unordered = flags & 4;
    ke.entry.hlc.raw = r.varint();
    ke.entry.dot = crdt::Dot{c.origin, r.varint()};
    if (ext && (flags & kEntryTtl)) {
      ke.entry.ttl_ms = r.varint();
      // Zero is "forever", written without the flag: one encoding per entry.
      if (r.ok() && (ke.entry.ttl_ms == 0 || ke.entry.ttl_ms > crdt::kMaxTtlMs)) r.fail("bad time to live");
      if (r.ok() && ke.entry.tombstone) r.fail("tombstone with a time to live");
    }
    if (!ke.entry.tombstone) ke.entry.value = r.bytes(crdt::kMaxValueBytes);
    c.entries.push_back(std::move(ke));
  }
  return c;
}

Value get_value(Reader& r, int depth) {
  if (depth > kMaxValueDepth) {
    r.fail("value nested too deeply");
    return {};
  }
  switch (r.u8()) {
    case 0: return {};
    case 1: return Value(false);
    case 2: return Value(true);
    case 3: {
      uint64_t z = r.varint();
      return Value(static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1)));
    }
    case 4: return Value(r.bytes(kMaxFrameBytes));
    case 5: {
      Value::List l;
      uint64_t n = r.count(1);
      l.reserve(n);
      for (uint64_t i = 0; i < n && r.ok(); ++i) l.push_back(get_value(r, depth + 1));
      return Value(std::move(l));
    }
    case 6: {
      Value::Object o;
      uint64_t n = r.count(2);
      o.reserve(n);
      for (uint64_t i = 0; i < n && r.ok(); ++i) {
        std::string k = r.bytes(kMaxNameBytes);
        o.emplace_back(std::move(k), get_value(r, depth + 1));
      }
      return Value(std::move(o));
    }
    default:
      r.fail("unknown value tag");
      return {};
  }
}

template <class M>
M get_body(Reader& r);

Push get_push(Reader& r, bool ext) {
  Push m;
  m.msg_seq = r.varint();
  m.chunk = get_chunk(r, ext);
  return m;
}
template <>
Ack get_body<Ack>(Reader& r) {
  return Ack{r.varint()};
}
template <>
ReadReq get_body<ReadReq>(Reader& r) {
  ReadReq m;
  m.read_id = r.varint();
  m.vector = r.u8() & 1;
  m.key = r.bytes(crdt::kMaxKeyBytes);
  if (r.ok() && !m.vector && m.key.empty()) r.fail("read of an empty key");
  return m;
}
ReadResp get_read_resp(Reader& r, bool ext) {
  ReadResp m;
  m.read_id = r.varint();
  const uint8_t flags = r.u8();
  if (flags & kReadEntry) {
    m.chunk = get_chunk(r, ext);
    // One key's winner: exactly one entry, a loose dot.
    if (r.ok() && (m.chunk.entries.size() != 1 || m.chunk.from != 0 || m.chunk.to != 0)) {
      r.fail("a read answer carries one entry");
    }
  }
  m.vector = flags & kReadVector;
  if (m.vector) {
    const uint64_t n = r.count(9);
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      const uint64_t o = r.u64();
      const uint64_t s = r.varint();
      if (r.ok() && (o == 0 || m.vv.get(o) != 0)) r.fail("bad vector item");
      if (r.ok()) m.vv.raise(o, s);
    }
  }
  return m;
}
template <>
ReadResp get_body<ReadResp>(Reader& r) {
  return get_read_resp(r, false);
}
// Reads extension fields (tag, length, bytes) to the end of `r`: a field
// whose tag `wanted` accepts is read by `read(tag, x)` from a Reader of its
// own bytes, whose failure fails `r`; any other is skipped.
template <class Wanted, class Read>
void read_extensions(Reader& r, Wanted&& wanted, Read&& read) {
  while (r.ok() && r.remaining() > 0) {
    const uint64_t tag = r.varint();
    const uint64_t len = r.varint();
    if (!wanted(tag)) {
      r.skip(len);
      continue;
    }
    if (len > r.remaining()) {
      r.fail("truncated extension");
      break;
    }
    std::vector<uint8_t> payload(static_cast<size_t>(len));
    r.raw(payload.data(), payload.size());
    Reader x(payload.data(), payload.size());
    read(tag, x);
    if (!x.ok()) r.fail(x.error());
  }
}

template <>
Digest get_body<Digest>(Reader& r) {
  Digest m;
  const uint8_t flags = r.u8();
  m.reply = flags & kDigestReply;
  m.counter = flags & kDigestCounter;
  m.resyncing = flags & kDigestResyncing;
  m.summary = flags & kDigestSummary;
  m.ask_back = flags & kDigestAskBack;
  if (m.summary) {
    m.context_hash = r.u64();
  } else {
    if (!(flags & kDigestWholeRange)) {
      m.origin_lo = r.u64();
      m.origin_hi = r.u64();
    }
    uint64_t n = r.count(9);
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
      uint64_t o = r.u64();
      uint64_t s = r.varint();
      if (i > 0 && o <= prev) r.fail("digest origins not ascending");
      prev = o;
      m.vv.raise(o, s);
    }
    if (flags & kDigestGc) {
      m.horizon = r.varint();
      m.reconciled = r.varint();
      m.excluded = r.u8() & 1;
    }
    if (flags & kDigestExclusions) {
      const uint64_t n = r.count(2);
      for (uint64_t i = 0; i < n && r.ok(); ++i) {
        std::string name = r.bytes(kMaxNameBytes);
        const uint64_t h = r.varint();
        m.exclusions.emplace_back(std::move(name), h);
      }
    }
  }
  // Extension fields: the retired origins, the roster report and the
  // quarantine asks and the mark that summaries' collection fields are read
  // (full digests), the vector's sum and the collection fields (summaries);
  // unknown
  // tags, and tags of the other kind, are skipped.
  read_extensions(
      r,
      [&](uint64_t tag) {
        return m.summary ? (tag == kDigestExtSum || tag == kDigestExtSummaryGc)
                         : (tag == kDigestExtRetired || tag == kDigestExtRoster || tag == kDigestExtAsks ||
                            tag == kDigestExtSummaryGc);
      },
      [&](uint64_t tag, Reader& x) {
        if (tag == kDigestExtSum) {
          m.vv_sum = x.varint();
        } else if (tag == kDigestExtSummaryGc && m.summary) {
          m.horizon = x.varint();
          m.reconciled = x.varint();
          m.mesh_size = x.varint();
          m.gc_stated = true;
        } else if (tag == kDigestExtSummaryGc) {
          m.reads_summary_gc = true;  // its payload, if any, is for later versions
        } else if (tag == kDigestExtRoster) {
          m.mesh_size = x.varint();
        } else if (tag == kDigestExtAsks) {
          const uint64_t n = x.count(9);
          // Counted across repeats of the field too: what decodes must encode
          // back into one field that decodes.
          if (n > kMaxQuarantineAsks - m.quarantine_asks.size()) x.fail("too many quarantine asks");
          for (uint64_t i = 0; i < n && x.ok(); ++i) {
            crdt::Dot d;
            d.origin = x.u64();
            d.seq = x.varint();
            if (d.origin == 0 || d.seq == 0) x.fail("quarantine ask without a dot");
            m.quarantine_asks.push_back(d);
          }
        } else {
          m.retired_count = x.varint();
          m.retired_hash = x.u64();
          const uint64_t n = x.count(9);
          for (uint64_t i = 0; i < n && x.ok(); ++i) {
            const uint64_t o = x.u64();
            const uint64_t f = x.varint();
            m.retired.emplace_back(o, f);
          }
        }
      });
  return m;
}
template <>
Ping get_body<Ping>(Reader& r) {
  Ping m;
  m.probe_seq = r.varint();
  if (r.u8() & kPingTarget) m.target_uid = r.u64();
  m.updates = get_members(r);
  // Extension fields: a digest riding along; unknown tags are skipped.
  read_extensions(
      r, [](uint64_t tag) { return tag == kPingExtDigest; },
      [&](uint64_t, Reader& x) {
        Digest d = get_body<Digest>(x);  // reads to the field's end (its own extensions)
        if (x.ok()) m.digest = std::move(d);
      });
  return m;
}
template <>
PingReq get_body<PingReq>(Reader& r) {
  PingReq m;
  m.probe_seq = r.varint();
  m.target_uid = r.u64();
  m.target_addr = get_endpoint(r);
  m.updates = get_members(r);
  return m;
}
PingAck get_ping_ack(Reader& r, uint64_t sender) {
  PingAck m;
  m.probe_seq = r.varint();
  const uint8_t flags = r.u8();
  m.target_uid = flags & kAckRelayed ? r.u64() : sender;
  if (flags & kAckWall) m.wall_ms = r.varint();
  m.updates = get_members(r);
  return m;
}
template <>
Fragment get_body<Fragment>(Reader& r) {
  Fragment m;
  m.xfer_id = r.u64();
  uint64_t index = r.varint();
  uint64_t count = r.varint();
  if (count == 0 || count > UINT32_MAX || index >= count) r.fail("bad fragment index");
  m.index = static_cast<uint32_t>(index);
  m.count = static_cast<uint32_t>(count);
  m.bytes = r.bytes(kMaxFrameBytes);
  return m;
}
template <>
Join get_body<Join>(Reader& r) {
  return Join{get_member(r)};
}
template <>
Members get_body<Members>(Reader& r) {
  return Members{get_members(r)};
}
template <>
Hello get_body<Hello>(Reader& r) {
  Hello m;
  m.self = get_member(r);
  m.public_key = r.bytes(32);
  m.signature = r.bytes(64);
  m.want_reply = r.u8() & 1;
  if (r.ok() && (m.public_key.size() != 32 || m.signature.size() != 64)) r.fail("hello: bad key or signature size");
  return m;
}
template <>
CtlRequest get_body<CtlRequest>(Reader& r) {
  CtlRequest m;
  m.req_id = r.varint();
  m.op = r.bytes(kMaxOpBytes);
  m.args = get_value(r, 0);
  return m;
}
template <>
CtlResponse get_body<CtlResponse>(Reader& r) {
  CtlResponse m;
  m.req_id = r.varint();
  m.code = static_cast<CtlCode>(r.u8());  // kept as sent, even past kCtlUnavailable
  m.error = r.bytes(kMaxErrorBytes);
  m.more = r.u8() & 1;
  m.body = get_value(r, 0);
  return m;
}

// The extension fields of a Push or ChunkMsg: the reconciled horizon (0 if
// absent); unknown tags are skipped.
uint64_t get_reconciled(Reader& r) {
  uint64_t out = 0;
  read_extensions(
      r, [](uint64_t tag) { return tag == kEntriesExtReconciled; },
      [&](uint64_t, Reader& x) { out = x.varint(); });
  return out;
}

// Skips extension fields up to the end.
void skip_extensions(Reader& r) {
  while (r.ok() && r.remaining() > 0) {
    r.varint();  // tag
    uint64_t len = r.varint();
    r.skip(len);
  }
}

template <class M>
Message decode_as(Reader& r) {
  M m = get_body<M>(r);
  skip_extensions(r);
  return Message(std::move(m));
}

template <class M>
Message decode_with(Reader& r, M (*get)(Reader&, bool)) {
  M m = get(r, true);
  skip_extensions(r);
  return Message(std::move(m));
}

}  // namespace

const char* member_state_name(MemberState s) {
  switch (s) {
    case MemberState::kAlive: return "alive";
    case MemberState::kSuspect: return "suspect";
    case MemberState::kDead: return "dead";
    case MemberState::kLeft: return "left";
  }
  return "?";
}

static_assert(std::variant_size_v<Message> == kMaxMsgType, "Message alternatives follow MsgType");
MsgType type_of(const Message& m) { return static_cast<MsgType>(m.index() + 1); }

MsgType wire_type_of(const Message& m) {
  if (const auto* p = std::get_if<Push>(&m); p && extended(p->chunk)) return MsgType::kPushExt;
  if (const auto* c = std::get_if<ChunkMsg>(&m); c && extended(c->chunk)) return MsgType::kChunkExt;
  if (const auto* r = std::get_if<ReadResp>(&m); r && extended(r->chunk)) return MsgType::kReadRespExt;
  return type_of(m);
}

const char* type_name(MsgType t) {
  static const char* names[] = {"?",     "push",     "ack",     "digest",   "chunk",
                                "ping",  "ping-req", "ping-ack", "fragment", "join",
                                "members", "ctl-request", "ctl-response", "hello",
                                "read-req", "read-resp", "push-ext", "chunk-ext", "read-resp-ext"};
  auto i = static_cast<size_t>(t);
  return i <= kMaxWireType ? names[i] : "?";
}

void encode_to(const Envelope& env, Bytes& out) {
  Writer w(out);
  w.u8(kMagic0);
  w.u8(kMagic1);
  w.u8(kVersion);
  w.u8(static_cast<uint8_t>(wire_type_of(env.msg)));
  w.u64(env.sender);
  std::visit(
      [&](const auto& m) {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, PingAck>) {
          put_ping_ack(w, m, env.sender);
        } else {
          put_body(w, m);
        }
      },
      env.msg);
}

Bytes encode(const Envelope& env) {
  Bytes out;
  encode_to(env, out);
  return out;
}

Result<Header> peek_header(const uint8_t* data, size_t n) {
  Reader r(data, n);
  if (r.u8() != kMagic0 || r.u8() != kMagic1) return Status::Corruption("bad magic");
  Header h;
  h.version = r.u8();
  uint8_t t = r.u8();
  h.sender = r.u64();
  if (!r.ok()) return Status::Corruption("truncated header");
  if (h.version < kMinVersion) return Status::Corruption("unsupported version");
  if (t == 0 || t > kMaxWireType) return Status::Corruption("unknown message type");
  h.type = static_cast<MsgType>(t);
  return h;
}

Result<Envelope> decode(const uint8_t* data, size_t n) {
  if (n > kMaxFrameBytes) return Status::Corruption("message too large");
  auto h = peek_header(data, n);
  if (!h.ok()) return h.status();
  Reader r(data + kHeaderBytes, n - kHeaderBytes);
  Envelope env;
  env.version = h->version;
  env.sender = h->sender;
  switch (h->type) {
    case MsgType::kPush:
    case MsgType::kPushExt: {
      Push m = get_push(r, h->type == MsgType::kPushExt);
      m.reconciled = get_reconciled(r);
      env.msg = std::move(m);
      break;
    }
    case MsgType::kAck: env.msg = decode_as<Ack>(r); break;
    case MsgType::kDigest: env.msg = decode_as<Digest>(r); break;
    case MsgType::kChunk:
    case MsgType::kChunkExt: {
      ChunkMsg m{get_chunk(r, h->type == MsgType::kChunkExt)};
      m.reconciled = get_reconciled(r);
      env.msg = std::move(m);
      break;
    }
    case MsgType::kPing: env.msg = decode_as<Ping>(r); break;
    case MsgType::kPingReq: env.msg = decode_as<PingReq>(r); break;
    case MsgType::kPingAck: {
      PingAck m = get_ping_ack(r, h->sender);
      skip_extensions(r);
      env.msg = std::move(m);
      break;
    }
    case MsgType::kFragment: env.msg = decode_as<Fragment>(r); break;
    case MsgType::kJoin: env.msg = decode_as<Join>(r); break;
    case MsgType::kMembers: env.msg = decode_as<Members>(r); break;
    case MsgType::kCtlRequest: env.msg = decode_as<CtlRequest>(r); break;
    case MsgType::kCtlResponse: env.msg = decode_as<CtlResponse>(r); break;
    case MsgType::kHello: env.msg = decode_as<Hello>(r); break;
    case MsgType::kReadReq: env.msg = decode_as<ReadReq>(r); break;
    case MsgType::kReadResp: env.msg = decode_as<ReadResp>(r); break;
    case MsgType::kReadRespExt: env.msg = decode_with(r, get_read_resp); break;
  }
  if (!r.ok()) return Status::Corruption(std::string(type_name(h->type)) + ": " + r.error());
  return env;
}

}  // namespace meshkv::wire
