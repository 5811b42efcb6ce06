#!/usr/bin/env bash
# Add-wins sets with real processes: 3 nodes (n3 with a data directory),
# cut into {n1, n2} | {n3} with `meshkv loss --partition`. During the
# partition both sides add and remove members of `fruits` concurrently:
#   apple   removed by n1, re-added by n3            -> present (add wins)
#   banana  removed on both sides                    -> absent
#   cherry  removed by n3 alone                      -> absent
#   date    removed and re-added by n2               -> present
#   elder   added by n1 (n3 cannot remove it unseen) -> present
#   fig     added by n2 and n3, removed by n1        -> present (n3's add unseen)
#   grape   added by n1, removed by n2 after seeing it -> absent
#   kiwi    added by n2 and n3, removed by n1 and n3 -> absent (the two removes
#           together saw both adds; last-writer-wins between them would not)
# After healing, every node's smembers is exactly apple date elder fig; n3
# restarted from its log holds the same; watch names the set, never its
# internal keys; one key, one type (exit 2); del removes every member.
# Usage: tests/proc_sets.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 3)
NODES=("127.0.0.1:$BASE" "127.0.0.1:$((BASE + 1))" "127.0.0.1:$((BASE + 2))")
N1=${NODES[0]} N2=${NODES[1]} N3=${NODES[2]}
OPTS=(--anti-entropy-interval 200 --probe-interval 200)
WANT=$(printf 'apple\ndate\nelder\nfig')

members_are() { [ "$("$MESHKV" smembers "$1" --node "$2" 2>/dev/null)" = "$3" ]; }
members_everywhere() { local n; for n in "${NODES[@]}"; do members_are "$1" "$n" "$2" || return 1; done; }
member_there() { [ "$("$MESHKV" sismember "$1" "$2" --node "$3" 2>/dev/null)" = "$4" ]; }
sadd() { "$MESHKV" sadd "$1" "${@:3}" --node "$2" >/dev/null || fail "sadd $1 ${*:3} on $2"; }
srem() { "$MESHKV" srem "$1" "${@:3}" --node "$2" >/dev/null || fail "srem $1 ${*:3} on $2"; }

start_node n1 "$BASE" "${OPTS[@]}"
start_node n2 $((BASE + 1)) --join "$N1" "${OPTS[@]}"
start_node n3 $((BASE + 2)) --join "$N1" --data-dir "$RUN_DIR/n3" "${OPTS[@]}"
for i in 0 1 2; do
  for m in n1 n2 n3; do wait_for 15 "$m alive at ${NODES[$i]}" member_is $((BASE + i)) "$m" alive; done
done
"$MESHKV" watch --node "$N1" --json >"$RUN_DIR/watch" 2>/dev/null &
PIDS+=($!)

sadd fruits "$N1" apple banana cherry date
wait_for 10 "the first four members everywhere" members_everywhere fruits "$(printf 'apple\nbanana\ncherry\ndate')"

# ---- the partition: {n1, n2} | {n3} ------------------------------------------------
"$MESHKV" loss --node "$N1" --partition n3 --direction both >/dev/null || fail "partition on n1"
"$MESHKV" loss --node "$N2" --partition n3 --direction both >/dev/null || fail "partition on n2"
"$MESHKV" loss --node "$N3" --partition n1,n2 --direction both >/dev/null || fail "partition on n3"

srem fruits "$N1" apple
sadd fruits "$N3" apple
srem fruits "$N2" banana
srem fruits "$N3" banana
srem fruits "$N3" cherry
srem fruits "$N2" date
sadd fruits "$N2" date
sadd fruits "$N1" elder
"$MESHKV" srem fruits elder --node "$N3" >/dev/null  # n3 never saw elder: nothing to remove
sadd fruits "$N2" fig
sadd fruits "$N3" fig
wait_for 10 "n1 holds n2's fig" member_there fruits fig "$N1" true
srem fruits "$N1" fig
sadd fruits "$N1" grape
wait_for 10 "n2 holds n1's grape" member_there fruits grape "$N2" true
srem fruits "$N2" grape
sadd fruits "$N2" kiwi
sadd fruits "$N3" kiwi
wait_for 10 "n1 holds n2's kiwi" member_there fruits kiwi "$N1" true
srem fruits "$N1" kiwi
srem fruits "$N3" kiwi
sleep 1  # several anti-entropy rounds: the partition must hold
members_are fruits "$N3" "$(printf 'apple\ndate\nfig')" ||
  fail "n3 during the partition: $("$MESHKV" smembers fruits --node "$N3" | tr '\n' ' ')"
members_are fruits "$N1" "$(printf 'cherry\ndate\nelder')" ||
  fail "n1 during the partition: $("$MESHKV" smembers fruits --node "$N1" | tr '\n' ' ')"

# ---- heal: the add-wins result everywhere ------------------------------------------
for n in "${NODES[@]}"; do "$MESHKV" loss --node "$n" --clear >/dev/null || fail "loss --clear on $n"; done
wait_for 20 "apple date elder fig on every node" members_everywhere fruits "$WANT"
for n in "${NODES[@]}"; do
  out=$("$MESHKV" get fruits --node "$n" --json) || fail "get --json of a set on $n"
  [[ "$out" == *'"type":"set"'*'"count":4'* ]] || fail "get --json of a set on $n: $out"
  [ "$("$MESHKV" list --node "$n" | grep -c fruits)" = 1 ] || fail "list on $n shows fruits once: $("$MESHKV" list --node "$n")"
done
grep -q '"key":"fruits","value":"apple","deleted":false,"type":"set"' "$RUN_DIR/watch" ||
  fail "watch shows a member added to the set: $(head -c 2000 "$RUN_DIR/watch")"
grep -q 'u0000' "$RUN_DIR/watch" && fail "watch shows a set's internal key: $(head -c 2000 "$RUN_DIR/watch")"

# ---- restart from the log ----------------------------------------------------------
kill_node n3 KILL
start_node n3 $((BASE + 2)) --join "$N1" --data-dir "$RUN_DIR/n3" "${OPTS[@]}"
wait_for 15 "n3 back with the set" members_are fruits "$N3" "$WANT"
sadd fruits "$N3" lime
wait_for 10 "lime everywhere" members_everywhere fruits "$(printf 'apple\ndate\nelder\nfig\nlime')"

# ---- one key, one type -------------------------------------------------------------
"$MESHKV" set plain v --node "$N1" >/dev/null || fail "set plain"
"$MESHKV" sadd plain x --node "$N1" 2>"$RUN_DIR/err"
[ $? = 2 ] || fail "sadd of a key holding a value: expected exit 2"
grep -q "holds a value, not a set" "$RUN_DIR/err" || fail "sadd of a value says why: $(cat "$RUN_DIR/err")"
"$MESHKV" incr fruits --node "$N1" 2>"$RUN_DIR/err"
[ $? = 2 ] || fail "incr of a set: expected exit 2"
grep -q "is a set, not a counter" "$RUN_DIR/err" || fail "incr of a set says why: $(cat "$RUN_DIR/err")"
"$MESHKV" smembers plain --node "$N1" >/dev/null 2>&1
[ $? = 2 ] || fail "smembers of a value: expected exit 2"
"$MESHKV" smembers nothing --node "$N1" >/dev/null 2>&1
[ $? = 1 ] || fail "smembers of a missing key: expected exit 1"

# ---- del removes every member ------------------------------------------------------
"$MESHKV" del fruits --node "$N2" >/dev/null || fail "del fruits"
gone() { local n; for n in "${NODES[@]}"; do "$MESHKV" smembers fruits --node "$n" >/dev/null 2>&1; [ $? = 1 ] || return 1; done; }
wait_for 10 "fruits gone everywhere" gone
sadd fruits "$N3" apple
wait_for 10 "a set re-created after del" members_everywhere fruits apple
echo "PASS: proc_sets"
