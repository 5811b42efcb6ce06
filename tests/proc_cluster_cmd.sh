#!/usr/bin/env bash
# `meshkv cluster` from the binary alone, as the issue's demo runs it: the
# binary copied into an empty directory, `cluster up 5`, `partition n4,n5`,
# writes on both sides (each side misses the other's), `heal`, `meshkv diff`
# identical for every node against n1, a kill and restart of a node, and
# `down` leaving none of the processes behind. Also: `down` never signals a
# pid the state file names that is not a node it started, and bad actions
# exit 2 without touching anything.
# Usage: tests/proc_cluster_cmd.sh path/to/meshkv
set -uo pipefail
SRC=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh" # RUN_DIR, fail, wait_for, cleanup
unset MESHKV_NODE MESHKV_CLUSTER_DIR MESHKV_KEY_FILE
T0=$SECONDS
DEMO=$RUN_DIR/demo
mkdir "$DEMO" || fail "mkdir $DEMO"
cp "$SRC" "$DEMO/meshkv" || fail "cannot copy the binary"
cd "$DEMO" || fail "cd $DEMO"
MESHKV=./meshkv
# fail() shows the logs in $RUN_DIR: the cluster's go there by a link.
on_exit() {
  "$MESHKV" cluster down >/dev/null 2>&1
  [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
  cleanup
}
trap on_exit EXIT

gone() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -z "$state" ] || [ "$state" = Z ]
}

# ---- up 5 -------------------------------------------------------------------
out=$("$MESHKV" cluster up 5 2>&1) || fail "cluster up 5 failed: $out"
echo "$out"
for i in 1 2 3 4 5; do ln -sf "$DEMO/meshkv-cluster/n$i.log" "$RUN_DIR/n$i.log"; done
hint=$(grep -o '^export MESHKV_NODE=127\.0\.0\.1:[0-9]*$' <<<"$out") || fail "up prints no MESHKV_NODE hint"
export "${hint#export }"
declare -A ADDR PID
for i in 1 2 3 4 5; do
  line=$(grep -E "^n$i " <<<"$out") || fail "up does not list n$i"
  read -r _ ADDR[n$i] PID[n$i] _ <<<"$line"
  [ "$(cat "meshkv-cluster/n$i.pid")" = "${PID[n$i]}" ] || fail "n$i.pid does not hold the pid up printed"
  # Detached: a session of its own, not a child of this shell.
  sid=$(awk '{ sub(/.*\) /, ""); print $4 }' "/proc/${PID[n$i]}/stat")
  [ "$sid" = "${PID[n$i]}" ] || [ "$sid" != "$(awk '{ sub(/.*\) /, ""); print $4 }' /proc/$$/stat)" ] ||
    fail "n$i runs in this shell's session"
done
[ "$MESHKV_NODE" = "${ADDR[n1]}" ] || fail "the hint names $MESHKV_NODE, not n1 (${ADDR[n1]})"
st=$("$MESHKV" cluster status) || fail "status exit $? with every node up: $st"
[ "$(grep -cE '^n[1-5] .* running +4 +4 +0$' <<<"$st")" = 5 ] || fail "status must show 5 nodes each seeing 4 alive: $st"
echo "ok: up 5 formed the mesh ($((SECONDS - T0)) s)"

# ---- partition n4,n5, writes on both sides ----------------------------------
"$MESHKV" cluster partition n4,n5 || fail "cluster partition n4,n5"
"$MESHKV" cluster status | grep -qx "partitioned: n4,n5 | n1,n2,n3 .*" || fail "status does not show the partition"
cut_off() {
  [ "$(state_of "${ADDR[n1]#*:}" n4)" != alive ] && [ "$(state_of "${ADDR[n5]#*:}" n2)" != alive ]
}
wait_for 10 "n1 stops seeing n4 alive, n5 stops seeing n2" cut_off
"$MESHKV" set left from-n1 >/dev/null || fail "set on n1 (via MESHKV_NODE)"
"$MESHKV" set right from-n4 --node "${ADDR[n4]}" >/dev/null || fail "set on n4"
wait_for 5 "n3 gets n1's write" value_is left "${ADDR[n3]}" from-n1
wait_for 5 "n5 gets n4's write" value_is right "${ADDR[n5]}" from-n4
sleep 1.5 # more than an anti-entropy round
value_is left "${ADDR[n5]}" from-n1 && fail "n5 got a write made across the partition"
value_is right "${ADDR[n2]}" from-n4 && fail "n2 got a write made across the partition"
"$MESHKV" diff "${ADDR[n1]}" "${ADDR[n4]}" >/dev/null && fail "diff n1 n4 must differ during the partition"
echo "ok: partitioned, each side has only its own write"

# ---- heal: every node identical to n1 ---------------------------------------
"$MESHKV" cluster heal || fail "cluster heal"
"$MESHKV" cluster status | grep -q "^partitioned" && fail "status shows a partition after heal"
same_as_n1() { "$MESHKV" diff "${ADDR[n1]}" "${ADDR[$1]}"; }
for i in 2 3 4 5; do wait_for 20 "diff n1 n$i identical after heal" same_as_n1 "n$i"; done
value_is right "${ADDR[n2]}" from-n4 || fail "n2 lacks n4's write after heal"
echo "ok: healed, diff identical on every node ($((SECONDS - T0)) s)"

# ---- kill and restart -------------------------------------------------------
"$MESHKV" cluster kill n3 || fail "cluster kill n3"
gone "${PID[n3]}" || fail "n3 (pid ${PID[n3]}) still runs after kill"
"$MESHKV" cluster status >/dev/null && fail "status must fail with n3 killed"
out=$("$MESHKV" cluster restart n3) || fail "cluster restart n3: $out"
echo "$out"
NEW3=$(cat meshkv-cluster/n3.pid)
[ "$NEW3" != "${PID[n3]}" ] || fail "restart kept the old pid"
wait_for 10 "restarted n3 catches up" same_as_n1 n3
echo "ok: kill and restart of n3"

# ---- bad input ---------------------------------------------------------------
for bad in "frob" "kill n9" "partition n1,n2,n3,n4,n5" "up 0" "restart" "partition n7"; do
  # shellcheck disable=SC2086
  "$MESHKV" cluster $bad >/dev/null 2>&1
  rc=$?
  [ $rc = 2 ] || fail "'cluster $bad' exit $rc, expected 2"
done
"$MESHKV" cluster up 3 >/dev/null 2>&1 && fail "a second up in the same directory must be refused"
echo "ok: bad actions exit 2, a second up is refused"

# ---- a pid that is not one of its nodes is never signalled ----------------------
sleep 60 &
SLEEPER=$!
mkdir "$RUN_DIR/foreign"
start=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$SLEEPER/stat")
printf 'meshkv-cluster-state-v1\nloss 0\ndata 0\nnode n1 127.0.0.1:1 %s %s\n' "$SLEEPER" "$start" \
  >"$RUN_DIR/foreign/state"
"$MESHKV" cluster down --dir "$RUN_DIR/foreign" >/dev/null 2>&1
gone "$SLEEPER" && fail "down signalled pid $SLEEPER, which is no node it started"
kill "$SLEEPER"
SLEEPER=
echo "ok: down leaves a foreign pid alone"

# A damaged state file is an error, never a crash, and never a signal: pid
# -1 would mean "every process" to kill(2).
mkdir "$RUN_DIR/damaged"
for state in 'meshkv-cluster-state-v1\nnode n1 127.0.0.1:1 -1 0\n' 'meshkv-cluster-state-v1\nnode n1\n' \
  'meshkv-cluster-state-v1\nnode n1 127.0.0.1:1 abc 0\n' 'not a state file\n' 'meshkv-cluster-state-v1\nloss x\nbogus\n'; do
  printf "$state" >"$RUN_DIR/damaged/state"
  for action in status down heal "kill n1"; do
    # shellcheck disable=SC2086
    "$MESHKV" cluster $action --dir "$RUN_DIR/damaged" --wait 1 >/dev/null 2>&1
    rc=$?
    [ $rc -le 3 ] || fail "cluster $action on state '$state': exit $rc (a crash?)"
  done
done
echo "ok: damaged state files: errors, no crash, nothing signalled"

# ---- an up that fails stops what it started --------------------------------------
# --loss 1: no datagram leaves, so the mesh never forms within --wait 1.
FAILDIR=$RUN_DIR/failing
out=$("$MESHKV" cluster up 3 --loss 1 --wait 1 --data-dir --dir "$FAILDIR" 2>&1) && fail "up with --loss 1 formed a mesh"
grep -q "did not form" <<<"$out" || fail "a failed up says why: $out"
# Each node's command line names its data directory under $FAILDIR.
left_behind() { ps -eo args= | grep -F -- "--data-dir $FAILDIR/" | grep -v grep; }
for _ in $(seq 1 50); do left_behind >/dev/null || break; sleep 0.1; done
left_behind && fail "a failed up left nodes running"
echo "ok: a failed up stops the nodes it started"

# ---- down ----------------------------------------------------------------------
out=$("$MESHKV" cluster down 2>&1) || fail "cluster down: $out"
echo "$out"
for id in n1 n2 n4 n5; do gone "${PID[$id]}" || fail "$id (pid ${PID[$id]}) still runs after down"; done
gone "$NEW3" || fail "n3 (pid $NEW3) still runs after down"
ls meshkv-cluster/*.pid >/dev/null 2>&1 && fail "down left pid files"
echo "PASS ($((SECONDS - T0)) s)"
