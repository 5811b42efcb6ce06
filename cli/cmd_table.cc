// The table of subcommands: name, one-line help, and the setup function that
// declares its options. `meshkv --help` is generated from it.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"

namespace meshkv::cli {

namespace {
// A subcommand that is planned but not built yet says so plainly and fails.
template <const char* Name>
Handler planned(CLI::App& sub) {
  sub.allow_extras();
  return [] {
    std::cerr << "meshkv " << Name << ": not available in this build yet\n";
    return kExitUsage;
  };
}
constexpr char kNode[] = "node";
constexpr char kGet[] = "get";
constexpr char kSet[] = "set";
constexpr char kDel[] = "del";
constexpr char kList[] = "list";
constexpr char kStatus[] = "status";
constexpr char kPeers[] = "peers";
constexpr char kClock[] = "clock";
constexpr char kJoin[] = "join";
constexpr char kLoss[] = "loss";
constexpr char kDiff[] = "diff";
constexpr char kWatch[] = "watch";
constexpr char kTrace[] = "trace";
constexpr char kKeygen[] = "keygen";
constexpr char kSim[] = "sim";
}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"node", "start a mesh node with an interactive prompt (the default)", planned<kNode>},
      {"get", "read a key from a running node", planned<kGet>},
      {"set", "write a key through a running node", planned<kSet>},
      {"del", "delete a key through a running node", planned<kDel>},
      {"list", "list keys (optionally under a prefix) of a running node", planned<kList>},
      {"status", "show a node's members, counters and version vector", planned<kStatus>},
      {"peers", "show a node's members with state, RTT and last contact", planned<kPeers>},
      {"clock", "print version vectors of one or more nodes", planned<kClock>},
      {"join", "make a running node contact peers and merge memberships", planned<kJoin>},
      {"loss", "inject loss, duplication, delay or partitions into a node", planned<kLoss>},
      {"diff", "compare the states of two nodes", planned<kDiff>},
      {"watch", "stream changes as a node applies them", planned<kWatch>},
      {"trace", "write a key and report when each member acknowledged it", planned<kTrace>},
      {"keygen", "create a cluster key or a node identity", planned<kKeygen>},
      {"sim", "run the deterministic network simulator", planned<kSim>},
  };
  return table;
}

}  // namespace meshkv::cli
