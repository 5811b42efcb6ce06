// The table of subcommands: name, one-line help, and the setup function that
// declares its options. `meshkv --help` is generated from it.
#include <CLI/CLI.hpp>

#include "commands.h"

namespace meshkv::cli {

// Defined in cmd_node.cc and cmd_client.cc.
Handler setup_node(CLI::App&);
Handler setup_get(CLI::App&);
Handler setup_set(CLI::App&);
Handler setup_del(CLI::App&);
Handler setup_list(CLI::App&);
Handler setup_status(CLI::App&);
Handler setup_peers(CLI::App&);
Handler setup_clock(CLI::App&);
Handler setup_join(CLI::App&);
Handler setup_forget(CLI::App&);
Handler setup_expire(CLI::App&);
Handler setup_ttl(CLI::App&);
Handler setup_incr(CLI::App&);
Handler setup_decr(CLI::App&);
Handler setup_sadd(CLI::App&);
Handler setup_srem(CLI::App&);
Handler setup_smembers(CLI::App&);
Handler setup_sismember(CLI::App&);
Handler setup_loss(CLI::App&);
Handler setup_watch(CLI::App&);
Handler setup_diff(CLI::App&);
Handler setup_trace(CLI::App&);
Handler setup_sim(CLI::App&);
Handler setup_keygen(CLI::App&);
Handler setup_keys(CLI::App&);
Handler setup_quarantine(CLI::App&);
Handler setup_cluster(CLI::App&);
Handler setup_top(CLI::App&);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"node", "start a mesh node with an interactive prompt (the default)", setup_node, false},
      {"get", "read a key from a running node", setup_get},
      {"set", "write a key through a running node", setup_set},
      {"del", "delete a key through a running node", setup_del},
      {"expire", "make a key's value expire after a time to live", setup_expire},
      {"ttl", "show the time a key has left before it expires", setup_ttl},
      {"incr", "add to a counter through a running node", setup_incr},
      {"decr", "subtract from a counter through a running node", setup_decr},
      {"sadd", "add members to a set (add-wins) through a running node", setup_sadd},
      {"srem", "remove members from a set through a running node", setup_srem},
      {"smembers", "list the members of a set on a running node", setup_smembers},
      {"sismember", "tell whether a member is in a set on a running node", setup_sismember},
      {"list", "list keys (optionally under a prefix) of a running node", setup_list},
      {"status", "show a node's members, counters and version vector", setup_status},
      {"peers", "show a node's members with state, RTT and last contact", setup_peers},
      {"clock", "print version vectors of one or more nodes", setup_clock},
      {"join", "make a running node contact peers and merge memberships", setup_join},
      {"forget", "remove a dead or suspect member now, on every node", setup_forget},
      {"loss", "inject loss, duplication, delay or partitions into a node", setup_loss},
      {"diff", "compare the states of two nodes", setup_diff},
      {"watch", "stream changes as a node applies them", setup_watch},
      {"top", "a live view of a node's mesh: members, lag, traffic", setup_top},
      {"trace", "write a key and report when each member acknowledged it", setup_trace},
      {"keys", "list, install, switch or remove a node's cluster keys at runtime", setup_keys},
      {"quarantine", "list, apply or drop writes kept aside by tombstone collection", setup_quarantine},
      {"keygen", "create a cluster key or a node identity", setup_keygen, false},
      {"sim", "run the deterministic network simulator", setup_sim, false},
      {"cluster", "start, inspect, partition and stop a local cluster of nodes", setup_cluster, false},
  };
  return table;
}

}  // namespace meshkv::cli
