#!/usr/bin/env bash
# Version vectors stay the size of the live mesh, with real processes: three
# nodes with --data-dir, each writing; n3 is killed and restarted five times
# (a new origin each time) and writes after every start. Within a bounded
# wait, `meshkv clock --json` on every node shows one row per live node
# (three), every value written by an ended process is still readable on every
# node, and the digests agree.
# Usage: tests/proc_restart_rows.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 3)
P=("$BASE" $((BASE + 1)) $((BASE + 2)))
N1=127.0.0.1:${P[0]}
RESTARTS=5

node_up() { "$MESHKV" status --node "127.0.0.1:$1" >/dev/null 2>&1; }
rows_on() { "$MESHKV" clock --node "127.0.0.1:$1" --json | grep -o '"origin":' | wc -l; }

start_node n1 "${P[0]}" --data-dir "$RUN_DIR/n1"
start_node n2 "${P[1]}" --data-dir "$RUN_DIR/n2" --join "$N1"
start_node n3 "${P[2]}" --data-dir "$RUN_DIR/n3" --join "$N1"
for i in 0 1 2; do wait_for 10 "n$((i + 1)) starts" node_up "${P[$i]}"; done
all_alive() {
  member_is "${P[0]}" n2 alive && member_is "${P[0]}" n3 alive && member_is "${P[1]}" n3 alive
}
wait_for 20 "three nodes see each other alive" all_alive
"$MESHKV" set a1 from-n1 --node "$N1" >/dev/null || fail "set on n1"
"$MESHKV" set b1 from-n2 --node "127.0.0.1:${P[1]}" >/dev/null || fail "set on n2"
"$MESHKV" set c0 from-n3-0 --node "127.0.0.1:${P[2]}" >/dev/null || fail "set on n3"

for r in $(seq 1 "$RESTARTS"); do
  kill_node n3
  start_node n3 "${P[2]}" --data-dir "$RUN_DIR/n3" --join "$N1"
  wait_for 10 "n3 restarts ($r)" node_up "${P[2]}"
  # Each process of n3 writes (a new origin with a row of its own) and sees
  # its write replicated before it ends.
  wait_for 10 "n3 writes after restart $r" "$MESHKV" set "c$r" "from-n3-$r" --node "127.0.0.1:${P[2]}"
  wait_for 10 "c$r reaches n1" value_is "c$r" "$N1" "from-n3-$r"
  wait_for 10 "c$r reaches n2" value_is "c$r" "127.0.0.1:${P[1]}" "from-n3-$r"
done
echo "ok: n3 restarted $RESTARTS times, one write per process"

one_row_per_node() { for p in "${P[@]}"; do [ "$(rows_on "$p")" = 3 ] || return 1; done; }
t0=$(date +%s%N)
end=$((SECONDS + 30))
until one_row_per_node; do
  [ $SECONDS -lt $end ] || fail "clock rows after $RESTARTS restarts (want 3 on each node): n1 $(rows_on "${P[0]}"), n2 $(rows_on "${P[1]}"), n3 $(rows_on "${P[2]}")"
  sleep 0.2
done
echo "ok: clock shows 3 rows on n1, n2 and n3, $((($(date +%s%N) - t0) / 1000000)) ms after n3's last write reached the others"
"$MESHKV" clock --node "$N1" --json | grep -q '"retired":{"n1":[1-9]' || fail "clock does not count the retired origins: $("$MESHKV" clock --node "$N1" --json)"

for p in "${P[@]}"; do
  for r in $(seq 0 "$RESTARTS"); do
    value_is "c$r" "127.0.0.1:$p" "from-n3-$r" || fail "c$r (written by an ended process) is not from-n3-$r on port $p"
  done
done
same_digests() { "$MESHKV" diff "$N1" "127.0.0.1:${P[1]}" && "$MESHKV" diff "$N1" "127.0.0.1:${P[2]}"; }
wait_for 10 "equal digests" same_digests
# A write after retirement still replicates everywhere.
"$MESHKV" set after retired --node "127.0.0.1:${P[1]}" >/dev/null || fail "set after retirement"
wait_for 10 "a write after retirement reaches n3" value_is after "127.0.0.1:${P[2]}" retired
echo PASS
