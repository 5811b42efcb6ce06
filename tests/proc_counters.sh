#!/usr/bin/env bash
# Counters with real processes: 5 nodes (n5 with a data directory), 30 %
# injected loss on every node. 5 clients each increment `hits` COUNT times
# (default 2000), each batch of 50 through a node picked at random; once the
# loss is cleared every node reads exactly 5 * COUNT. n5 restarted from its
# log reads the same total. One key, one type: incr of a key holding a value
# is refused (exit 2); set replaces a counter; watch and diff name the
# counter, not its parts; del resets it (absent everywhere), and a later incr
# counts from zero.
# Usage: tests/proc_counters.sh path/to/meshkv [COUNT]
set -uo pipefail
MESHKV=$(realpath "$1")
COUNT=${2:-2000}
BATCH=50
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 5)
NODES=()
for i in 0 1 2 3 4; do NODES+=("127.0.0.1:$((BASE + i))"); done
OPTS=(--anti-entropy-interval 200)
total_is() { local n; for n in "${NODES[@]}"; do value_is "$1" "$n" "$2" || return 1; done; }

start_node n1 "$BASE" "${OPTS[@]}"
for i in 2 3 4; do start_node "n$i" $((BASE + i - 1)) --join "${NODES[0]}" "${OPTS[@]}"; done
start_node n5 $((BASE + 4)) --join "${NODES[0]}" --data-dir "$RUN_DIR/n5" "${OPTS[@]}"
for i in 0 1 2 3 4; do
  for m in n1 n2 n3 n4 n5; do wait_for 15 "$m alive at ${NODES[$i]}" member_is $((BASE + i)) "$m" alive; done
done

# ---- 5 clients, 30 % loss ---------------------------------------------------------
for n in "${NODES[@]}"; do
  "$MESHKV" loss --node "$n" --drop 0.3 >/dev/null || fail "loss --drop 0.3 on $n"
done
client() {
  local done=0 n
  while [ "$done" -lt "$COUNT" ]; do
    n=${NODES[$((RANDOM % 5))]}
    "$MESHKV" incr hits --repeat "$BATCH" --node "$n" >/dev/null || { echo "client $1: incr via $n failed" >&2; return 1; }
    done=$((done + BATCH))
  done
}
started=$(date +%s%3N)
CLIENTS=()
for c in 1 2 3 4 5; do
  client "$c" &
  CLIENTS+=($!)
done
for pid in "${CLIENTS[@]}"; do wait "$pid" || fail "a client failed"; done
took=$(($(date +%s%3N) - started))
echo "5 clients x $COUNT increments under 30 % loss: ${took} ms ($((5 * COUNT * 1000 / (took + 1))) incr/s)"
for n in "${NODES[@]}"; do "$MESHKV" loss --node "$n" --clear >/dev/null || fail "loss --clear on $n"; done
WANT=$((5 * COUNT))
wait_for 30 "hits = $WANT on every node" total_is hits "$WANT"
for n in "${NODES[@]}"; do
  out=$("$MESHKV" get hits --node "$n" --json) || fail "get --json on $n"
  [[ "$out" == *'"type":"counter"'* ]] || fail "get --json of a counter says its type: $out"
  [ "$("$MESHKV" list --node "$n" | grep -c hits)" = 1 ] || fail "list on $n shows hits once: $("$MESHKV" list --node "$n")"
done

# ---- restart from the log ------------------------------------------------------
kill_node n5 KILL
start_node n5 $((BASE + 4)) --join "${NODES[0]}" --data-dir "$RUN_DIR/n5" "${OPTS[@]}"
wait_for 15 "n5 back with hits = $WANT" value_is hits "${NODES[4]}" "$WANT"
"$MESHKV" incr hits 7 --node "${NODES[4]}" >/dev/null || fail "incr after the restart"
wait_for 10 "hits = $((WANT + 7)) everywhere" total_is hits $((WANT + 7))

# ---- one key, one type -------------------------------------------------------------
"$MESHKV" set plain v --node "${NODES[0]}" >/dev/null || fail "set plain"
"$MESHKV" incr plain --node "${NODES[0]}" 2>"$RUN_DIR/err"
[ $? = 2 ] || fail "incr of a key holding a value: expected exit 2"
grep -q "holds a value" "$RUN_DIR/err" || fail "incr of a value says why: $(cat "$RUN_DIR/err")"
"$MESHKV" incr other 4 --node "${NODES[1]}" >/dev/null || fail "incr other"
"$MESHKV" set other text --node "${NODES[1]}" >/dev/null || fail "set over a counter"
wait_for 10 "other is a value everywhere" total_is other text

# ---- watch and diff name the counter, never its parts -------------------------
"$MESHKV" watch --node "${NODES[0]}" --json >"$RUN_DIR/watch" 2>/dev/null &
PIDS+=($!)
sleep 0.3
"$MESHKV" loss --node "${NODES[1]}" --drop 1 --direction both >/dev/null || fail "loss --drop 1 on n2"
"$MESHKV" incr seen 2 --node "${NODES[0]}" >/dev/null || fail "incr seen"
"$MESHKV" diff "${NODES[0]}" "${NODES[1]}" >"$RUN_DIR/diff"
[ $? = 1 ] || fail "diff of nodes that differ by a counter: expected exit 1"
grep -q "only in .*: seen (counter part of [0-9a-f]\{16\})" "$RUN_DIR/diff" || fail "diff names the counter: $(cat "$RUN_DIR/diff")"
"$MESHKV" loss --node "${NODES[1]}" --clear >/dev/null || fail "loss --clear on n2"
wait_for 10 "seen = 2 everywhere" total_is seen 2
grep -q '"key":"seen","value":"2","deleted":false,"type":"counter"' "$RUN_DIR/watch" ||
  fail "watch shows the counter's total: $(cat "$RUN_DIR/watch")"
grep -q 'u0000' "$RUN_DIR/watch" && fail "watch shows a counter's internal key: $(cat "$RUN_DIR/watch")"

# ---- del resets; a later incr counts from zero ------------------------------------
"$MESHKV" del hits --node "${NODES[2]}" >/dev/null || fail "del hits"
wait_for 10 "hits gone everywhere" absent_on_all hits
"$MESHKV" decr hits 3 --node "${NODES[3]}" >/dev/null || fail "decr after del"
"$MESHKV" incr hits 5 --node "${NODES[0]}" >/dev/null || fail "incr after del"
wait_for 10 "hits = 2 everywhere after del" total_is hits 2
echo "PASS: proc_counters"
