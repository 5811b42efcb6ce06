// meshkv clock: version vectors. One node: its vector. Several: a matrix of
// origins (rows) by nodes (columns), each cell the node's seq for the origin
// and how far it lags the highest seq any listed node has for it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <map>

#include "commands.h"
#include "config_file.h"
#include "net/control_client.h"
#include "output.h"

namespace meshkv::cli {

namespace {
struct Row {
  std::string node;                        // writer's name, if known
  std::map<size_t, int64_t> seq_by_column; // column -> seq
  int64_t max = 0;
};

std::string pad(const std::string& s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); }
}  // namespace

Handler setup_clock(CLI::App& sub) {
  struct Options {
    std::vector<std::string> nodes{"127.0.0.1:7946"};
    unsigned timeout_ms = 3000;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub.footer("With several --node, prints origins by nodes; a cell 'seq -lag' means the node is\n"
             "lag writes behind the most advanced listed node for that origin. Origins of ended\n"
             "processes (restarted, left or removed nodes) are retired once every member holds\n"
             "their writes: they are no longer rows, only counted ('retired origins').");
  sub.add_option("--node", o->nodes, "node to ask, HOST:PORT (repeatable; default 127.0.0.1:7946, or $MESHKV_NODE)")
      ->type_name("HOST:PORT")
      ->envname("MESHKV_NODE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub.add_option("--timeout", o->timeout_ms, "give up on a node after this long (default 3000)")->type_name("MS");
  sub.add_flag("--json", o->json, "print the vectors (and lags) as JSON");
  return [o] {
    std::vector<std::string> ids;
    std::vector<int64_t> retired;     // by column: origins of ended processes, not rows
    std::map<std::string, Row> rows;  // by origin
    int rc = kExitOk;
    for (const std::string& n : o->nodes) {
      auto ep = parse_flag_address(n);
      if (!ep) return kExitUsage;
      auto r = net::call(*ep, wire::make_request(wire::CtlOp::kClock),
                         std::chrono::milliseconds(o->timeout_ms));
      if (!r.ok() || r->code != wire::kCtlOk) {
        std::cerr << (r.ok() ? r->error : r.status().message()) << "\n";
        rc = kExitUnreachable;
        continue;
      }
      const size_t col = ids.size();
      ids.push_back(r->body.get("id").as_string());
      retired.push_back(r->body.get("retired").as_int());
      for (const auto& e : r->body.get("vv").as_list()) {
        Row& row = rows[e.get("origin").as_string()];
        if (row.node.empty()) row.node = e.get("node").as_string();
        row.seq_by_column[col] = e.get("seq").as_int();
        row.max = std::max(row.max, e.get("seq").as_int());
      }
    }
    if (ids.empty()) return rc;
    if (o->json) {
      wire::Value out = wire::Value::object();
      wire::Value nodes = wire::Value::list();
      for (const auto& id : ids) nodes.push(id);
      out.set("nodes", std::move(nodes));
      wire::Value origins = wire::Value::list();
      for (const auto& [origin, row] : rows) {
        wire::Value v = wire::Value::object();
        v.set("origin", origin);
        v.set("node", row.node);
        v.set("max", row.max);
        wire::Value seqs = wire::Value::object(), lags = wire::Value::object();
        for (size_t c = 0; c < ids.size(); ++c) {
          auto it = row.seq_by_column.find(c);
          const int64_t s = it == row.seq_by_column.end() ? 0 : it->second;
          seqs.set(ids[c], s);
          lags.set(ids[c], row.max - s);
        }
        v.set("seq", std::move(seqs));
        v.set("lag", std::move(lags));
        origins.push(std::move(v));
      }
      out.set("origins", std::move(origins));
      wire::Value ret = wire::Value::object();
      for (size_t c = 0; c < ids.size(); ++c) ret.set(ids[c], retired[c]);
      out.set("retired", std::move(ret));
      std::cout << out.to_json() << "\n";
      return rc;
    }
    const Style st = detect_style(1);
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"ORIGIN", "WRITER"});
    for (const auto& id : ids) cells.back().push_back(id);
    for (const auto& [origin, row] : rows) {
      std::vector<std::string> line{origin, row.node.empty() ? "?" : row.node};
      for (size_t c = 0; c < ids.size(); ++c) {
        auto it = row.seq_by_column.find(c);
        const int64_t s = it == row.seq_by_column.end() ? 0 : it->second;
        line.push_back(std::to_string(s) + (s < row.max ? " -" + std::to_string(row.max - s) : ""));
      }
      cells.push_back(std::move(line));
    }
    std::vector<size_t> w(cells.front().size(), 0);
    for (const auto& line : cells) {
      for (size_t i = 0; i < line.size(); ++i) w[i] = std::max(w[i], line[i].size());
    }
    for (size_t r = 0; r < cells.size(); ++r) {
      std::string out;
      for (size_t i = 0; i < cells[r].size(); ++i) {
        std::string cell = pad(cells[r][i], w[i] + 2);
        const bool lagging = r > 0 && i >= 2 && cells[r][i].find(" -") != std::string::npos;
        if (st.color && (r == 0 || lagging)) cell = (r == 0 ? "\033[1m" : "\033[31m") + cell + "\033[0m";
        out += cell;
      }
      while (!out.empty() && out.back() == ' ') out.pop_back();
      std::cout << out << "\n";
    }
    if (std::any_of(retired.begin(), retired.end(), [](int64_t n) { return n > 0; })) {
      std::string line = "retired origins (ended processes):";
      for (size_t c = 0; c < ids.size(); ++c) line += " " + ids[c] + " " + std::to_string(retired[c]);
      std::cout << line << "\n";
    }
    return rc;
  };
}

}  // namespace meshkv::cli
