// Retiring the origins of ended processes, so that version vectors, `clock`
// and digests stay the size of the live mesh (crdt/version_vector.h has what
// a retirement means to a causal context).
//
// Every process start is a new origin. Dropping an origin's row is only safe
// once nobody can still need it:
//   - Its process has ended, by this node's membership: the member of that
//     name is another process now, one this node has heard from directly;
//     or the member left; or it was removed (reaped, forgotten); or no
//     member table here ever named it and it is no member's process. A
//     process that ended writes nothing more, so its highest seq is final.
//     (Were a retired origin alive after all, its next write would bring
//     its row back, below: this rule keeps rows from coming and going, it
//     is not what makes retirement safe.)
//   - Every member that counts (as for tombstone collection, gc.cc: heard
//     from directly or on the roster, and not left or dead past the grace
//     period) shows a row for it equal to ours, f. Then each holds every
//     write (o, 1..f), or what beat it, and f is the final seq as far as
//     the mesh knows.
// A node retires such an origin by itself, or takes a retirement (o, f) that
// a member that counts lists in its digest, when its own row is exactly f
// and o is not the process of a live member here (a list alone must not
// silence a live writer). Whatever a node's retired set, what it tells
// others stays true:
//   - Digests carry the retired set's count and hash. To a peer whose hash
//     differs (or is not known yet), a node shows its retired origins as
//     rows at their final seqs, which it has, and lists a few of them in
//     turn; so that peer neither asks for what it has nor lacks a reason to
//     retire.
//   - A node answers a peer whose hash differs with its retired origins'
//     winners too (Replica::delta), so a member that joined later, or
//     started over, gets them, reaches f, and then takes the retirement.
//   - A write of a retired origin above f (one that reached only a member
//     that did not count, and comes back with it) brings the row back, and
//     so does a peer's row above f, or a list with a higher f: the origin is
//     retired again later at its new final seq.
//   - Tombstone collection counts a retired dot as covered by a peer whose
//     retired set equals ours (it retired the same origins at the same
//     seqs, so it held them), and otherwise by the peer's rows.
// An entry keeps its origin, for last-writer-wins ties; only rows go.
#include <algorithm>

#include "node/anti_entropy.h"

namespace meshkv::node {

namespace {
using wire::MemberState;
constexpr uint64_t kMs = 1000;
}  // namespace

bool AntiEntropy::same_retired(const PeerVector& p) const {
  const crdt::CausalContext& ctx = replica_.context();
  return p.retired_known && p.retired_count == ctx.retired().size() && p.retired_hash == ctx.retired_hash();
}

bool AntiEntropy::same_retired(const Endpoint& to) const {
  const Member* m = members_.at(to);
  if (m == nullptr) return replica_.context().retired().empty();
  auto p = peer_vv_.find(m->uid);
  if (p == peer_vv_.end()) return replica_.context().retired().empty();
  return same_retired(p->second);
}

bool AntiEntropy::ended(uint64_t origin) const {
  if (origin == replica_.self()) return false;
  const std::string& name = members_.name_of(origin);
  // A process no member table here ever named (it wrote, its writes came
  // by others, and it ended before its name reached us; or its name was
  // evicted from the bounded table of past processes): not a member, so
  // ended as far as this node can tell. Were it alive after all, its next
  // write would bring its row back (crdt/version_vector.h).
  if (name.empty()) return members_.by_uid(origin) == nullptr;
  if (name == members_.self_name()) return true;  // an earlier process of this node
  const Member* m = members_.find(name);
  if (m == nullptr) return true;  // reaped or forgotten
  if (m->uid == origin) return m->state == MemberState::kLeft;
  // The name is another process's now: ended, once that one has proved
  // itself (a forged statement of a restart must not silence a live writer).
  return m->verified;
}

crdt::VersionVector AntiEntropy::retired_fields(const Endpoint& to, wire::Digest& d) {
  const crdt::CausalContext& ctx = replica_.context();
  crdt::VersionVector shown = replica_.vv();
  const auto& retired = ctx.retired();
  if (retired.empty()) return shown;
  d.retired_count = retired.size();
  d.retired_hash = ctx.retired_hash();
  if (same_retired(to) || must_resync_) return shown;
  for (const auto& [o, f] : retired) shown.raise(o, f);
  auto it = std::upper_bound(retired.begin(), retired.end(), retired_cursor_,
                             [](uint64_t c, const auto& r) { return c < r.first; });
  for (size_t i = 0; i < std::min(kRetiredPerDigest, retired.size()); ++i) {
    if (it == retired.end()) it = retired.begin();
    d.retired.push_back(*it);
    retired_cursor_ = it->first;
    ++it;
  }
  return shown;
}

void AntiEntropy::on_retired(uint64_t sender, const wire::Digest& d) {
  if (must_resync_) return;
  // A peer holding more of a retired origin than its final seq: the row comes back.
  for (const auto& [o, s] : d.vv.items()) {
    const uint64_t f = replica_.context().retired_at(o);
    if (f != 0 && s > f && replica_.unretire(o)) ++unretirements_;
  }
  if (d.retired.empty()) return;
  const Member* m = members_.by_uid(sender);
  if (m == nullptr || !(m->verified || roster_.count(m->name) > 0)) return;
  for (const auto& [o, f] : d.retired) {
    const uint64_t mine = replica_.context().retired_at(o);
    if (mine == f || f == 0) continue;
    if (mine != 0) {
      // Retired here at another seq: below theirs, we lack some of its
      // writes (they come, shown as rows); above, they catch up from us.
      if (mine < f && replica_.unretire(o)) ++unretirements_;
      continue;
    }
    if (o == replica_.self()) continue;
    if (const Member* x = members_.by_uid(o); x != nullptr && x->state != MemberState::kLeft) continue;
    if (quarantined_above(o, f)) continue;
    if (replica_.retire(o, f)) {
      ++retirements_taken_;
      hooks_.log(LogLevel::kDebug, "retired origin " + std::to_string(o) + " at seq " + std::to_string(f) +
                                       ", as " + m->name + " did");
    }
  }
}

bool AntiEntropy::quarantined_above(crdt::Origin o, uint64_t f) const {
  for (const auto& [key, entries] : replica_.quarantine()) {
    for (const crdt::Entry& e : entries) {
      if (e.dot.origin == o && e.dot.seq > f) return true;
    }
  }
  return false;
}

void AntiEntropy::retire_ended() {
  std::vector<std::pair<crdt::Origin, uint64_t>> candidates;
  for (const auto& [o, f] : replica_.vv().items()) {
    if (ended(o)) candidates.emplace_back(o, f);
  }
  if (candidates.empty()) return;
  const uint64_t grace = cfg_.tombstone_grace_ms;
  std::vector<const crdt::VersionVector*> vectors;
  for (const auto& [name, m] : members_.members()) {
    if (!m.verified && !roster_.count(name)) continue;
    if (m.state == MemberState::kLeft ||
        (m.state == MemberState::kDead && now_.mono_us > m.state_since_us + grace * kMs)) {
      continue;
    }
    auto p = peer_vv_.find(m.uid);
    if (p == peer_vv_.end() || p->second.resyncing) return;  // not heard yet
    vectors.push_back(&p->second.vv);
  }
  // Members on the roster this process has not seen yet hold it back, as
  // they hold back collection.
  for (const std::string& name : roster_) {
    if (members_.find(name) == nullptr) return;
  }
  for (const auto& candidate : candidates) {
    // Named copies: a lambda may not capture structured bindings (C++20 as clang 14 reads it).
    const auto o = candidate.first;
    const auto f = candidate.second;
    if (!std::all_of(vectors.begin(), vectors.end(), [o, f](const auto* v) { return v->get(o) == f; })) continue;
    // A write of it above f waits in quarantine here: not final yet. Were
    // it released after the retirement, it would be a write above the final
    // seq that peers which retired the origin too never ask for.
    if (quarantined_above(o, f)) continue;
    if (replica_.retire(o, f)) {
      ++retirements_;
      hooks_.log(LogLevel::kDebug, "retired origin " + std::to_string(o) + " (" + members_.name_of(o) +
                                       ", ended) at seq " + std::to_string(f));
    }
  }
}

}  // namespace meshkv::node
