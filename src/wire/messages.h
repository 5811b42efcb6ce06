// The meshkv wire format, version 3. Every datagram and every control frame is
// one message:
//
//   offset  size  field
//   0       2     magic 0x6D 0x6B ("mk")
//   2       1     version (this code writes kVersion, reads >= kMinVersion)
//   3       1     type (MsgType)
//   4       8     sender uid, little-endian (0 from control clients)
//   12      ...   body: the type's required fields in order, then optional
//                 extension fields until the end of the message
//
// Integers in bodies are unsigned LEB128 varints (at most 10 bytes) unless
// stated; "bytes" is a varint length then that many bytes. Every length and
// count is checked against the bytes that remain before anything is read or
// allocated.
//
// Extension fields are `tag varint, length varint, payload`. A reader skips
// tags it does not know, so a newer node may append fields that an older one
// ignores. Bodies never change their required part within a version.
//
// Message type numbers are part of the protocol: ONLY APPEND to MsgType.
//
// Version 2 (version 1 is refused) made the idle traffic smaller: a digest
// may be a summary (a hash of the sender's causal context instead of its
// vector) and need not spell out a full origin range; a PingAck names its
// answerer only when relayed and carries a wall-clock reading only now and
// then; a Ping names its target only when relayed.
//
// Version 3 lets a Ping carry the sender's anti-entropy digest as an
// extension field, so that an idle node's digest costs no datagram (and no
// 28 bytes of IP and UDP headers) of its own. Version 2 is still read: its
// messages are the same, and a version 2 node skips the field, as it skips
// any extension (it then misses that digest; its own digests still repair
// both ways).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/endpoint.h"
#include "crdt/replica.h"
#include "wire/control_ops.h"
#include "wire/value.h"

namespace meshkv::wire {

inline constexpr uint8_t kMagic0 = 0x6D;
inline constexpr uint8_t kMagic1 = 0x6B;
inline constexpr uint8_t kVersion = 3;
inline constexpr uint8_t kMinVersion = 2;
inline constexpr size_t kHeaderBytes = 12;
// Control frames may carry a whole 1 MiB value plus metadata, or a listing.
inline constexpr size_t kMaxFrameBytes = 64 * 1024 * 1024;

enum class MsgType : uint8_t {
  kPush = 1,         // local writes, eagerly pushed; acknowledged
  kAck = 2,          // acknowledges a Push (or a fragmented one) by msg_seq
  kDigest = 3,       // anti-entropy: "here is my vector (for origins lo..hi)"
  kChunk = 4,        // anti-entropy answer: winners of one origin in (from,to]
  kPing = 5,         // direct probe, with piggybacked membership updates
  kPingReq = 6,      // "probe `target` for me"
  kPingAck = 7,      // answer to Ping, or relayed answer to a PingReq
  kFragment = 8,     // one piece of a message larger than the MTU
  kJoin = 9,         // "I am here; send me your member list"
  kMembers = 10,     // membership updates (gossip, join replies, leave)
  kCtlRequest = 11,  // control plane, TCP only
  kCtlResponse = 12,
  kHello = 13,       // sealed meshes: "this process is that identity" (a certificate)
  kReadReq = 14,     // quorum reads: "send me your entry of this key (or your vector)"
  kReadResp = 15,    // the answer to a ReadReq
  // The same three bodies, their entries carrying extension fields (a time
  // to live, flag 8): sent whenever an entry has one. A node that predates
  // them refuses the unknown type (drops and counts it as malformed) rather
  // than read an entry without its time to live, which would show an expired
  // value for ever. They decode into Push, ChunkMsg and ReadResp.
  kPushExt = 16,
  kChunkExt = 17,
  kReadRespExt = 18,
};
// The last type with its own Message alternative; the wire knows up to
// kMaxWireType.
inline constexpr uint8_t kMaxMsgType = 15;
inline constexpr uint8_t kMaxWireType = 18;

enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };
const char* member_state_name(MemberState s);

// What one node says about a member. Newer incarnations win; within one
// incarnation alive < suspect < dead/left (memberlist/SWIM rules).
struct MemberUpdate {
  std::string name;
  uint64_t uid = 0;  // the member's current process identity (and CRDT origin)
  Endpoint addr;
  uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  friend bool operator==(const MemberUpdate&, const MemberUpdate&) = default;
};

struct Push {
  uint64_t msg_seq = 0;  // per sender, for Ack and duplicate suppression
  crdt::Chunk chunk;     // origin = writer; from == to == 0 (loose dots)
  // The sender's reconciled horizon (node/gc.cc) when it took these entries,
  // as extension field 1 (absent when 0). A receiver that once left the
  // sender out of a collection trusts the entries only if it is at least
  // the horizon the sender had to reach: what was sent before it
  // reconciled may arrive after (retransmitted, reordered, or queued while
  // a process was paused). The same on ChunkMsg.
  uint64_t reconciled = 0;
  friend bool operator==(const Push&, const Push&) = default;
};
struct Ack {
  uint64_t msg_seq = 0;
  friend bool operator==(const Ack&, const Ack&) = default;
};
// At most this many quarantine asks in one digest (Digest::quarantine_asks).
inline constexpr size_t kMaxQuarantineAsks = 16;
struct Digest {
  bool reply = true;     // false: informational, do not answer with chunks
  bool counter = false;  // sent in answer to a digest: do not digest back
  bool resyncing = false;  // the sender is starting over (tombstone GC, gc.cc)
  // A summary carries only `context_hash`, the hash of the sender's whole
  // causal context (crdt::CausalContext::fingerprint), sent when the sender
  // believes the receiver already holds the same: "still in sync?". A
  // receiver whose own hash differs answers with a full digest.
  bool summary = false;
  uint64_t context_hash = 0;
  // In summaries only, as extension field 4 (absent when 0, version 3): the
  // sum of the sender's vector's seqs. A summary is sent when the sender's
  // vector equals the last one it heard from the receiver; a receiver whose
  // hash differs checks its own last record of the sender's vector (a lower
  // bound, as vectors only grow) against this sum, and when they agree it
  // knows the sender's vector and answers with what it lacks at once,
  // instead of a round trip later (node/anti_entropy.cc).
  uint64_t vv_sum = 0;
  // In summaries only: the sender states its collection fields, horizon,
  // reconciled and mesh_size (below), as extension field 5 (version 3; a
  // reader that predates it skips it). A summary is sent only when the
  // sender has no exclusions to tell and no quarantine asks, and never to
  // a member it left out, so these are all a full digest's collection
  // fields would say. Without it (an older sender) a summary says nothing
  // of them: its receiver keeps what it last heard, never reads zeros.
  bool gc_stated = false;
  // In full digests only, as extension field 5 (empty): "I read a
  // summary's collection fields". Summaries go only to a member whose full
  // digests say so: one that predates the field would keep its last record
  // of the sender's roster report while summaries flow, and could take
  // itself for settled on a stale count.
  bool reads_summary_gc = false;
  // Set on the full digest that answers a summary whose hash differed: the
  // receiver sends its own vector back in any case (a counter digest), so
  // that both sides learn what they lack, also beyond gaps in the vector.
  bool ask_back = false;
  uint64_t origin_lo = 0;
  uint64_t origin_hi = ~uint64_t{0};
  crdt::VersionVector vv;  // only origins in [origin_lo, origin_hi]
  // Tombstone collection (node/gc.cc), in full digests only:
  uint64_t horizon = 0;     // the sender's horizon (crdt/replica.h), an HLC
  uint64_t reconciled = 0;  // the horizon the sender last reconciled with or collected to
  bool excluded = false;    // "you were left out of my collections: reconcile with me"
  // Members the sender knows were left out of collections and have not
  // reconciled, with the horizon they must reach (a few per digest, in turn).
  std::vector<std::pair<std::string, uint64_t>> exclusions;
  // Retired origins (crdt/version_vector.h), in full digests only, as
  // extension field 1 (absent while the sender has retired none): how many
  // and their hash (CausalContext::retired_hash), and, while the receiver's
  // last word showed a different hash, a few of them (origin, final seq) in
  // turn, for the receiver to take.
  uint64_t retired_count = 0;
  uint64_t retired_hash = 0;
  std::vector<std::pair<uint64_t, uint64_t>> retired;
  // The sender's majority (node/gc.cc), in full digests only, as extension
  // field 2 (absent when 0): how many members it counts toward the majority,
  // itself included, from first-hand knowledge (its roster).
  uint64_t mesh_size = 0;
  // Writes the sender holds in quarantine (crdt/replica.h), a few per full
  // digest in turn, as extension field 3 (absent when empty): "if this is
  // your key's winner, send it to me". A receiver holding one as its winner
  // sends it back; its copy is the verdict that releases it (node/gc.cc).
  std::vector<crdt::Dot> quarantine_asks;
  friend bool operator==(const Digest&, const Digest&) = default;
};
struct ChunkMsg {
  crdt::Chunk chunk;
  uint64_t reconciled = 0;  // as on Push
  friend bool operator==(const ChunkMsg&, const ChunkMsg&) = default;
};
struct Ping {
  uint64_t probe_seq = 0;
  uint64_t target_uid = 0;  // whom the sender means to probe (0: anyone there;
                            // on the wire only when not 0)
  std::vector<MemberUpdate> updates;
  // The sender's periodic anti-entropy digest, riding along (extension
  // field 1, version 3): one datagram a second fewer per idle node. The
  // receiver handles it as if it had come on its own.
  std::optional<Digest> digest;
  friend bool operator==(const Ping&, const Ping&) = default;
};
struct PingReq {
  uint64_t probe_seq = 0;
  uint64_t target_uid = 0;
  Endpoint target_addr;
  std::vector<MemberUpdate> updates;
  friend bool operator==(const PingReq&, const PingReq&) = default;
};
struct PingAck {
  uint64_t probe_seq = 0;
  uint64_t target_uid = 0;  // who answered (differs from sender when relayed;
                            // on the wire only then)
  uint64_t wall_ms = 0;     // the answerer's wall clock, for clock offset
                            // estimates; 0: not sent this time
  std::vector<MemberUpdate> updates;
  friend bool operator==(const PingAck&, const PingAck&) = default;
};
struct Fragment {
  uint64_t xfer_id = 0;  // same for every piece of one message
  uint32_t index = 0;
  uint32_t count = 0;
  std::string bytes;
  friend bool operator==(const Fragment&, const Fragment&) = default;
};
struct Join {
  MemberUpdate self;
  friend bool operator==(const Join&, const Join&) = default;
};
struct Members {
  std::vector<MemberUpdate> updates;
  friend bool operator==(const Members&, const Members&) = default;
};
struct CtlRequest {
  uint64_t req_id = 0;
  std::string op;  // a name from kCtlOps (wire/control_ops.h)
  Value args;      // an object
  friend bool operator==(const CtlRequest&, const CtlRequest&) = default;
};
struct CtlResponse {
  uint64_t req_id = 0;
  CtlCode code = kCtlOk;  // one byte on the wire; the process exit code
  std::string error;
  Value body;
  bool more = false;  // streaming (watch): further responses follow
  friend bool operator==(const CtlResponse&, const CtlResponse&) = default;
};

// A request for `op` with no arguments yet (an empty object).
inline CtlRequest make_request(CtlOp op, uint64_t req_id = 1) {
  return CtlRequest{req_id, std::string(op_name(op)), Value::object()};
}
// A refusal: `code` (not kCtlOk) and the message for the user.
inline CtlResponse ctl_error(uint64_t req_id, CtlCode code, std::string error) {
  return CtlResponse{req_id, code, std::move(error), {}, false};
}

// In a sealed mesh, a node proves which identity a process (uid) speaks for
// before anything else from it is accepted: the identity's Ed25519
// signature over (uid, name). See node/sealing.cc.
struct Hello {
  MemberUpdate self;
  std::string public_key;  // 32 bytes
  std::string signature;   // 64 bytes
  bool want_reply = false;  // the sender does not know our identity yet
  friend bool operator==(const Hello&, const Hello&) = default;
};

// A quorum read (get/list --read, node/consistency.cc) asks members for
// what they hold. Answered only to members; an answer the asker is not
// waiting for is dropped. Nodes that predate these types drop them as
// malformed (an unknown type), so the asker sees no answer from them.
struct ReadReq {
  uint64_t read_id = 0;  // the asker's, echoed in the answer
  bool vector = false;   // answer with the version vector, not an entry
  std::string key;       // the key (when !vector)
  friend bool operator==(const ReadReq&, const ReadReq&) = default;
};
struct ReadResp {
  uint64_t read_id = 0;
  // The answerer's winning entry of the key, tombstones included: no entries
  // when it holds none. chunk.origin is the entry's origin; from == to == 0.
  crdt::Chunk chunk;
  bool vector = false;     // `vv` is the answer
  crdt::VersionVector vv;  // the answerer's version vector (when vector)
  friend bool operator==(const ReadResp&, const ReadResp&) = default;
};

using Message = std::variant<Push, Ack, Digest, ChunkMsg, Ping, PingReq, PingAck, Fragment, Join,
                             Members, CtlRequest, CtlResponse, Hello, ReadReq, ReadResp>;

MsgType type_of(const Message& m);
// The type `m` travels as: type_of(m), or its extended twin when an entry
// of it carries extension fields.
MsgType wire_type_of(const Message& m);
const char* type_name(MsgType t);

struct Envelope {
  uint8_t version = kVersion;
  uint64_t sender = 0;
  Message msg;
  friend bool operator==(const Envelope&, const Envelope&) = default;
};

}  // namespace meshkv::wire
