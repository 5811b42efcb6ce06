// The chaos checker (tests/chaos_check/) on hand-made histories: one it must
// pass, and one for each violation it must catch, so that a passing chaos
// seed means something.
#include <doctest/doctest.h>

#include <string>

#include "chaos_check/check.h"

using namespace meshkv::chaos;

namespace {

// Two nodes, n1 in-memory and killed at 1250. Origin aa is n0's, bb n1's.
// writer seq start end node op key value rc phys logical origin
constexpr const char* kWrites =
    "1 1 1000 1010 n0 set ka v1 0 100 0 00000000000000aa\n"
    "1 2 1100 1110 n0 set ka v2 0 200 0 00000000000000aa\n"
    "1 3 1200 1210 n1 set kb v3 0 300 0 00000000000000bb\n"
    "1 4 1300 1310 n0 set kc v4 0 400 0 00000000000000aa\n"
    "1 5 1400 1410 n0 del kc - 0 500 0 00000000000000aa\n"
    "1 6 1500 2510 n1 set kd v6 3 - - -\n"
    "2 1 1600 1610 n0 set ke v7 0 600 0 00000000000000aa\n"
    "2 2 1700 1710 n1 set ke v8 0 600 0 00000000000000bb\n";

// ka: its latest acknowledged write; kb: acknowledged by n1, killed later,
// so it may be (and is) gone; kc: deleted; kd: an unacknowledged write;
// ke: a tie of HLCs, won by the greater origin.
constexpr const char* kGood =
    "ka v2 200 0 00000000000000aa\n"
    "kd v6 900 0 00000000000000cc\n"
    "ke v8 600 0 00000000000000bb\n";

// client seq start end node key delta rc answer. c0: +5 and +3
// acknowledged, -2 acknowledged by n1 before its kill (at risk), +4 of
// unknown outcome; so c0 lies in [6, 12]. c1: -1 acknowledged, -6 unknown,
// +3 refused (never counts): [-7, -1].
constexpr const char* kIncrs =
    "1 1 1000 1010 n0 c0 5 0 applied\n"
    "1 2 1020 1030 n1 c0 -2 0 applied\n"
    "1 3 1300 1310 n1 c0 3 0 applied\n"
    "1 4 1400 2400 n0 c0 4 3 unknown\n"
    "1 5 1500 1510 n0 c1 -1 0 applied\n"
    "1 6 1600 2600 n1 c1 -6 3 unknown\n"
    "1 7 1700 1705 n0 c1 3 3 refused\n";

constexpr const char* kCounters = "c0 10\nc1 -7\n";

// client seq start end node key op member rc answer. s0: m1 added
// (acknowledged), never removed: required. m2 added at 1100, removed by a
// remove that ended at 1050, before the add began: still required. m3
// added, then removed by an acknowledged remove that ended after the add
// began: may be gone. m4 added by n1 before its kill: not required. m5 only
// in a refused add: must not be held. m6: an add of unknown outcome: may be
// held. s1: m1 added, then a remove of unknown outcome: may be gone.
constexpr const char* kSetOps =
    "1 1 1000 1010 n0 s0 sadd m1 0 applied\n"
    "1 2 1040 1050 n0 s0 srem m2 0 applied\n"
    "1 3 1100 1110 n0 s0 sadd m2 0 applied\n"
    "1 4 1120 1130 n0 s0 sadd m3 0 applied\n"
    "1 5 1125 1140 n0 s0 srem m3 0 applied\n"
    "1 6 1150 1160 n1 s0 sadd m4 0 applied\n"
    "1 7 1170 1175 n0 s0 sadd m5 3 refused\n"
    "1 8 1180 2180 n0 s0 sadd m6 3 unknown\n"
    "1 9 1300 1310 n0 s1 sadd m1 0 applied\n"
    "1 10 1400 2400 n1 s1 srem m1 3 unknown\n";

constexpr const char* kSets = "s0 m1\ns0 m2\ns0 m6\n";

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "the fixture has no '" << from << "'");
  return s.replace(at, from.size(), to);
}

std::string on(const std::string& node, const std::string& state) {
  std::string out;
  for (size_t i = 0; i < state.size();) {
    const size_t nl = state.find('\n', i);
    out += node + " " + state.substr(i, nl - i) + "\n";
    i = nl == std::string::npos ? state.size() : nl + 1;
  }
  return out;
}

struct Run {
  std::string modes = "n0 durable\nn1 memory\n";
  std::string kills = "1250 kill n1\n";
  std::string writes = kWrites;
  std::string finals = on("n0", kGood) + on("n1", kGood);
  std::string digests = "n0 5eed\nn1 5eed\n";
  std::string disturbances = "n1 down 1000 2000\n";
  std::string samples = "2500 n0 n1 dead\n6900 n1 n0 suspect\n";
  std::string incrs = kIncrs;
  std::string counters = on("n0", kCounters) + on("n1", kCounters);
  std::string sops = kSetOps;
  std::string sets = on("n0", kSets) + on("n1", kSets);

  // Both nodes hold `state`, with equal digests: a mesh that converged.
  Run& both_hold(const std::string& state) {
    finals = on("n0", state) + on("n1", state);
    return *this;
  }
  // Both nodes count `totals` ("key total" lines).
  Run& both_count(const std::string& totals) {
    counters = on("n0", totals) + on("n1", totals);
    return *this;
  }
  Report check() const {
    History h;
    const std::string* texts[] = {&modes,   &kills, &writes,   &finals, &digests, &disturbances,
                                  &samples, &incrs, &counters, &sops,   &sets};
    for (size_t i = 0; i < std::size(kRunFiles); ++i) REQUIRE(parse_file(kRunFiles[i], *texts[i], h).ok());
    return meshkv::chaos::check(h, Options{5000, 0});
  }
};

// Whether a violation of `check` says `what`.
bool says(const Report& r, char check, const std::string& what) {
  for (const auto& v : r.violations) {
    if (v.check == check && v.what.find(what) != std::string::npos) return true;
  }
  return false;
}

// Whether every violation is of `check` and one says `what`.
bool only(const Report& r, char check, const std::string& what) {
  return r.count(check) == r.violations.size() && says(r, check, what);
}

std::string shown(const Report& r) {
  std::string s;
  for (const auto& v : r.violations) s += std::string("(") + v.check + ") " + v.what + "\n";
  return s;
}

}  // namespace

TEST_CASE("chaos check: a converged run that kept every acknowledged write passes") {
  const Report r = Run{}.check();
  INFO(shown(r));
  CHECK(r.ok());
  REQUIRE(r.summary.size() == 6);
  CHECK(r.summary[0] == "digests: all 2 nodes report 5eed and list the same entries");
  CHECK(r.summary[1] ==
        "writes: 7 acknowledged, 1 not; 1 acknowledged by in-memory nodes killed afterwards (0 keys lost "
        "such a write: none); 0 keys absent where only an unacknowledged delete explains it");
  CHECK(r.summary[2] == "clocks: 7 acknowledged writes from 2 origins, all unique and increasing per origin");
  CHECK(r.summary[3] == "membership: 2 samples, 1 suspect, 1 dead/left while disturbed (excused), 0 not excused");
  CHECK(r.summary[4] ==
        "counters: 2 keys, 4 increments acknowledged (sum 5), 1 refused, 2 of unknown outcome; 1 acknowledged by in-memory nodes killed "
        "afterwards (0 keys lost such an increment); every total within its bounds and equal on all nodes; "
        "e.g. n0 counts c0=10 in [6, 12] (acknowledged 8, uncertain -2/+4)");
  CHECK(r.summary[5] ==
        "sets: 2 keys, 7 adds and removes acknowledged, 1 refused, 2 of unknown outcome; 2 members required by an "
        "acknowledged add no remove could have seen (1 adds by in-memory nodes killed afterwards not required); "
        "3 members held on the first node; every node agrees and holds them");
}

TEST_CASE("chaos check: (f) a lost acknowledged add, one lost where only a remove that ended before it exists") {
  Run run;
  run.sets = on("n0", "s0 m2\ns0 m6\n") + on("n1", "s0 m2\ns0 m6\n");
  Report r = run.check();
  INFO(shown(r));
  CHECK(r.count('f') == 2);
  CHECK(only(r, 'f', "n0 lacks m1 in set s0"));
  run.sets = on("n0", "s0 m1\n") + on("n1", "s0 m1\n");
  r = run.check();
  INFO(shown(r));
  CHECK(only(r, 'f', "lacks m2 in set s0"));
}

TEST_CASE("chaos check: (f) a member nothing added, nodes that disagree; removed and at-risk members may go") {
  Run run;
  run.sets = on("n0", std::string(kSets) + "s0 m5\n") + on("n1", std::string(kSets) + "s0 m5\n");
  Report r = run.check();
  INFO(shown(r));
  CHECK(only(r, 'f', "n0 holds m5 in set s0, which no add that was not refused named"));
  run.sets = on("n0", kSets) + on("n1", std::string(kSets) + "s0 m3\n");
  r = run.check();
  INFO(shown(r));
  CHECK(only(r, 'f', "n1 holds 4 set members, n0 3, not the same"));
  // m3 (removed after its add began), m4 (n1 killed), s1's m1 (a remove of
  // unknown outcome) and m6 (unknown) may each be held or not, equally.
  run.sets = on("n0", std::string(kSets) + "s0 m3\ns0 m4\ns1 m1\n") +
             on("n1", std::string(kSets) + "s0 m3\ns0 m4\ns1 m1\n");
  r = run.check();
  INFO(shown(r));
  CHECK(r.ok());
}

TEST_CASE("chaos check: (b) a key holding an older value than an acknowledged later write") {
  const Report r = Run{}.both_hold(replaced(kGood, "ka v2 200", "ka v1 100")).check();
  INFO(shown(r));
  CHECK(r.count('b') == 2);
  CHECK(only(r, 'b', "n0 holds ka=v1 (hlc 100.0 origin 00000000000000aa), older than the acknowledged set ka=v2"));
}

TEST_CASE("chaos check: (b) an acknowledged value held with another (hlc, origin)") {
  const Report r = Run{}.both_hold(replaced(kGood, "ka v2 200", "ka v2 250")).check();
  INFO(shown(r));
  CHECK(only(r, 'b', "holds ka=v2 with hlc 250.0 origin 00000000000000aa, acknowledged with hlc 200.0"));
}

TEST_CASE("chaos check: (b) a lost acknowledged write") {
  const Report r = Run{}.both_hold(replaced(kGood, "ka v2 200 0 00000000000000aa\n", "")).check();
  INFO(shown(r));
  CHECK(r.count('b') == 2);
  CHECK(only(r, 'b', "n1 has no value for ka; the acknowledged set ka=v2 via n0 at 1110"));
}

TEST_CASE("chaos check: (b) an acknowledged delete undone") {
  const Report r = Run{}.both_hold(std::string(kGood) + "kc v4 400 0 00000000000000aa\n").check();
  INFO(shown(r));
  CHECK(only(r, 'b', "holds kc=v4 (hlc 400.0 origin 00000000000000aa), older than the acknowledged del kc=-"));
}

TEST_CASE("chaos check: (b) a value never written, a key never written") {
  Report r = Run{}.both_hold(replaced(kGood, "kd v6", "kd v9")).check();
  CHECK(only(r, 'b', "n0 holds kd=v9, a value never written to that key"));
  r = Run{}.both_hold(std::string(kGood) + "zz v2 200 0 00000000000000aa\n").check();
  CHECK(r.count('b') == 1);
  CHECK(only(r, 'b', "key zz is on n0 but was never written"));
}

TEST_CASE("chaos check: (b) the smaller origin winning a tie of HLCs") {
  const std::string state =
      replaced(kGood, "ke v8 600 0 00000000000000bb", "ke v7 600 0 00000000000000aa");
  const Report r = Run{}.both_hold(state).check();
  INFO(shown(r));
  CHECK(only(r, 'b', "holds ke=v7 (hlc 600.0 origin 00000000000000aa), older than the acknowledged set ke=v8"));
}

TEST_CASE("chaos check: (b) a write lost with an in-memory node killed later is counted, not failed") {
  Run run;
  run.writes += "2 3 1150 1160 n0 set kb v0 0 250 0 00000000000000aa\n";
  const Report r = run.both_hold(std::string(kGood) + "kb v0 250 0 00000000000000aa\n").check();
  INFO(shown(r));
  CHECK(r.ok());
  CHECK(r.summary[1].find("(1 keys lost such a write: kb)") != std::string::npos);
}

TEST_CASE("chaos check: (b) an absence only an unacknowledged delete explains passes") {
  Run run;
  run.writes += "2 3 1750 2750 n1 del ka - 3 - - -\n";
  const Report r = run.both_hold(replaced(kGood, "ka v2 200 0 00000000000000aa\n", "")).check();
  INFO(shown(r));
  CHECK(r.ok());
  CHECK(r.summary[1].find("1 keys absent where only an unacknowledged delete explains it") != std::string::npos);
}

TEST_CASE("chaos check: (a) digests that differ") {
  Run run;
  run.digests = "n0 5eed\nn1 beef\n";
  const Report r = run.check();
  CHECK(r.count('a') == 1);
  CHECK(only(r, 'a', "n1 reports digest beef, n0 5eed"));
  run.digests = "n0 5eed\nn1 silent\n";
  CHECK(only(run.check(), 'a', "n1 reported no digest"));
}

TEST_CASE("chaos check: (a) equal digests over different states") {
  Run run;
  run.finals = on("n0", kGood) + on("n1", replaced(kGood, "kd v6 900 0 00000000000000cc\n", ""));
  const Report r = run.check();
  INFO(shown(r));
  CHECK(only(r, 'a', "n0 and n1 report the same digest but list key kd differently"));
}

TEST_CASE("chaos check: (a), (b) a node without the state of the other") {
  Run run;
  run.finals = on("n0", kGood);
  run.digests = "n0 5eed\nn1 0\n";
  const Report r = run.check();
  CHECK(r.count('a') == 1);
  CHECK(says(r, 'b', "n1 has no value for ka"));
  CHECK(r.count('b') == 2);  // ka and ke
}

TEST_CASE("chaos check: (c) two acknowledged writes sharing an (hlc, origin)") {
  Run run;
  run.writes += "2 3 1605 1608 n0 set kf v10 0 600 0 00000000000000aa\n";
  const Report r = run.both_hold(std::string(kGood) + "kf v10 600 0 00000000000000aa\n").check();
  INFO(shown(r));
  CHECK(r.count('c') == 1);
  CHECK(only(r, 'c', "two acknowledged writes share (hlc, origin): set ke=v7 via n0 at 1610"));
}

TEST_CASE("chaos check: (c) an origin's clock going backwards") {
  Run run;
  run.writes += "1 9 1800 1810 n0 set kf v9 0 150 0 00000000000000aa\n";
  const Report r = run.both_hold(std::string(kGood) + "kf v9 150 0 00000000000000aa\n").check();
  INFO(shown(r));
  CHECK(r.count('c') == 1);
  CHECK(only(r, 'c', "origin 00000000000000aa: set kf=v9 via n0 at 1810 hlc 150.0"));
}

TEST_CASE("chaos check: (c) below an earlier write of its origin that was neither the last begun nor ended") {
  // Two writers: g1 and g2 overlap, g2 begun and ended later but with the
  // smaller HLC (the node took it first); g3 begins after both ended and
  // must be above g1, the greater, not only above g2.
  Run run;
  run.writes += "1 9 3000 3100 n0 set kg g1 0 700 0 00000000000000aa\n"
                "2 9 3050 3200 n0 set kg g2 0 650 0 00000000000000aa\n"
                "1 10 5100 5200 n0 set kg g3 0 680 0 00000000000000aa\n";
  const Report r = run.both_hold(std::string(kGood) + "kg g1 700 0 00000000000000aa\n").check();
  INFO(shown(r));
  CHECK(r.count('c') == 1);
  CHECK(only(r, 'c', "set kg=g3 via n0 at 5200 hlc 680.0 origin 00000000000000aa (begun at 5100) is not above "
                     "the earlier set kg=g1"));
}

TEST_CASE("chaos check: (d) dead within the grace after a disturbance passes, dead after it fails") {
  Run run;
  CHECK(run.check().ok());
  run.samples += "7100 n0 n1 dead\n";
  const Report r = run.check();
  CHECK(r.count('d') == 1);
  CHECK(only(r, 'd', "at 7100 (+7.1s) n0 saw n1 dead, though both had been undisturbed for 5000 ms"));
}

TEST_CASE("chaos check: (e) a counter total at either bound passes, one beyond either bound fails") {
  for (const char* ok : {"c0 6\nc1 -7\n", "c0 12\nc1 -1\n", "c0 8\nc1 -1\n"}) {
    const Report r = Run{}.both_count(ok).check();
    INFO(ok << shown(r));
    CHECK(r.ok());
  }
  Report r = Run{}.both_count("c0 5\nc1 -7\n").check();
  INFO(shown(r));
  CHECK(r.count('e') == 2);
  CHECK(only(r, 'e', "n1 counts c0=5, outside [6, 12] (acknowledged 8, uncertain -2/+4)"));
  r = Run{}.both_count("c0 13\nc1 -7\n").check();
  CHECK(only(r, 'e', "n0 counts c0=13, outside [6, 12]"));
  r = Run{}.both_count("c0 10\nc1 -8\n").check();
  CHECK(only(r, 'e', "n0 counts c1=-8, outside [-7, -1]"));
  r = Run{}.both_count("c0 10\nc1 0\n").check();  // the acknowledged decrement lost
  CHECK(only(r, 'e', "n0 counts c1=0, outside [-7, -1]"));
  r = Run{}.both_count("c0 10\nc1 2\n").check();  // the refused increment counted
  CHECK(only(r, 'e', "n0 counts c1=2, outside [-7, -1]"));
}

TEST_CASE("chaos check: (e) a lost acknowledged increment, a double-counted one") {
  Run run;
  run.incrs += "2 1 1700 1710 n0 c2 2 0 applied\n2 2 1800 1810 n1 c2 1 0 applied\n";
  CHECK(run.both_count(std::string(kCounters) + "c2 3\n").check().ok());
  Report r = run.both_count(std::string(kCounters) + "c2 1\n").check();
  INFO(shown(r));
  CHECK(r.count('e') == 2);
  CHECK(only(r, 'e', "n0 counts c2=1, outside [3, 3] (acknowledged 3, uncertain 0/+0)"));
  r = run.both_count(std::string(kCounters) + "c2 5\n").check();
  CHECK(only(r, 'e', "n0 counts c2=5, outside [3, 3]"));
  // Not listed reads as 0: an acknowledged increment lost on n1 alone.
  run.counters = on("n0", std::string(kCounters) + "c2 3\n") + on("n1", kCounters);
  r = run.check();
  CHECK(r.count('e') == 2);
  CHECK(says(r, 'e', "n1 counts c2=0, outside [3, 3]"));
  CHECK(says(r, 'e', "n1 counts c2=0, n0 3"));
}

TEST_CASE("chaos check: (e) nodes that disagree, a counter never incremented") {
  Run run;
  run.counters = on("n0", kCounters) + on("n1", "c0 8\nc1 -7\n");
  Report r = run.check();
  INFO(shown(r));
  CHECK(r.count('e') == 1);
  CHECK(only(r, 'e', "n1 counts c0=8, n0 10"));
  r = Run{}.both_count(std::string(kCounters) + "cz 1\n").check();
  CHECK(r.count('e') == 1);
  CHECK(only(r, 'e', "counter cz is on n0 but was never incremented"));
  // An unacknowledged increment that never took effect: absent, 0, passes.
  run = Run{};
  run.incrs += "2 1 1700 2700 n0 c3 1 3 unknown\n";
  CHECK(run.check().ok());
}

TEST_CASE("chaos check: (e) an increment lost with an in-memory node killed later is counted, not failed") {
  Run run;
  run.incrs += "2 1 1100 1110 n1 c4 4 0 applied\n2 2 1200 1210 n0 c4 1 0 applied\n";
  Report r = run.both_count(std::string(kCounters) + "c4 1\n").check();
  INFO(shown(r));
  CHECK(r.ok());
  CHECK(r.summary[4].find("2 acknowledged by in-memory nodes killed afterwards (1 keys lost such an increment)") !=
        std::string::npos);
  // Kept, it is not counted as lost; the durable node's +1 is required.
  r = run.both_count(std::string(kCounters) + "c4 5\n").check();
  CHECK(r.summary[4].find("(0 keys lost such an increment)") != std::string::npos);
  CHECK(only(run.both_count(std::string(kCounters) + "c4 0\n").check(), 'e', "n0 counts c4=0, outside [1, 5]"));
}

TEST_CASE("chaos check: malformed run files are refused with their line") {
  History h;
  meshkv::Status s = parse_file("writes", "1 1 1000 1010 n0 set ka v1 0 100 0\n", h);
  CHECK(s.message().find("writes:1: malformed line") == 0);
  s = parse_file("finals", "n0 ka v1 100 0 00aa\n", h);  // origin not 16 hex digits
  CHECK_FALSE(s.ok());
  s = parse_file("writes", "\n1 1 1000 1010 n0 put ka v1 0 100 0 00000000000000aa\n", h);
  CHECK(s.message().find("writes:2:") == 0);
  CHECK_FALSE(parse_file("modes", "n0 durable\nn1 flash\n", h).ok());
  CHECK_FALSE(parse_file("plan", "", h).ok());
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 0 0 applied\n", h).ok());  // a delta of 0 is no increment
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 +2 0 applied\n", h).ok());
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 2 0 refused\n", h).ok());  // rc and answer disagree
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 2 3 applied\n", h).ok());
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 2 3 maybe\n", h).ok());
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 2 3\n", h).ok());
  CHECK_FALSE(parse_file("incrs", "1 1 1000 1010 n0 c0 -9223372036854775808 0 applied\n", h).ok());
  CHECK(parse_file("incrs", "1 1 1000 1010 n0 c0 -2 0 applied\n", h).ok());
  CHECK(parse_file("counters", "n0 c0 x\n", h).message().find("counters:1: malformed line") == 0);
  CHECK(h.incrs.size() == 1);
  CHECK(h.modes.size() == 1);
}
