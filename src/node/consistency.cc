// Tunable consistency (node/consistency.h): writes that wait for members'
// acknowledgements, quorum reads with read repair, and the staleness of a
// node's own answers. Engine state with deadlines, so the simulator drives
// it exactly as the Asio shell does.
#include "node/consistency.h"

#include <algorithm>
#include <charconv>

#include "node/control.h"
#include "node/engine_impl.h"
#include "node/protocol_math.h"

namespace meshkv::node {

std::string Level::to_string() const {
  switch (kind) {
    case Kind::kQuorum: return "quorum";
    case Kind::kAll: return "all";
    case Kind::kCount: break;
  }
  return std::to_string(count);
}

Result<Level> parse_level(std::string_view text, bool counts_allowed) {
  if (text == "quorum") return Level{Level::Kind::kQuorum, 0};
  if (text == "all") return Level{Level::Kind::kAll, 0};
  uint32_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (!counts_allowed || ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 1000) {
    return Status::Invalid("'" + std::string(text) + "' is not a level (" +
                           (counts_allowed ? "a count 1..1000, quorum or all" : "quorum or all") + ")");
  }
  return Level{Level::Kind::kCount, n};
}

namespace {
// The resend timer of a wait or read: the deadline's key with the top bit set.
constexpr uint64_t kResendKey = uint64_t{1} << 63;

// "b, c": names, for messages.
std::string names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& n : v) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

wire::Value name_list(const std::vector<std::string>& v) {
  wire::Value l = wire::Value::list();
  for (const auto& n : v) l.push(n);
  return l;
}
}  // namespace

// ---- writes that wait -----------------------------------------------------------------

uint64_t Engine::last_local_seq() const { return impl_->replica.last_seq(); }

Result<uint64_t> Engine::await_writes(Level level, uint64_t first_seq, uint64_t last_seq, uint64_t timeout_ms,
                                      wire::CtlResponse& done, Now now) {
  Impl& s = *impl_;
  s.now = now;
  if (s.waits.size() >= kMaxWaits) {
    return Status::Unavailable("too many writes waiting (" + std::to_string(kMaxWaits) + "); the write stands");
  }
  Impl::Waiter w;
  w.level = level;
  w.first_seq = first_seq;
  w.last_seq = last_seq;
  w.start_us = now.mono_us;
  w.deadline_us = now.mono_us + std::min(timeout_ms, kMaxWaitMs) * 1000;
  // Every member that has not left counts, dead ones too: a node cut off
  // from the rest must not reach a majority of its own by declaring the
  // others dead, and "all" means all.
  for (const auto& [name, m] : s.membership.members()) {
    if (m.state != wire::MemberState::kLeft) w.targets.push_back({name, m.uid, 0, false});
  }
  w.need = level.need(w.targets.size() + 1);
  ++s.consistency.waits;
  if (s.wait_answer(w, done)) return uint64_t{0};  // met at once: answered now
  w.done = std::move(done);
  const uint64_t id = s.next_wait_id++;
  s.timers.set(TimerKind::kConsistency, id, w.deadline_us);
  s.waits.emplace(id, std::move(w));
  return id;
}

bool Engine::Impl::wait_answer(Waiter& w, wire::CtlResponse& resp) {
  const uint64_t span = w.last_seq - w.first_seq + 1;
  size_t have = 1;  // this node
  std::vector<std::string> acked{self_name}, missing;
  for (auto& t : w.targets) {
    if (!t.has) {
      const crdt::VersionVector* vv = anti_entropy.peer_vector(t.uid);
      t.has = t.acked >= span || (vv != nullptr && vv->get(self_uid) >= w.last_seq);
    }
    (t.has ? acked : missing).push_back(t.name);
    have += t.has ? 1 : 0;
  }
  const bool met = have >= w.need;
  if (!met && now.mono_us < w.deadline_us) return false;
  const uint64_t ms = (now.mono_us - w.start_us) / 1000;
  if (met) {
    ++consistency.waits_met;
    wire::Value info = wire::Value::object();
    info.set("level", w.level.to_string());
    info.set("acked", name_list(acked));
    info.set("ms", ms);
    if (!resp.body.is_object()) resp.body = wire::Value::object();
    resp.body.set("wait", std::move(info));
    return true;
  }
  ++consistency.waits_timed_out;
  const uint64_t req_id = resp.req_id;
  resp = wire::ctl_error(req_id, wire::kCtlNotFound,
                         "wait " + w.level.to_string() + ": " + std::to_string(have) + " of " +
                             std::to_string(w.targets.size() + 1) + " members had the write after " +
                             std::to_string(ms) + " ms (" + std::to_string(w.need) +
                             " needed); not acknowledged: " + names(missing) +
                             ". The write stands: it was not undone");
  resp.body = wire::Value::object();
  resp.body.set("acked", name_list(acked));
  resp.body.set("missing", name_list(missing));
  return true;
}

void Engine::Impl::on_pushes_acked(std::string_view member, uint64_t first_seq, uint64_t last_seq) {
  for (auto& [id, w] : waits) {
    const uint64_t lo = std::max(first_seq, w.first_seq), hi = std::min(last_seq, w.last_seq);
    if (lo > hi) continue;
    for (auto& t : w.targets) {
      if (t.name == member && !t.has) t.acked += hi - lo + 1;
    }
  }
}

bool Engine::Impl::waited(uint64_t first_seq, uint64_t last_seq) const {
  for (const auto& [id, w] : waits) {
    if (w.first_seq <= last_seq && first_seq <= w.last_seq) return true;
  }
  return false;
}

// ---- quorum reads ---------------------------------------------------------------------

Result<uint64_t> Engine::quorum_read(Level level, bool list, std::string key, uint64_t timeout_ms, uint64_t req_id,
                                     Now now) {
  Impl& s = *impl_;
  s.now = now;
  if (s.reads.size() >= kMaxReads) {
    return Status::Unavailable("too many quorum reads in progress (" + std::to_string(kMaxReads) + ")");
  }
  Impl::QuorumRead r;
  r.level = level;
  r.list = list;
  r.key = std::move(key);
  r.start_us = now.mono_us;
  r.deadline_us = now.mono_us + std::min(timeout_ms, kMaxWaitMs) * 1000;
  r.req_id = req_id;
  const uint64_t id = s.next_wait_id++;
  for (const auto& [name, m] : s.membership.members()) {
    if (m.state == wire::MemberState::kLeft) continue;
    Impl::QuorumRead::Target t;
    t.name = name;
    t.uid = m.uid;
    t.addr = m.addr;
    r.targets.push_back(std::move(t));
  }
  r.need = level.need(r.targets.size() + 1);
  ++s.consistency.reads;
  auto [it, fresh] = s.reads.emplace(id, std::move(r));
  s.timers.set(TimerKind::kConsistency, id, it->second.deadline_us);
  s.ask_again(id, it->second);
  s.finish();  // sends the requests; a read this node alone meets is answered
  return id;
}

void Engine::Impl::ask_again(uint64_t id, QuorumRead& r) {
  uint64_t next = 0;
  for (auto& t : r.targets) {
    const bool done = t.answered && (!r.list || crdt::covers_all(replica.vv(), t.vv));
    if (done) continue;
    // Only members heard from directly are asked (as pushes go only to
    // them); the others count toward the level and never answer.
    const Member* m = membership.find(t.name);
    if (m == nullptr || m->uid != t.uid || !m->reachable() || !m->verified) continue;
    if (now.mono_us >= t.next_ask_us) {
      // Requests and answers may be lost: ask again, with the backoff of
      // pushes, until the member answers or the deadline passes.
      if (!t.answered) {
        transport.send(m->addr, wire::ReadReq{id, r.list, r.list ? std::string() : r.key});
      } else {
        anti_entropy.pull(*m);  // a list: it answered; its chunks may have been lost
      }
      t.next_ask_us = now.mono_us + backoff_us(m->rtt.rto_us(), ++t.asks);
    }
    next = next == 0 ? t.next_ask_us : std::min(next, t.next_ask_us);
  }
  if (next == 0) return timers.cancel(TimerKind::kConsistency, id | kResendKey);
  timers.set(TimerKind::kConsistency, id | kResendKey, next);
}

void Engine::Impl::on_read_req(const Endpoint& from, uint64_t sender, const wire::ReadReq& m) {
  // Members only: a stranger learns nothing of the data, and cannot make
  // this node send to an address of its choosing.
  if (sender == 0 || membership.by_uid(sender) == nullptr) {
    ++consistency.read_dropped;
    return;
  }
  ++consistency.read_requests_answered;
  wire::ReadResp a;
  a.read_id = m.read_id;
  if (m.vector) {
    a.vector = true;
    a.vv = replica.vv();
  } else if (crdt::EntryPtr e = replica.map().find(m.key)) {
    a.chunk.origin = e->dot.origin;
    a.chunk.entries.push_back({m.key, e->to_entry()});
  }
  transport.send(from, std::move(a));
}

void Engine::Impl::on_read_resp(uint64_t sender, const wire::ReadResp& m) {
  auto it = reads.find(m.read_id);
  QuorumRead::Target* t = nullptr;
  if (it != reads.end()) {
    for (auto& x : it->second.targets) {
      if (x.uid == sender && sender != 0) t = &x;
    }
  }
  // An answer nobody waits for (late, duplicated, forged, or of the wrong
  // kind) changes nothing.
  const bool fits = t != nullptr && !t->answered && m.vector == it->second.list &&
                    (m.chunk.entries.empty() || (m.chunk.entries[0].key == it->second.key &&
                                                  crdt::validate_entry(m.chunk.entries[0].key,
                                                                       m.chunk.entries[0].entry).ok()));
  if (!fits) {
    ++consistency.read_dropped;
    return;
  }
  t->answered = true;
  if (!m.chunk.entries.empty()) t->entry = m.chunk.entries[0].entry;
  if (m.vector) {
    t->vv = m.vv;
    // Catch up with it: its chunks bring what this node lacks.
    if (!crdt::covers_all(replica.vv(), t->vv)) {
      if (const Member* mm = membership.by_uid(sender)) {
        anti_entropy.pull(*mm);
        t->next_ask_us = now.mono_us + backoff_us(mm->rtt.rto_us(), ++t->asks);
      }
    }
  }
}

void Engine::Impl::finish_read(uint64_t id, QuorumRead& r) {
  std::vector<std::string> answered, repaired;
  for (const auto& t : r.targets) {
    if (t.answered) answered.push_back(t.name);
  }
  wire::CtlResponse resp;
  resp.req_id = r.req_id;
  wire::Value info = wire::Value::object();
  info.set("level", r.level.to_string());
  info.set("answered", name_list(answered));
  info.set("ms", (now.mono_us - r.start_us) / 1000);
  if (r.list) {
    resp.body = wire::Value::object();
    resp.body.set("entries", list_view(live_values(replica, r.key, now.wall_ms),
                                       live_counters(replica, r.key, now.wall_ms),
                                       live_sets(replica, r.key, now.wall_ms)));
  } else {
    // The winner among this node's entry and the answers.
    crdt::EntryPtr local = replica.map().find(r.key);
    std::optional<crdt::Entry> best = local ? std::optional<crdt::Entry>(*local) : std::nullopt;
    const QuorumRead::Target* from = nullptr;
    for (const auto& t : r.targets) {
      if (t.answered && t.entry && (!best || crdt::wins(*t.entry, *best))) {
        best = t.entry;
        from = &t;
      }
    }
    if (best) {
      crdt::KeyedEntry ke{r.key, *best};
      wire::ChunkMsg fix;
      fix.chunk.origin = best->dot.origin;
      fix.chunk.entries.push_back(ke);
      // This node was behind: it takes the winner as from the member that
      // sent it (judged as that member's chunks are).
      if (from != nullptr) {
        anti_entropy.on_chunk(from->addr, from->uid, fix);
        ++consistency.read_repairs;
        repaired.push_back(self_name);
      }
      for (const auto& t : r.targets) {
        if (!t.answered || (t.entry && !crdt::wins(*best, *t.entry))) continue;
        transport.send(t.addr, fix);
        ++consistency.read_repairs;
        repaired.push_back(t.name);
      }
    }
    info.set("repaired", name_list(repaired));
    if (!best || crdt::dead(*best, replica.reading(now.wall_ms))) {
      resp.code = wire::kCtlNotFound;
      resp.error = "key not found: " + r.key;
    } else {
      resp.body = entry_view(r.key, *best);
      resp.body.set("type", "register");
    }
  }
  if (resp.code == wire::kCtlOk) {
    resp.body.set("read", std::move(info));
    const auto st = staleness_at(now.mono_us);
    resp.body.set("staleness_ms", st ? wire::Value(*st) : wire::Value(nullptr));
  }
  ++consistency.reads_met;
  timers.cancel(TimerKind::kConsistency, id);
  timers.cancel(TimerKind::kConsistency, id | kResendKey);
  out.reply({id, std::move(resp)});
}

// ---- settling: met, or past the deadline ----------------------------------------------

void Engine::Impl::chase(uint64_t id, Waiter& w) {
  uint64_t next = 0;
  for (auto& t : w.targets) {
    if (t.has) continue;
    const Member* m = membership.find(t.name);
    if (m == nullptr || !m->reachable() || !m->verified || replication.pending_for(t.name) > 0) continue;
    if (t.next_ask_us == 0) {
      // Give a push that has just been acknowledged time to be counted.
      t.next_ask_us = now.mono_us + m->rtt.rto_us();
    } else if (now.mono_us >= t.next_ask_us) {
      anti_entropy.exchange(*m);
      t.next_ask_us = now.mono_us + backoff_us(m->rtt.rto_us(), ++t.asks);
    }
    next = next == 0 ? t.next_ask_us : std::min(next, t.next_ask_us);
  }
  if (next == 0) return timers.cancel(TimerKind::kConsistency, id | kResendKey);
  timers.set(TimerKind::kConsistency, id | kResendKey, next);
}

void Engine::Impl::settle_consistency() {
  for (auto it = waits.begin(); it != waits.end();) {
    if (!wait_answer(it->second, it->second.done)) {
      chase(it->first, it->second);
      ++it;
      continue;
    }
    timers.cancel(TimerKind::kConsistency, it->first | kResendKey);
    timers.cancel(TimerKind::kConsistency, it->first);
    out.reply({it->first, std::move(it->second.done)});
    it = waits.erase(it);
  }
  for (auto it = reads.begin(); it != reads.end();) {
    QuorumRead& r = it->second;
    size_t have = 1;
    std::vector<std::string> silent;
    for (const auto& t : r.targets) {
      const bool counted = t.answered && (!r.list || crdt::covers_all(replica.vv(), t.vv));
      have += counted ? 1 : 0;
      if (!counted) silent.push_back(t.name);
    }
    if (have >= r.need) {
      finish_read(it->first, r);
      it = reads.erase(it);
      continue;
    }
    if (now.mono_us < r.deadline_us) {
      ask_again(it->first, r);
      ++it;
      continue;
    }
    timers.cancel(TimerKind::kConsistency, it->first | kResendKey);
    ++consistency.reads_failed;
    const uint64_t ms = (now.mono_us - r.start_us) / 1000;
    std::string why = std::string(r.list ? "list" : "get") + " --read " + r.level.to_string() + ": " +
                      std::to_string(have) + " of " + std::to_string(r.targets.size() + 1) + " members " +
                      (r.list ? "answered and caught up" : "answered") + " within " + std::to_string(ms) +
                      " ms (" + std::to_string(r.need) + " needed); no " + (r.list ? "catch-up" : "answer") +
                      " from: " + names(silent);
    timers.cancel(TimerKind::kConsistency, it->first);
    out.reply({it->first, wire::ctl_error(r.req_id, wire::kCtlUnavailable, std::move(why))});
    it = reads.erase(it);
  }
}

// ---- staleness ------------------------------------------------------------------------

std::optional<uint64_t> Engine::Impl::staleness_at(uint64_t now_us) const {
  uint64_t oldest = now_us;
  for (const auto& [name, m] : membership.members()) {
    if (!m.reachable() || !m.verified) continue;
    const uint64_t at = anti_entropy.covered_us(m.uid);
    if (at == 0) return std::nullopt;
    oldest = std::min(oldest, at);
  }
  return (now_us - oldest) / 1000;
}

std::optional<uint64_t> Engine::staleness_ms(Now now) const { return impl_->staleness_at(now.mono_us); }

wire::Value Engine::Impl::consistency_view(uint64_t now_us) const {
  wire::Value v = wire::Value::object();
  v.set("waits", consistency.waits);
  v.set("waits_met", consistency.waits_met);
  v.set("waits_timed_out", consistency.waits_timed_out);
  v.set("waits_pending", static_cast<uint64_t>(waits.size()));
  v.set("quorum_reads", consistency.reads);
  v.set("quorum_reads_met", consistency.reads_met);
  v.set("quorum_reads_failed", consistency.reads_failed);
  v.set("read_requests_answered", consistency.read_requests_answered);
  v.set("read_dropped", consistency.read_dropped);
  v.set("read_repairs", consistency.read_repairs);
  const auto st = staleness_at(now_us);
  v.set("staleness_ms", st ? wire::Value(*st) : wire::Value(nullptr));
  return v;
}

}  // namespace meshkv::node
