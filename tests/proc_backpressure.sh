#!/usr/bin/env bash
# Backpressure with real processes: `set --batch` into a node whose pushes
# take 50 ms to be acknowledged fills its queues; the node then holds the
# answers (status backpressure.writes_slowed) instead of dropping pushes
# (datagrams.queue_drops stays 0), and every node holds every key soon
# after. A member cut off from the writer does not hold its answers to
# their deadline (backpressure.slowed_to_deadline stays 0), and catches up
# by anti-entropy once the cut is healed.
# Usage: tests/proc_backpressure.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 3)
A=127.0.0.1:$BASE
# status_of PORT PATH...: a field of the node's status (python indexing).
status_of() {
  "$MESHKV" status --node "127.0.0.1:$1" --json |
    python3 -c "import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
print(v)" "${@:2}"
}
keys_are() { [ "$(status_of "$1" keys)" = "$2" ]; }
# batch FILE FIRST COUNT: COUNT lines "bp/N VALUE" with 300-byte values.
batch() {
  awk -v f="$2" -v n="$3" 'BEGIN { v = sprintf("%300s", ""); gsub(/ /, "v", v); for (i = f; i < f + n; i++) print "bp/" i, v }' >"$1"
}

start_node a "$BASE"
start_node b $((BASE + 1)) --join "$A"
start_node c $((BASE + 2)) --join "$A"
for p in "$BASE" $((BASE + 1)) $((BASE + 2)); do
  wait_for 10 "node on $p sees two members alive" bash -c \
    "[ \"\$('$MESHKV' peers --node 127.0.0.1:$p --json | grep -o '\"state\":\"alive\"' | wc -l)\" = 3 ]"
done

# ---- a slow link: answers are held, no push is dropped ----------------------
"$MESHKV" loss --node "$A" --delay 50 >/dev/null || fail "loss --delay"
batch "$RUN_DIR/one" 0 20000
start=$SECONDS
"$MESHKV" set --batch "$RUN_DIR/one" --node "$A" --timeout 10000 >"$RUN_DIR/out" 2>&1 ||
  fail "set --batch: $(cat "$RUN_DIR/out")"
for p in "$BASE" $((BASE + 1)) $((BASE + 2)); do
  wait_for 15 "node on $p holds 20000 keys" keys_are "$p" 20000
done
slowed=$(status_of "$BASE" backpressure writes_slowed)
drops=$(status_of "$BASE" datagrams queue_drops)
[ "$slowed" -gt 0 ] || fail "no write answer was held (writes_slowed $slowed)"
[ "$drops" = 0 ] || fail "pushes dropped from a full queue: $drops"
echo "slow link: 20000 keys everywhere $((SECONDS - start)) s after the batch began; $slowed answers held, 0 queue drops: ok"

# ---- a member cut off does not hold the writer back -------------------------
"$MESHKV" loss --node "$A" --partition c --direction both >/dev/null || fail "loss --partition"
batch "$RUN_DIR/two" 20000 20000
"$MESHKV" set --batch "$RUN_DIR/two" --node "$A" --timeout 4000 >"$RUN_DIR/out" 2>&1 ||
  fail "set --batch with c cut off: $(cat "$RUN_DIR/out")"
deadline=$(status_of "$BASE" backpressure slowed_to_deadline)
[ "$deadline" = 0 ] || fail "answers held to their deadline with c cut off: $deadline"
wait_for 15 "b holds 40000 keys" keys_are $((BASE + 1)) 40000
"$MESHKV" loss --node "$A" --clear >/dev/null || fail "loss --clear"
wait_for 30 "c catches up after the cut" keys_are $((BASE + 2)) 40000
echo "cut-off member: no answer held to its deadline; it catches up once healed: ok"
echo "PASS"
