#!/usr/bin/env bash
# Real processes: a node whose clock runs an hour ahead must not hide other
# nodes' acknowledged writes. b writes k first; a's later set and del of k,
# both acknowledged, must be what a (and then every node) shows.
# Usage: tests/proc_skew.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 2)
A="127.0.0.1:$BASE" B="127.0.0.1:$((BASE + 1))"

start_node a "$BASE"
start_node b $((BASE + 1)) --join "$A" --clock-offset-ms 3600000
wait_for 20 "a and b see each other" member_is "$BASE" b alive

"$MESHKV" set k fromskewed --node "$B" >/dev/null || fail "set on b"
wait_for 10 "a holds b's write" value_is k "$A" fromskewed

"$MESHKV" set k fromA --node "$A" >/dev/null || fail "set on a"
[ "$("$MESHKV" get k --node "$A")" = fromA ] ||
  fail "a acknowledged 'set k fromA' but shows '$("$MESHKV" get k --node "$A")'"
wait_for 10 "b converges on a's write" value_is k "$B" fromA
echo "a's set after a write from a clock an hour ahead: visible on a and b"

"$MESHKV" del k --node "$A" >/dev/null || fail "del on a"
"$MESHKV" get k --node "$A" >/dev/null 2>&1
[ $? = 1 ] || fail "a acknowledged 'del k' but still shows '$("$MESHKV" get k --node "$A")'"
absent_on_b() { ! "$MESHKV" get k --node "$B" >/dev/null 2>&1; }
wait_for 10 "b converges on a's delete" absent_on_b
echo "a's del of that key: absent on a and b"
echo PASS
