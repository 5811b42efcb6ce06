#!/usr/bin/env bash
# Real processes on 127.0.0.1: five nodes converge on writes made everywhere;
# a node killed with SIGKILL is declared dead by the rest; restarted, it
# rejoins and catches up. Usage: tests/proc_mesh.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
N=5
BASE=$(free_base_port $N)

start_node n0 "$BASE"
for i in $(seq 1 $((N - 1))); do start_node "n$i" $((BASE + i)) --join "127.0.0.1:$BASE"; done

all_alive() {
  local i j
  for i in $(seq 0 $((N - 1))); do
    for j in $(seq 0 $((N - 1))); do
      [ "$i" = "$j" ] && continue
      [ "$(state_of $((BASE + i)) "n$j")" = alive ] || return 1
    done
  done
}
wait_for 20 "every node sees every other alive" all_alive
echo "membership converged"

# Writes on every node, including a delete and an overwrite.
for i in $(seq 0 $((N - 1))); do
  "$MESHKV" set "key$i" "value from n$i" --node "127.0.0.1:$((BASE + i))" >/dev/null ||
    fail "set on n$i"
done
"$MESHKV" set shared first --node "127.0.0.1:$BASE" >/dev/null || fail "set shared"
"$MESHKV" set shared "second, with spaces" --node "127.0.0.1:$((BASE + 3))" >/dev/null || fail "overwrite"
# del of a key the node holds no value for is "not found": let it arrive first.
wait_for 10 "key2 reaches n4" value_is key2 "127.0.0.1:$((BASE + 4))" "value from n2"
"$MESHKV" del key2 --node "127.0.0.1:$((BASE + 4))" >/dev/null || fail "del"

converged() {
  local i k
  for i in $(seq 0 $((N - 1))); do
    local node="127.0.0.1:$((BASE + i))"
    for k in 0 1 3 4; do
      [ "$("$MESHKV" get "key$k" --node "$node")" = "value from n$k" ] || return 1
    done
    "$MESHKV" get key2 --node "$node" >/dev/null 2>&1 && return 1
    [ "$("$MESHKV" get shared --node "$node")" = "second, with spaces" ] || return 1
  done
}
wait_for 10 "all nodes converge on every write" converged
echo "writes converged on all $N nodes"

# kill -9 of one node: the others declare it dead.
kill_node n4
t0=$(date +%s%N)
all_see_dead() {
  local i
  for i in 0 1 2 3; do [ "$(state_of $((BASE + i)) n4)" = dead ] || return 1; done
}
wait_for 15 "survivors declare n4 dead" all_see_dead
echo "n4 declared dead by all survivors after $((($(date +%s%N) - t0) / 1000000)) ms"

# Writes while it is down; then it restarts (a new process, empty state),
# rejoins and catches up.
"$MESHKV" set during-outage yes --node "127.0.0.1:$((BASE + 1))" >/dev/null || fail "set during outage"
start_node n4 $((BASE + 4)) --join "127.0.0.1:$BASE"
wait_for 20 "n4 is alive again everywhere" all_alive
caught_up() {
  local node="127.0.0.1:$((BASE + 4))"
  [ "$("$MESHKV" get during-outage --node "$node")" = yes ] &&
    [ "$("$MESHKV" get key0 --node "$node")" = "value from n0" ] &&
    ! "$MESHKV" get key2 --node "$node" >/dev/null 2>&1
}
wait_for 15 "restarted n4 catches up" caught_up
echo "n4 rejoined and caught up"

# Exit codes a script relies on.
"$MESHKV" get missing --node "127.0.0.1:$BASE" >/dev/null 2>&1
[ $? = 1 ] || fail "get of a missing key must exit 1"
"$MESHKV" node --mtu 10 </dev/null >/dev/null 2>&1
[ $? = 2 ] || fail "a bad flag must exit 2"
"$MESHKV" get x --node 127.0.0.1:notaport >/dev/null 2>&1
[ $? = 2 ] || fail "a bad address must exit 2"
t0=$SECONDS
"$MESHKV" get x --node "127.0.0.1:$((BASE + N + 7))" >/dev/null 2>&1
[ $? = 3 ] || fail "an unreachable node must exit 3"
[ $((SECONDS - t0)) -le 5 ] || fail "an unreachable node must not hang"
echo "PASS"
