#!/usr/bin/env bash
# Durability with real processes and SIGKILL: a writer records every write a
# node acknowledged; the node is killed at random moments, restarted, and
# every acknowledged write must be there (20 rounds on one node, 20 in a
# 3-node cluster). Then a torn log tail is cut with a warning, and damage in
# the middle refuses the start unless --repair.
# Usage: tests/proc_durability.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
ROUNDS=${MESHKV_KILL_ROUNDS:-20}
BASE=$(free_base_port 3)
ACKED="$RUN_DIR/acked"
: >"$ACKED"

node_up() { "$MESHKV" status --node "127.0.0.1:$1" >/dev/null 2>&1; }

# writer PORTS... : writes unique keys through random nodes until a write
# fails or 400 are done; records each acknowledged one.
writer() {
  local ports=("$@") i port
  for i in $(seq 1 400); do
    port=${ports[$((RANDOM % ${#ports[@]}))]}
    key="r${ROUND}-w$i"
    if "$MESHKV" set "$key" "v$i-$ROUND" --node "127.0.0.1:$port" --timeout 1000 >/dev/null 2>&1; then
      echo "$key v$i-$ROUND" >>"$ACKED"
    else
      return 0
    fi
  done
}

# Every acknowledged write is present on the node at PORT.
check_all_present() {
  local port=$1
  "$MESHKV" list --node "127.0.0.1:$port" --json --timeout 5000 |
    grep -o '"key":"[^"]*","value":"[^"]*"' | sed 's/"key":"\([^"]*\)","value":"\([^"]*\)"/\1 \2/' |
    sort >"$RUN_DIR/present.$port"
  sort "$ACKED" >"$RUN_DIR/acked.sorted"
  comm -23 "$RUN_DIR/acked.sorted" "$RUN_DIR/present.$port" >"$RUN_DIR/missing.$port"
  [ ! -s "$RUN_DIR/missing.$port" ]
}

# ---- one node ------------------------------------------------------------------
start_node solo "$BASE" --data-dir "$RUN_DIR/solo"
wait_for 10 "solo node starts" node_up "$BASE"
for ROUND in $(seq 1 "$ROUNDS"); do
  writer "$BASE" &
  W=$!
  sleep "0.$((RANDOM % 5 + 1))"
  kill_node solo
  wait "$W"
  start_node solo "$BASE" --data-dir "$RUN_DIR/solo"
  wait_for 10 "solo restarts (round $ROUND)" node_up "$BASE"
  check_all_present "$BASE" || fail "round $ROUND: acknowledged writes lost: $(head -5 "$RUN_DIR/missing.$BASE")"
done
echo "single node: $ROUNDS SIGKILL rounds, $(wc -l <"$ACKED") acknowledged writes, none lost"
kill_node solo

# ---- three nodes -------------------------------------------------------------------
: >"$ACKED"
P=("$BASE" $((BASE + 1)) $((BASE + 2)))
start_node c0 "${P[0]}" --data-dir "$RUN_DIR/c0"
start_node c1 "${P[1]}" --data-dir "$RUN_DIR/c1" --join "127.0.0.1:${P[0]}"
start_node c2 "${P[2]}" --data-dir "$RUN_DIR/c2" --join "127.0.0.1:${P[0]}"
for i in 0 1 2; do wait_for 10 "c$i starts" node_up "${P[$i]}"; done
for ROUND in $(seq 1 "$ROUNDS"); do
  victim=$((RANDOM % 3))
  others=()
  for i in 0 1 2; do [ "$i" != "$victim" ] && others+=("${P[$i]}"); done
  writer "${P[@]}" &
  W=$!
  sleep "0.$((RANDOM % 5 + 1))"
  kill_node "c$victim"
  wait "$W"
  start_node "c$victim" "${P[$victim]}" --data-dir "$RUN_DIR/c$victim" --join "127.0.0.1:${others[0]}"
  wait_for 10 "c$victim restarts (round $ROUND)" node_up "${P[$victim]}"
done
all_have_everything() { for p in "${P[@]}"; do check_all_present "$p" || return 1; done; }
wait_for 30 "every node holds every acknowledged write" all_have_everything
echo "3 nodes: $ROUNDS SIGKILL rounds, $(wc -l <"$ACKED") acknowledged writes, none lost anywhere"
for i in 0 1 2; do kill_node "c$i"; done

# ---- damaged logs -------------------------------------------------------------------
D="$RUN_DIR/c0"
seg=$(ls "$D"/wal-*.log | tail -1)
printf '\x40\x00\x00\x00\x12\x34' >>"$seg"  # a torn append: a header cut short
start_node c0 "$BASE" --data-dir "$D"
wait_for 10 "a node with a torn log tail starts" node_up "$BASE"
grep -q "cut off .* torn or damaged record" "$RUN_DIR/c0.log" || fail "no warning about the torn tail"
check_all_present "$BASE" || fail "writes lost after a torn tail"
kill_node c0
seg=$(ls "$D"/wal-*.log | tail -1)
size=$(stat -c %s "$seg")
[ "$size" -gt 64 ] || fail "log segment unexpectedly small ($size bytes)"
# Damage the first record: flip every bit of one byte (writing a fixed value
# changed nothing when the byte already held it, and the node then started
# and ran until the test's timeout).
byte=$(od -An -tu1 -j20 -N1 "$seg" | tr -d ' ')
printf "\\$(printf '%03o' $((255 - byte)))" | dd of="$seg" bs=1 seek=20 conv=notrunc 2>/dev/null
[ "$(od -An -tu1 -j20 -N1 "$seg" | tr -d ' ')" = $((255 - byte)) ] || fail "could not damage $seg"
# Bounded: a node that does start must not hang the test.
timeout 20 "$MESHKV" node --id c0 --listen "127.0.0.1:$BASE" --data-dir "$D" </dev/null >"$RUN_DIR/corrupt.log" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "a damaged log must refuse the start with exit 2 (got $rc)"
grep -q "damaged record at offset" "$RUN_DIR/corrupt.log" || fail "the error must name the offset: $(cat "$RUN_DIR/corrupt.log")"
grep -q "$seg" "$RUN_DIR/corrupt.log" || fail "the error must name the file"
start_node c0 "$BASE" --data-dir "$D" --repair
wait_for 10 "--repair starts the node" node_up "$BASE"
echo "damaged logs: torn tail cut with a warning; mid-log damage refused, --repair starts"
echo PASS
