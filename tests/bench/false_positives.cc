// --false-positives S: for S seconds nobody is stopped, so every member a
// node declares dead (its log says "member X (...) is dead") is a false
// positive, and so is every dead state seen by polling every node's peers
// every 100 ms. Then failure detection as in the latency test.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "bench/converge.h"

namespace meshkv::bench {

namespace {

// Lines of `path` from byte `from` on that contain `needle`.
int count_lines(const std::string& path, std::streamoff from, const std::string& needle) {
  std::ifstream f(path);
  f.seekg(from);
  int n = 0;
  std::string line;
  while (std::getline(f, line)) n += line.find(needle) != std::string::npos;
  return n;
}

std::streamoff file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<std::streamoff>(st.st_size) : 0;
}

struct Polled {
  int dead = 0, suspect = 0, polls = 0;  // changes into dead and suspect
};

// Every node's peers every 100 ms for `seconds`, counting state changes.
Polled poll_peers(Conns& ctl, double seconds) {
  Polled p;
  std::map<std::pair<size_t, std::string>, std::string> last;  // (observer, member) -> state
  const double t0 = now_ms();
  while (now_ms() - t0 < seconds * 1000) {
    auto rs = call_all(ctl, "peers", 2000);
    ++p.polls;
    for (size_t i = 0; i < rs.size(); ++i) {
      if (!rs[i]) continue;
      for (const auto& m : rs[i]->body.get("members").as_list()) {
        const std::string st = m.get("state").as_string();
        std::string& prev = last[{i, m.get("name").as_string()}];
        if (st != prev && !prev.empty()) {
          p.dead += st == "dead";
          p.suspect += st == "suspect";
        }
        prev = st;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return p;
}

}  // namespace

int run_false_positives(Cluster& c) {
  const Args& a = c.a;
  const pid_t bench = getpid();
  std::vector<std::streamoff> from;
  for (int i = 0; i < a.nodes; ++i) from.push_back(file_size(log_path(a, bench, i)));
  const Polled polled = poll_peers(c.ctl, a.false_positives);
  int logged_dead = 0, logged_suspect = 0;
  for (int i = 0; i < a.nodes; ++i) {
    logged_dead += count_lines(log_path(a, bench, i), from[static_cast<size_t>(i)], ") is dead");
    logged_suspect += count_lines(log_path(a, bench, i), from[static_cast<size_t>(i)], ") is suspect");
  }
  const int fp = std::max(logged_dead, polled.dead);
  const double detect_ms = a.nodes > 2 ? detect_kill(c) : -1;
  std::printf("| %d | %.0f%% | %.0f s | %d false positives | %d suspicions | %s |\n", a.nodes, a.loss * 100,
              a.false_positives, fp, logged_suspect,
              detect_ms < 0 ? "-" : (std::to_string(static_cast<int>(detect_ms)) + " ms").c_str());
  Results& r = c.res;
  r.num("fp_seconds", a.false_positives);
  r.count("false_positives", static_cast<uint64_t>(fp));
  r.count("fp_logged_dead", static_cast<uint64_t>(logged_dead));
  r.count("fp_polled_dead", static_cast<uint64_t>(polled.dead));
  r.count("suspicions_logged", static_cast<uint64_t>(logged_suspect));
  r.count("suspicions_polled", static_cast<uint64_t>(polled.suspect));
  r.count("fp_polls", static_cast<uint64_t>(polled.polls));
  r.num("detect_ms", detect_ms);
  return 0;
}

}  // namespace meshkv::bench
