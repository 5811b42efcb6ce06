// meshkv trace: writes a key through a node and reports when each member
// acknowledged the push, slowest last, so an operator sees who is slow.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <thread>

#include "commands.h"
#include "config_file.h"
#include "net/control_client.h"
#include "output.h"

namespace meshkv::cli {

Handler setup_trace(CLI::App& sub) {
  struct Options {
    std::string node = "127.0.0.1:7946", key, value;
    unsigned timeout_ms = 2000;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub.footer("Members that have not acknowledged within --timeout are listed as such (exit 1).\n"
             "Times are measured on the node, from the push to each acknowledgement.");
  sub.add_option("KEY", o->key, "the key")->required();
  sub.add_option("VALUE", o->value, "the value")->required();
  sub.add_option("--node", o->node, "node to write through, HOST:PORT (default 127.0.0.1:7946, or $MESHKV_NODE)")
      ->type_name("HOST:PORT")
      ->envname("MESHKV_NODE");
  sub.add_option("--timeout", o->timeout_ms, "wait this long for acknowledgements (default 2000)")->type_name("MS");
  sub.add_flag("--json", o->json, "print the report as JSON");
  return [o] {
    auto ep = parse_flag_address(o->node);
    if (!ep) return kExitUsage;
    wire::CtlRequest req = wire::make_request(wire::CtlOp::kTrace);
    req.args.set("key", o->key);
    req.args.set("value", o->value);
    const auto limit = std::chrono::milliseconds(o->timeout_ms);
    auto r = net::call(*ep, req, std::max(limit, std::chrono::milliseconds(1000)));
    if (!r.ok() || r->code != wire::kCtlOk) return print_result(req, r, o->json, Style{}, std::cout, std::cerr);
    wire::Value report = r->body;
    const auto end = std::chrono::steady_clock::now() + limit;
    auto all_acked = [&] {
      for (const auto& m : report.get("members").as_list()) {
        if (m.get("ack_us").is_null()) return false;
      }
      return true;
    };
    while (!all_acked() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      wire::CtlRequest poll = wire::make_request(wire::CtlOp::kTraceStatus, 2);
      poll.args.set("id", report.get("id"));
      auto p = net::call(*ep, poll, std::chrono::milliseconds(1000));
      if (!p.ok() || p->code != wire::kCtlOk) return print_result(poll, p, o->json, Style{}, std::cout, std::cerr);
      report = p->body;
    }
    const bool complete = all_acked();
    if (o->json) {
      std::cout << report.to_json() << "\n";
      return complete ? kExitOk : kExitNegative;
    }
    auto members = report.get("members").as_list();
    std::sort(members.begin(), members.end(), [](const wire::Value& a, const wire::Value& b) {
      const bool na = a.get("ack_us").is_null(), nb = b.get("ack_us").is_null();
      if (na != nb) return nb;
      return a.get("ack_us").as_int() < b.get("ack_us").as_int();
    });
    const Style st = detect_style(1);
    if (members.empty()) std::cout << "no reachable members: the write stays local until one joins\n";
    size_t w = 6;
    for (const auto& m : members) w = std::max(w, m.get("name").as_string().size());
    for (const auto& m : members) {
      const std::string name = m.get("name").as_string();
      std::string when;
      if (m.get("ack_us").is_null()) {
        when = st.color ? "\033[31mno ack within " + std::to_string(o->timeout_ms) + " ms\033[0m"
                        : "no ack within " + std::to_string(o->timeout_ms) + " ms";
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(m.get("ack_us").as_int()) / 1000.0);
        when = buf;
      }
      std::cout << name << std::string(w + 2 - name.size(), ' ') << when << "\n";
    }
    return complete ? kExitOk : kExitNegative;
  };
}

}  // namespace meshkv::cli
