// Property tests of the CRDT over generated operation histories.
//
// Each history: 3-7 replicas with skewed physical clocks write and delete a
// small set of keys; pushes and anti-entropy chunks travel through a "network"
// bag that loses, duplicates and reorders them. After every delivery the
// safety invariant is checked; after the history the network heals and all
// replicas must equal the reference model. A failure names its seed;
// MESHKV_PROP_SEED=<seed> replays just that history, MESHKV_PROP_HISTORIES=<n>
// changes how many run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "crdt/replica.h"

using namespace meshkv::crdt;

namespace {

constexpr uint64_t kEpochMs = 1'700'000'000'000;
constexpr int kHour = 3'600'000;           // ms
constexpr uint64_t kMaxSkewMs = 60'000;  // Replica's default bound

using State = std::vector<std::pair<std::string, Entry>>;

State snapshot(const LwwMap& m) {
  State s;
  m.for_each([&](std::string_view k, const EntryView& e) { s.emplace_back(k, e); });
  std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return s;
}

LwwMap to_map(const State& s) {
  LwwMap m;
  for (const auto& [k, e] : s) m.merge(k, e);
  return m;
}

State merged(const State& a, const State& b) {
  LwwMap m = to_map(a);
  for (const auto& [k, e] : b) m.merge(k, e);
  return snapshot(m);
}

struct PushMsg {
  int to;
  KeyedEntry ke;
};
struct ChunkMsg {
  int to;
  Chunk chunk;
};
using Msg = std::variant<PushMsg, ChunkMsg>;

std::string describe(const EntryView& e) {
  std::ostringstream os;
  os << (e.tombstone ? "tombstone" : "value '" + std::string(e.value) + "'") << " hlc=" << e.hlc.physical()
     << "." << e.hlc.logical() << " dot=(" << e.dot.origin << "," << e.dot.seq << ")";
  return os.str();
}

class History {
 public:
  explicit History(uint64_t seed) : rng_(seed) {
    const int n = pick(3, 7);
    for (int i = 0; i < n; ++i) {
      // Origins are random 64-bit numbers in the real system; small distinct
      // ones here make tie-breaks between equal HLCs frequent.
      reps_.emplace_back(static_cast<Origin>(100 + i));
      skew_.push_back(pick(-200, 200));  // milliseconds, within the HLC bound
      max_seen_.push_back(Hlc{});
      last_write_.push_back(Hlc{});
    }
    // Sometimes one replica's clock is an hour off, far beyond the bound its
    // peers adopt: its entries still merge, and a write elsewhere that
    // replaces one of them must still win over it.
    if (chance(0.3)) skew_[static_cast<size_t>(pick(0, n - 1))] = chance(0.5) ? kHour : -kHour;
    keys_ = pick(1, 6);
  }

  // Returns an empty string, or what went wrong.
  std::string run() {
    const int steps = pick(10, 80);
    for (int step = 0; step < steps; ++step) {
      std::string err = act();
      if (!err.empty()) return "step " + std::to_string(step) + ": " + err;
    }
    return heal_and_check();
  }

  const std::vector<State>& samples() const { return samples_; }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  uint64_t phys(int r) const { return static_cast<uint64_t>(static_cast<int64_t>(now_) + skew_[static_cast<size_t>(r)]); }

  std::string act() {
    now_ += static_cast<uint64_t>(pick(0, 3));  // several writes per ms: logical counters matter
    const int roll = pick(0, 99);
    if (roll < 35) return write(pick(0, static_cast<int>(reps_.size()) - 1));
    if (roll < 80) return deliver_one(/*lossy=*/true);
    if (roll < 95) {
      anti_entropy(/*lossy=*/true);
      return {};
    }
    samples_.push_back(snapshot(reps_[static_cast<size_t>(pick(0, static_cast<int>(reps_.size()) - 1))].map()));
    return {};
  }

  std::string write(int r) {
    auto& rep = reps_[static_cast<size_t>(r)];
    std::string key = "k" + std::to_string(pick(0, keys_ - 1));
    std::optional<std::string> value;
    if (chance(0.75)) value = "v" + std::to_string(log_.size());
    // Some values expire within the history's span (a few ms to ~100 ms).
    const uint64_t ttl = value && chance(0.3) ? static_cast<uint64_t>(pick(1, 100)) : 0;
    auto res = rep.write(key, value ? std::optional<std::string_view>(*value) : std::nullopt, phys(r), ttl);
    if (!res.ok()) return "write failed: " + res.status().to_string();
    // HLC: a write is later than everything its replica has written or
    // adopted (seen within the skew bound).
    if (!(res->entry.hlc > max_seen_[static_cast<size_t>(r)])) {
      return "HLC went backwards at replica " + std::to_string(r) + ": " + describe(res->entry);
    }
    max_seen_[static_cast<size_t>(r)] = rep.clock().last();
    // Per origin, every write is above the origin's earlier writes, also
    // when one of them was bumped above an entry from a clock far ahead.
    Hlc& mine = last_write_[static_cast<size_t>(r)];
    if (!(res->entry.hlc > mine)) {
      return "replica " + std::to_string(r) + " wrote " + describe(res->entry) +
             " below its own earlier write at " + std::to_string(mine.raw);
    }
    mine = res->entry.hlc;
    // A write supersedes what its replica showed: read-your-write, however
    // far ahead the replaced entry's clock was.
    EntryPtr now_there = rep.map().find(key);
    if (now_there == nullptr || !(*now_there == res->entry)) {
      return "replica " + std::to_string(r) + " does not show its own write " + describe(res->entry) +
             " of " + key + (now_there ? "; it shows " + describe(*now_there) : "");
    }
    log_.push_back(*res);
    for (size_t to = 0; to < reps_.size(); ++to) {
      if (static_cast<int>(to) != r) net_.push_back(PushMsg{static_cast<int>(to), *res});
    }
    return {};
  }

  void anti_entropy(bool lossy) {
    const int n = static_cast<int>(reps_.size());
    const int a = pick(0, n - 1);
    int b = pick(0, n - 2);
    if (b >= a) ++b;
    // b asks a: a answers with what b's vector does not cover, in small chunks.
    const size_t max_bytes = static_cast<size_t>(pick(1, 120));
    auto chunks = reps_[static_cast<size_t>(a)].delta(reps_[static_cast<size_t>(b)].vv(), max_bytes);
    for (auto& c : chunks) {
      if (lossy && chance(0.2)) continue;
      net_.push_back(ChunkMsg{b, std::move(c)});
    }
  }

  std::string deliver_one(bool lossy) {
    if (net_.empty()) return {};
    size_t i = static_cast<size_t>(pick(0, static_cast<int>(net_.size()) - 1));
    Msg m = net_[i];
    const bool dup = lossy && chance(0.1);
    if (!dup) {
      net_[i] = std::move(net_.back());
      net_.pop_back();
    }
    if (lossy && chance(0.2)) return {};
    return deliver(m);
  }

  std::string deliver(const Msg& m) {
    int to = std::visit([](const auto& x) { return x.to; }, m);
    auto& rep = reps_[static_cast<size_t>(to)];
    if (const auto* p = std::get_if<PushMsg>(&m)) {
      note_seen(to, p->ke.entry.hlc);
      rep.apply_entry(p->ke.key, p->ke.entry, phys(to));
    } else {
      const auto& c = std::get<ChunkMsg>(m).chunk;
      for (const auto& ke : c.entries) note_seen(to, ke.entry.hlc);
      auto st = rep.apply_chunk(c, phys(to));
      if (!st.ok()) return "a valid chunk was rejected: " + st.to_string();
    }
    return check_invariant();
  }

  void note_seen(int r, Hlc h) {
    if (h.physical() > phys(r) + kMaxSkewMs) return;  // refused by the clock, not adopted
    auto& m = max_seen_[static_cast<size_t>(r)];
    if (h > m) m = h;
  }

  // The reference model: per key, the write with the greatest (hlc, origin)
  // among the writes made so far. Written out here rather than calling
  // crdt::wins, so that a broken order in the library cannot agree with itself.
  std::map<std::string, const KeyedEntry*> winners() const {
    std::map<std::string, const KeyedEntry*> w;
    for (const auto& ke : log_) {
      auto& cur = w[ke.key];
      if (!cur || std::pair(ke.entry.hlc.raw, ke.entry.dot.origin) >
                      std::pair(cur->entry.hlc.raw, cur->entry.dot.origin)) {
        cur = &ke;
      }
    }
    return w;
  }

  // Once a replica's context covers a key's winning dot, its state holds the
  // winner: a lost chunk never lets a vector claim what the state lacks.
  std::string check_invariant() const {
    for (const auto& [key, w] : winners()) {
      for (size_t r = 0; r < reps_.size(); ++r) {
        if (!reps_[r].context().covers(w->entry.dot)) continue;
        EntryPtr have = reps_[r].map().find(key);
        if (!have || !(*have == w->entry)) {
          return "replica " + std::to_string(r) + " covers the winning dot of '" + key +
                 "' (" + describe(w->entry) + ") but holds " +
                 (have ? describe(*have) : std::string("nothing"));
        }
      }
    }
    return {};
  }

  std::string heal_and_check() {
    while (!net_.empty()) {
      if (auto err = deliver_one(/*lossy=*/false); !err.empty()) return "heal: " + err;
    }
    const size_t n = reps_.size();
    for (int round = 0; round < 2; ++round) {
      for (size_t b = 0; b < n; ++b) {
        for (size_t a = 0; a < n; ++a) {
          if (a == b) continue;
          for (const auto& c : reps_[a].delta(reps_[b].vv(), 1400)) {
            if (auto err = deliver(ChunkMsg{static_cast<int>(b), c}); !err.empty()) return "heal: " + err;
          }
        }
      }
    }
    // Converged, and to exactly the reference model.
    const auto w = winners();
    std::map<Origin, uint64_t> writes_by;
    for (const auto& ke : log_) writes_by[ke.entry.dot.origin]++;
    const State first = snapshot(reps_[0].map());
    for (size_t r = 0; r < n; ++r) {
      const State s = snapshot(reps_[r].map());
      if (s != first) return "replica " + std::to_string(r) + " differs from replica 0 after healing";
      if (s.size() != w.size()) return "replica " + std::to_string(r) + " has " + std::to_string(s.size()) + " keys, model has " + std::to_string(w.size());
      for (const auto& [key, e] : s) {
        auto it = w.find(key);
        if (it == w.end() || !(it->second->entry == e)) {
          return "replica " + std::to_string(r) + " key '" + key + "' holds " + describe(e) +
                 ", model says " + (it == w.end() ? "absent" : describe(it->second->entry));
        }
      }
      for (const auto& [o, count] : writes_by) {
        if (reps_[r].vv().get(o) != count) {
          return "replica " + std::to_string(r) + " vector has " + std::to_string(reps_[r].vv().get(o)) +
                 " for origin " + std::to_string(o) + ", expected " + std::to_string(count);
        }
      }
      if (reps_[r].context().cloud_size() != 0) return "dots left in the cloud after healing";
    }
    return check_expiry(w);
  }

  // Expiry instants: at physical times around each winner's expiry, every
  // replica reads the key as the model says. The model's rule, written out:
  // a value written at HLC (p, l) with ttl t is live strictly before the HLC
  // instant (p + t, l), judged against the reading (T, 0) of a clock that
  // has not run past T.
  std::string check_expiry(const std::map<std::string, const KeyedEntry*>& w) const {
    for (const auto& [key, ke] : w) {
      const Entry& e = ke->entry;
      const uint64_t p = e.hlc.raw >> 16, l = e.hlc.raw & 0xffff;
      for (uint64_t t : {p, p + e.ttl_ms - 1, p + e.ttl_ms, p + e.ttl_ms + 1, p + 100'000}) {
        const bool model_live = !e.tombstone && (e.ttl_ms == 0 || t < p + e.ttl_ms || (t == p + e.ttl_ms && l > 0));
        for (size_t r = 0; r < reps_.size(); ++r) {
          EntryPtr have = reps_[r].map().find(key);
          if (have == nullptr) return "replica " + std::to_string(r) + " lost key '" + key + "'";
          // At the reading (T, 0): what a node whose clock has not run past
          // T judges by.
          const bool replica_live = !dead(*have, Hlc::make(t, 0));
          if (replica_live != model_live) {
            return "replica " + std::to_string(r) + " reads '" + key + "' (" + describe(e) + " ttl " +
                   std::to_string(e.ttl_ms) + ") as " + (replica_live ? "live" : "gone") + " at " +
                   std::to_string(t) + ", the model says otherwise";
          }
          // live() judges at the replica's own reading: never earlier than
          // the physical time given.
          const bool via_live = reps_[r].live(key, t) != nullptr;
          if (via_live && !model_live) {
            return "replica " + std::to_string(r) + " serves expired '" + key + "' at " + std::to_string(t);
          }
        }
      }
    }
    return {};
  }

  std::mt19937_64 rng_;
  std::vector<Replica> reps_;
  std::vector<int> skew_;
  std::vector<Hlc> max_seen_;
  std::vector<Hlc> last_write_;  // per replica: the HLC of its latest write
  int keys_ = 1;
  uint64_t now_ = kEpochMs;
  std::vector<KeyedEntry> log_;
  std::vector<Msg> net_;
  std::vector<State> samples_;
};

uint64_t env_or(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : dflt;
}

}  // namespace

TEST_CASE("crdt: generated histories converge to the last-writer-wins model") {
  const uint64_t base = 0x6d65736876ULL;
  const uint64_t only = env_or("MESHKV_PROP_SEED", 0);
  const uint64_t count = only ? 1 : env_or("MESHKV_PROP_HISTORIES", 10000);
  uint64_t ran = 0;
  uint64_t law_checks = 0;
  for (uint64_t h = 0; h < count; ++h) {
    const uint64_t seed = only ? only : base + h;
    History hist(seed);
    const std::string err = hist.run();
    if (!err.empty()) {
      FAIL("history seed " << seed << ": " << err << "\n  replay: MESHKV_PROP_SEED=" << seed
                           << " ./meshkv_tests -tc='crdt: generated*'");
    }
    // Merge laws over states sampled mid-history (partial, divergent views).
    const auto& s = hist.samples();
    for (size_t i = 0; i + 2 < s.size(); i += 3) {
      const State &a = s[i], &b = s[i + 1], &c = s[i + 2];
      if (merged(a, b) != merged(b, a)) FAIL("history seed " << seed << ": merge is not commutative");
      if (merged(merged(a, b), c) != merged(a, merged(b, c))) {
        FAIL("history seed " << seed << ": merge is not associative");
      }
      if (merged(a, a) != a) FAIL("history seed " << seed << ": merge is not idempotent");
      ++law_checks;
    }
    ++ran;
  }
  MESSAGE("histories: " << ran << ", merge-law triples: " << law_checks);
  CHECK(ran == count);
  if (!only && count >= 10000) CHECK(law_checks > 1000);
}
