#!/usr/bin/env bash
# scripts/cluster.sh (a wrapper over `meshkv cluster`) drives a real 3-node cluster: up forms the mesh and
# refuses a second up; a write on one node is read on another; status shows
# every node running and seeing the others; a partition made with
# `meshkv loss --partition` on the cluster's ports cuts a node off and heals;
# down stops exactly the recorded processes and a second down is harmless.
# Usage: tests/proc_cluster.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
CLUSTER=$(cd "$(dirname "$0")/.." && pwd)/scripts/cluster.sh
source "$(dirname "$0")/lib_proc.sh" # RUN_DIR, fail, wait_for, free_base_port, state_of
export MESHKV_BIN=$MESHKV
unset MESHKV_NODE MESHKV_CLUSTER_DIR
DIR=$RUN_DIR # the cluster's run directory: fail() shows the tails of its logs
T0=$SECONDS

# On any exit: stop whatever the cluster recorded (down only signals those
# pids), then lib_proc's cleanup kills anything left in PIDS.
on_exit() {
  "$CLUSTER" down --dir "$DIR" >/dev/null 2>&1
  cleanup
}
trap on_exit EXIT

# Gone, or a zombie nobody has reaped yet.
gone() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -z "$state" ] || [ "$state" = Z ]
}

BASE=$(free_base_port 3)
N1=127.0.0.1:$BASE
N2=127.0.0.1:$((BASE + 1))
N3=127.0.0.1:$((BASE + 2))

# ---- up -------------------------------------------------------------------------
out=$("$CLUSTER" up 3 --base-port "$BASE" --dir "$DIR" 2>&1) || fail "cluster.sh up 3 failed: $out"
echo "$out"
for i in 1 2 3; do
  [ -f "$DIR/n$i.pid" ] || fail "no pid file for n$i"
  PIDS+=("$(cat "$DIR/n$i.pid")")
  grep -qE "^n$i +127\.0\.0\.1:$((BASE + i - 1)) +$(cat "$DIR/n$i.pid") " <<<"$out" ||
    fail "up does not list n$i with its address and pid"
done
grep -q "export MESHKV_NODE=$N1" <<<"$out" || fail "up prints no MESHKV_NODE hint"
for i in 1 2 3; do
  for j in 1 2 3; do
    [ $i = $j ] && continue
    [ "$(state_of $((BASE + i - 1)) "n$j")" = alive ] || fail "after up, n$i does not see n$j alive"
  done
done
echo "ok: up 3 formed the mesh ($((SECONDS - T0)) s)"

if out=$("$CLUSTER" up 3 --dir "$DIR" 2>&1); then fail "a second up in the same directory must be refused"; fi
grep -q "already up" <<<"$out" || fail "second up: no 'already up' message: $out"
for i in 1 2 3; do [ "$(cat "$DIR/n$i.pid")" = "${PIDS[i - 1]}" ] || fail "a refused up changed n$i.pid"; done
echo "ok: a second up is refused"

# ---- a write on one node, read on another ----------------------------------------
"$MESHKV" set greeting "hello mesh" --node "$N1" >/dev/null || fail "set on n1"
read_on_n3() { [ "$("$MESHKV" get greeting --node "$N3")" = "hello mesh" ]; }
wait_for 10 "n3 reads the write made on n1" read_on_n3
echo "ok: written on n1, read on n3"

# ---- status ------------------------------------------------------------------------
out=$("$CLUSTER" status --dir "$DIR") || fail "status exit $? with all nodes up: $out"
echo "$out"
[ "$(grep -cE '^n[1-3] .* running +2 +2 +1$' <<<"$out")" = 3 ] ||
  fail "status must list 3 running nodes, each knowing 2 members, 2 alive, 1 key"
echo "ok: status lists 3 running nodes"

# ---- a partition through the cluster's ports -------------------------------------
"$MESHKV" loss --node "$N1" --partition n3 >/dev/null || fail "loss --partition on n1"
"$MESHKV" loss --node "$N2" --partition n3 >/dev/null || fail "loss --partition on n2"
"$MESHKV" loss --node "$N1" | grep -q "partition n3" || fail "n1 does not show its partition"
n3_cut_off() {
  [ "$(state_of "$BASE" n3)" != alive ] && [ "$(state_of $((BASE + 1)) n3)" != alive ] &&
    [ "$(state_of $((BASE + 2)) n1)" != alive ]
}
wait_for 10 "n1 and n2 stop seeing n3 alive, and n3 them" n3_cut_off
"$MESHKV" set during-partition yes --node "$N1" >/dev/null || fail "set during the partition"
n2_has_it() { [ "$("$MESHKV" get during-partition --node "$N2")" = yes ]; }
wait_for 5 "n2 gets the write made during the partition" n2_has_it
sleep 1.5 # more than an anti-entropy round: n3 must still not have it
"$MESHKV" get during-partition --node "$N3" >/dev/null 2>&1
[ $? = 1 ] || fail "n3 got a write made while it was partitioned"
echo "ok: partitioned n3 is cut off and misses the write"

"$MESHKV" loss --node "$N1" --clear >/dev/null || fail "loss --clear on n1"
"$MESHKV" loss --node "$N2" --clear >/dev/null || fail "loss --clear on n2"
n3_caught_up() { [ "$("$MESHKV" get during-partition --node "$N3")" = yes ]; }
wait_for 15 "healed n3 catches up" n3_caught_up
healed() {
  local i j
  for i in 0 1 2; do
    for j in 1 2 3; do
      [ $((i + 1)) = $j ] && continue
      [ "$(state_of $((BASE + i)) "n$j")" = alive ] || return 1
    done
  done
}
wait_for 15 "every node sees every other alive again" healed
echo "ok: healed, n3 caught up"

# ---- down ----------------------------------------------------------------------------
out=$("$CLUSTER" down --dir "$DIR" 2>&1) || fail "down failed: $out"
echo "$out"
for i in 1 2 3; do
  gone "${PIDS[i - 1]}" || fail "n$i (pid ${PIDS[i - 1]}) still runs after down"
  [ ! -e "$DIR/n$i.pid" ] || fail "down left n$i.pid"
  [ -s "$DIR/n$i.log" ] || fail "down removed n$i.log"
done
grep -q "leaving the mesh" "$DIR/n1.log" || fail "n1 was not stopped gracefully (SIGTERM)"
PIDS=() # gone: nothing for the cleanup to kill, not even a recycled pid
out=$("$CLUSTER" down --dir "$DIR" 2>&1) || fail "a second down must succeed: $out"
echo "$out"
if "$CLUSTER" status --dir "$DIR" >/dev/null 2>&1; then fail "status must fail when the nodes are down"; fi
echo "ok: down stopped every node; a second down is harmless"
echo "PASS ($((SECONDS - T0)) s)"
