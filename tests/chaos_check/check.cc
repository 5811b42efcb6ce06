// The checks of check.h. Keys are visited in sorted order and nodes in the
// order of `modes`, so a report is the same for the same history.
#include "chaos_check/check.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "node/control.h"

namespace meshkv::chaos {

bool newer(const Stamp& a, const Stamp& b) {
  crdt::Entry x, y;
  x.hlc = a.hlc;
  x.dot.origin = a.origin;
  y.hlc = b.hlc;
  y.dot.origin = b.origin;
  return crdt::wins(x, y);
}

std::string to_string(const Stamp& s) {
  return "hlc " + node::format_hlc(s.hlc) + " origin " + node::format_uid(s.origin);
}

size_t Report::count(char check) const {
  return static_cast<size_t>(std::count_if(violations.begin(), violations.end(),
                                           [&](const Violation& v) { return v.check == check; }));
}

namespace {

struct Checker {
  const History& h;
  const Options& o;
  Report r;

  void fail(char check, std::string what) { r.violations.push_back({check, std::move(what)}); }
};

// "set ka=v2 via n0 at 1110 hlc 200.0 origin 00000000000000aa". REQUIRES: acked.
std::string describe(const Write& w) {
  return std::string(w.del ? "del " : "set ") + w.key + "=" + w.value + " via " + w.node + " at " +
         std::to_string(w.end_ms) + " " + to_string(*w.stamp);
}

// ---- (a) ----------------------------------------------------------------------

using Listing = std::map<std::string, const Final*>;  // key -> entry

Listing listing_of(const History& h, const std::string& node) {
  Listing out;
  for (const Final& f : h.finals) {
    if (f.node == node) out[f.key] = &f;
  }
  return out;
}

// The first key on which two listings differ, "" if none.
std::string first_difference(const Listing& a, const Listing& b) {
  std::set<std::string> keys;
  for (const auto& [k, f] : a) keys.insert(k);
  for (const auto& [k, f] : b) keys.insert(k);
  for (const std::string& k : keys) {
    const auto x = a.find(k), y = b.find(k);
    if (x == a.end() || y == b.end()) return k;
    if (x->second->value != y->second->value || !(x->second->stamp == y->second->stamp)) return k;
  }
  return "";
}

void check_digests(Checker& c) {
  std::map<std::string, std::string> digest;
  for (const Digest& d : c.h.digests) digest[d.node] = d.digest;
  const NodeMode* first = nullptr;
  for (const NodeMode& m : c.h.modes) {
    const auto it = digest.find(m.node);
    if (it == digest.end() || it->second == "silent") {
      c.fail('a', m.node + " reported no digest");
    } else if (first == nullptr) {
      first = &m;
    } else if (it->second != digest[first->node]) {
      c.fail('a', m.node + " reports digest " + it->second + ", " + first->node + " " + digest[first->node]);
    }
  }
  if (first == nullptr || c.r.count('a') > 0) {
    c.r.summary.push_back("digests: not all " + std::to_string(c.h.modes.size()) + " nodes report the same");
    return;
  }
  // Equal digests must mean equal states; a listing that differs says the
  // digest misses something.
  const Listing base = listing_of(c.h, first->node);
  for (const NodeMode& m : c.h.modes) {
    const std::string k = first_difference(base, listing_of(c.h, m.node));
    if (!k.empty()) {
      c.fail('a', first->node + " and " + m.node + " report the same digest but list key " + k + " differently");
    }
  }
  c.r.summary.push_back("digests: all " + std::to_string(c.h.modes.size()) + " nodes report " +
                        digest[first->node] + (c.r.count('a') ? "" : " and list the same entries"));
}

// ---- (b), and (c)'s uniqueness --------------------------------------------------

struct KeyFacts {
  const Write* best = nullptr;     // the greatest acknowledged write not at risk
  std::optional<Stamp> risky_best;  // ... and the greatest at risk, of any op
  std::optional<Stamp> risky_del;   // ... and the greatest deletion at risk
  bool unacked_del = false;
};

using KeyValue = std::pair<std::string, std::string>;

struct Facts {
  std::map<std::string, KeyFacts> keys;  // every key written, acknowledged or not
  std::map<KeyValue, Stamp> acked_values;
  std::set<KeyValue> unacked_values;
  size_t acked = 0, unacked = 0, at_risk = 0;
  size_t risk_lost = 0, by_unacked_del = 0;  // counted on the first node only
  std::string risk_keys;
};

// An in-memory node killed after the write began may have taken the write
// with it: its acknowledgement promised nothing beyond the process.
// The same holds for counters (check (e)): each process start is a new
// origin, so what the killed process counted and had not yet sent is gone.
bool at_risk(const History& h, const std::string& node, int64_t start_ms) {
  const bool memory = std::any_of(h.modes.begin(), h.modes.end(),
                                  [&](const NodeMode& m) { return m.node == node && m.in_memory; });
  return memory && std::any_of(h.kills.begin(), h.kills.end(),
                               [&](const Kill& k) { return k.node == node && k.at_ms >= start_ms; });
}

void note_acked(Checker& c, Facts& f, const Write& w) {
  const Stamp& s = *w.stamp;
  KeyFacts& k = f.keys[w.key];
  ++f.acked;
  if (!w.del) f.acked_values[{w.key, w.value}] = s;
  if (at_risk(c.h, w.node, w.start_ms)) {
    ++f.at_risk;
    if (!k.risky_best || newer(s, *k.risky_best)) k.risky_best = s;
    if (w.del && (!k.risky_del || newer(s, *k.risky_del))) k.risky_del = s;
  } else if (k.best == nullptr || newer(s, *k.best->stamp)) {
    k.best = &w;
  }
}

Facts gather(Checker& c) {
  Facts f;
  std::map<std::pair<uint64_t, crdt::Origin>, const Write*> seen;
  for (const Write& w : c.h.writes) {
    KeyFacts& k = f.keys[w.key];
    if (!w.acked()) {
      ++f.unacked;
      if (w.del) k.unacked_del = true;
      else f.unacked_values.insert({w.key, w.value});
      continue;
    }
    const auto [it, fresh] = seen.try_emplace({w.stamp->hlc.raw, w.stamp->origin}, &w);
    if (!fresh) {
      c.fail('c', "two acknowledged writes share (hlc, origin): " + describe(*it->second) + " and " + describe(w));
    }
    note_acked(c, f, w);
  }
  return f;
}

void judge_held(Checker& c, Facts& f, const KeyFacts& k, const Final& x, bool first) {
  const std::string held = x.node + " holds " + x.key + "=" + x.value;
  if (const auto a = f.acked_values.find({x.key, x.value}); a != f.acked_values.end()) {
    if (!(a->second == x.stamp)) {
      c.fail('b', held + " with " + to_string(x.stamp) + ", acknowledged with " + to_string(a->second));
    }
  } else if (f.unacked_values.count({x.key, x.value}) == 0) {
    c.fail('b', held + ", a value never written to that key");
  }
  if (k.best != nullptr && newer(*k.best->stamp, x.stamp)) {
    c.fail('b', held + " (" + to_string(x.stamp) + "), older than the acknowledged " + describe(*k.best));
  }
  if (first && k.risky_best && newer(*k.risky_best, x.stamp)) {
    ++f.risk_lost;
    f.risk_keys += " " + x.key;
  }
}

void judge_absent(Checker& c, Facts& f, const KeyFacts& k, const std::string& node, const std::string& key,
                  bool first) {
  if (k.best == nullptr || k.best->del) return;
  // A deletion explains the absence: one acknowledged at risk and newer, or
  // one never acknowledged (it may have been applied all the same).
  if (k.risky_del && newer(*k.risky_del, *k.best->stamp)) return;
  if (k.unacked_del) {
    f.by_unacked_del += first;
    return;
  }
  c.fail('b', node + " has no value for " + key + "; the acknowledged " + describe(*k.best) + " is lost");
}

void check_values(Checker& c) {
  Facts f = gather(c);
  std::set<std::string> strays;
  for (const Final& x : c.h.finals) {
    if (f.keys.count(x.key) == 0 && strays.insert(x.key).second) {
      c.fail('b', "key " + x.key + " is on " + x.node + " but was never written");
    }
  }
  for (size_t j = 0; j < c.h.modes.size(); ++j) {
    const std::string& node = c.h.modes[j].node;
    const Listing held = listing_of(c.h, node);
    for (const auto& [key, k] : f.keys) {
      const auto it = held.find(key);
      if (it != held.end()) judge_held(c, f, k, *it->second, j == 0);
      else judge_absent(c, f, k, node, key, j == 0);
    }
  }
  c.r.summary.push_back(
      "writes: " + std::to_string(f.acked) + " acknowledged, " + std::to_string(f.unacked) + " not; " +
      std::to_string(f.at_risk) + " acknowledged by in-memory nodes killed afterwards (" +
      std::to_string(f.risk_lost) + " keys lost such a write:" + (f.risk_lost ? f.risk_keys : " none") + "); " +
      std::to_string(f.by_unacked_del) + " keys absent where only an unacknowledged delete explains it");
}

// ---- (c): clocks ------------------------------------------------------------------

// Every acknowledged write of one origin must carry an HLC above those of
// the writes the origin acknowledged before it began: the clock never goes
// back, across restarts of a durable origin too.
void check_origin_clock(Checker& c, std::vector<const Write*> ws) {
  std::vector<const Write*> by_end = ws;
  std::sort(ws.begin(), ws.end(), [](const Write* a, const Write* b) { return a->start_ms < b->start_ms; });
  std::sort(by_end.begin(), by_end.end(), [](const Write* a, const Write* b) { return a->end_ms < b->end_ms; });
  const Write* before = nullptr;  // the greatest write ended before the current one began
  size_t e = 0;
  for (const Write* w : ws) {
    for (; e < by_end.size() && by_end[e]->end_ms < w->start_ms; ++e) {
      if (before == nullptr || newer(*by_end[e]->stamp, *before->stamp)) before = by_end[e];
    }
    if (before != nullptr && !newer(*w->stamp, *before->stamp)) {
      c.fail('c', "origin " + node::format_uid(w->stamp->origin) + ": " + describe(*w) + " (begun at " +
                      std::to_string(w->start_ms) + ") is not above the earlier " + describe(*before));
    }
  }
}

void check_clocks(Checker& c) {
  std::map<crdt::Origin, std::vector<const Write*>> by_origin;
  size_t acked = 0;
  for (const Write& w : c.h.writes) {
    if (!w.acked()) continue;
    by_origin[w.stamp->origin].push_back(&w);
    ++acked;
  }
  for (auto& [origin, ws] : by_origin) check_origin_clock(c, std::move(ws));
  c.r.summary.push_back("clocks: " + std::to_string(acked) + " acknowledged writes from " +
                        std::to_string(by_origin.size()) + " origins, " +
                        (c.r.count('c') ? "not all" : "all") + " unique and increasing per origin");
}

// ---- (d) ----------------------------------------------------------------------------

bool disturbed(const Checker& c, const std::string& node, int64_t t) {
  return std::any_of(c.h.disturbances.begin(), c.h.disturbances.end(), [&](const Disturbance& d) {
    return d.node == node && d.from_ms <= t && t <= d.to_ms + c.o.grace_ms;
  });
}

void check_membership(Checker& c) {
  size_t suspect = 0, excused = 0, bad = 0;
  for (const Sample& s : c.h.samples) {
    suspect += s.state == "suspect";
    if (s.state != "dead" && s.state != "left") continue;
    if (disturbed(c, s.observer, s.at_ms) || disturbed(c, s.member, s.at_ms)) {
      ++excused;
      continue;
    }
    ++bad;
    char at[48];
    std::snprintf(at, sizeof at, " (+%.1fs) ", static_cast<double>(s.at_ms - c.o.t0_ms) / 1000.0);
    c.fail('d', "at " + std::to_string(s.at_ms) + at + s.observer + " saw " + s.member + " " + s.state +
                    ", though both had been undisturbed for " + std::to_string(c.o.grace_ms) + " ms");
  }
  c.r.summary.push_back("membership: " + std::to_string(c.h.samples.size()) + " samples, " +
                        std::to_string(suspect) + " suspect, " + std::to_string(excused) +
                        " dead/left while disturbed (excused), " + std::to_string(bad) + " not excused");
}

// ---- (e) ----------------------------------------------------------------------------

// What the increments of one counter key allow its total to be.
struct CounterBounds {
  int64_t exact = 0;           // acknowledged, not at risk: these count, every one
  int64_t maybe_down = 0;      // the uncertain decrements (<= 0), each counted or not
  int64_t maybe_up = 0;        // the uncertain increments (>= 0), each counted or not
  int64_t risky_up = 0;        // ... of those, acknowledged ones at risk (>= 0)
  int64_t risky_down = 0;      // ... and acknowledged decrements at risk (<= 0)
  int64_t lo() const { return exact + maybe_down; }
  int64_t hi() const { return exact + maybe_up; }
};

// "[17, 25] (acknowledged 20, uncertain -3/+5)".
std::string describe(const CounterBounds& b) {
  return "[" + std::to_string(b.lo()) + ", " + std::to_string(b.hi()) + "] (acknowledged " +
         std::to_string(b.exact) + ", uncertain " + std::to_string(b.maybe_down) + "/+" +
         std::to_string(b.maybe_up) + ")";
}

void check_counters(Checker& c) {
  // parse_file bounds each delta by 2^32, so no sum of fewer than 2^31
  // attempts overflows.
  std::map<std::string, CounterBounds> keys;
  size_t acked = 0, refused = 0, unknown = 0, risky = 0, risk_lost = 0;
  int64_t acked_sum = 0;
  for (const Incr& x : c.h.incrs) {
    CounterBounds& b = keys[x.key];
    const bool risk = x.acked() && at_risk(c.h, x.node, x.start_ms);
    acked += x.acked();
    refused += x.refused;
    unknown += !x.acked() && !x.refused;
    risky += risk;
    if (x.refused) continue;  // nothing applied: it must not count
    if (x.acked()) acked_sum += x.delta;
    if (x.acked() && !risk) {
      b.exact += x.delta;
      continue;
    }
    (x.delta > 0 ? b.maybe_up : b.maybe_down) += x.delta;
    if (risk) (x.delta > 0 ? b.risky_up : b.risky_down) += x.delta;
  }
  std::set<std::string> strays;
  for (const CounterFinal& f : c.h.counters) {
    if (keys.count(f.key) == 0 && strays.insert(f.key).second) {
      c.fail('e', "counter " + f.key + " is on " + f.node + " but was never incremented");
    }
  }
  std::string example;
  for (const auto& [key, b] : keys) {
    std::optional<int64_t> first;
    for (size_t j = 0; j < c.h.modes.size(); ++j) {
      const std::string& node = c.h.modes[j].node;
      int64_t total = 0;  // not listed: nothing counted there (or all undone)
      for (const CounterFinal& f : c.h.counters) {
        if (f.node == node && f.key == key) total = f.total;
      }
      const std::string held = node + " counts " + key + "=" + std::to_string(total);
      if (total < b.lo() || total > b.hi()) {
        c.fail('e', held + ", outside " + describe(b));
      }
      if (!first) {
        first = total;
        // Outside the bounds the at-risk increments would set if they were
        // exact: only a lost increment of a killed in-memory node explains it.
        risk_lost += total < b.lo() + b.risky_up || total > b.hi() + b.risky_down;
        if (example.empty()) example = "; e.g. " + held + " in " + describe(b);
      } else if (total != *first) {
        c.fail('e', held + ", " + c.h.modes[0].node + " " + std::to_string(*first));
      }
    }
  }
  c.r.summary.push_back("counters: " + std::to_string(keys.size()) + " keys, " + std::to_string(acked) +
                        " increments acknowledged (sum " + std::to_string(acked_sum) + "), " +
                        std::to_string(refused) + " refused, " + std::to_string(unknown) + " of unknown outcome; " +
                        std::to_string(risky) +
                        " acknowledged by in-memory nodes killed afterwards (" + std::to_string(risk_lost) +
                        " keys lost such an increment); " +
                        (c.r.count('e') ? "not every total" : "every total") +
                        " within its bounds and equal on all nodes" + example);
}

void check_sets(Checker& c) {
  using KM = std::pair<std::string, std::string>;  // (set key, member)
  std::set<std::string> keys;
  std::set<KM> offered;  // the object of an add that was not refused
  size_t acked = 0, refused = 0, unknown = 0, risky = 0, must = 0;
  for (const SetOp& x : c.h.sops) {
    keys.insert(x.key);
    acked += x.acked();
    refused += x.refused;
    unknown += !x.acked() && !x.refused;
    if (x.add && !x.refused) offered.insert({x.key, x.member});
  }
  // Members that must be held: an acknowledged add that no remove could
  // have seen.
  std::set<KM> required;
  for (const SetOp& a : c.h.sops) {
    if (!a.add || !a.acked()) continue;
    if (at_risk(c.h, a.node, a.start_ms)) {
      ++risky;
      continue;
    }
    const bool maybe_seen = std::any_of(c.h.sops.begin(), c.h.sops.end(), [&](const SetOp& r) {
      return !r.add && !r.refused && r.key == a.key && r.member == a.member &&
             (!r.acked() || r.end_ms >= a.start_ms);
    });
    if (!maybe_seen) required.insert({a.key, a.member});
  }
  must = required.size();
  std::map<std::string, std::set<KM>> held;  // by node
  for (const NodeMode& m : c.h.modes) held[m.node];
  for (const SetFinal& f : c.h.sets) {
    held[f.node].insert({f.key, f.member});
    if (!offered.count({f.key, f.member})) {
      c.fail('f', f.node + " holds " + f.member + " in set " + f.key + ", which no add that was not refused named");
    }
  }
  size_t members = 0;
  bool first = true;
  for (const auto& [node, kms] : held) {
    for (const KM& km : required) {
      if (!kms.count(km)) {
        c.fail('f', node + " lacks " + km.second + " in set " + km.first +
                        ": its add was acknowledged and no remove could have seen it");
      }
    }
    if (first) {
      members = kms.size();
      first = false;
    } else if (kms != held.begin()->second) {
      c.fail('f', node + " holds " + std::to_string(kms.size()) + " set members, " + held.begin()->first + " " +
                      std::to_string(held.begin()->second.size()) + ", not the same");
    }
  }
  c.r.summary.push_back("sets: " + std::to_string(keys.size()) + " keys, " + std::to_string(acked) +
                        " adds and removes acknowledged, " + std::to_string(refused) + " refused, " +
                        std::to_string(unknown) + " of unknown outcome; " + std::to_string(must) +
                        " members required by an acknowledged add no remove could have seen (" +
                        std::to_string(risky) + " adds by in-memory nodes killed afterwards not required); " +
                        std::to_string(members) + " members held on the first node; " +
                        (c.r.count('f') ? "not every node agrees and holds them" : "every node agrees and holds them"));
}

}  // namespace

Report check(const History& h, const Options& o) {
  Checker c{h, o, {}};
  check_digests(c);
  check_values(c);
  check_clocks(c);
  check_membership(c);
  check_counters(c);
  check_sets(c);
  return std::move(c.r);
}

}  // namespace meshkv::chaos
