#!/usr/bin/env bash
# Expiring keys with real processes: 3 nodes (n3 with a data directory), a
# 2 s grace period. A key set with --ttl 2s through n1 reaches every node,
# is served until its write's HLC plus 2 s, and from then on is absent on
# every node (get exits 1, list leaves it out) with no message sent; it
# never reappears: not while the tombstone rules collect it, not after n3
# restarts from its log. expire and ttl work through any node, and a value
# written with a ttl replicates with it (ttl on another node counts down).
# Usage: tests/proc_types.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 3)
P1=$BASE P2=$((BASE + 1)) P3=$((BASE + 2))
NODES=("127.0.0.1:$P1" "127.0.0.1:$P2" "127.0.0.1:$P3")
GC=(--tombstone-grace 2000 --anti-entropy-interval 200)
now_ms() { date +%s%3N; }
field() { "$MESHKV" status --node "$1" --json 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
present_on() { "$MESHKV" get "$1" --node "$2" >/dev/null 2>&1; }
on_all() { local n; for n in "${NODES[@]}"; do value_is "$1" "$n" "$2" || return 1; done; }
collected() { local n; for n in "${NODES[@]}"; do [ "$(field "$n" keys)" = "$1" ] || return 1; done; }

start_node n1 "$P1" "${GC[@]}"
start_node n2 "$P2" --join "127.0.0.1:$P1" "${GC[@]}"
start_node n3 "$P3" --join "127.0.0.1:$P1" --data-dir "$RUN_DIR/n3" "${GC[@]}"
for p in "$P1" "$P2" "$P3"; do
  for m in n1 n2 n3; do wait_for 15 "$m alive at :$p" member_is "$p" "$m" alive; done
done

# ---- usage errors -----------------------------------------------------------
"$MESHKV" set k v --ttl 0s --node "${NODES[0]}" 2>"$RUN_DIR/err"
[ $? = 2 ] || fail "--ttl 0s: expected exit 2"
grep -q "positive" "$RUN_DIR/err" || fail "--ttl 0s says why: $(cat "$RUN_DIR/err")"
"$MESHKV" set k v --ttl 2 --node "${NODES[0]}" 2>"$RUN_DIR/err"
[ $? = 2 ] || fail "--ttl without a unit: expected exit 2"
grep -q "want a number and a unit" "$RUN_DIR/err" || fail "--ttl 2 says why: $(cat "$RUN_DIR/err")"

# ---- a 2 s key: served, then gone everywhere at its HLC + 2 s ----------------
"$MESHKV" set keep forever --node "${NODES[0]}" >/dev/null || fail "set keep"
before=$(now_ms)
out=$("$MESHKV" set session abc --ttl 2s --node "${NODES[0]}" --json) || fail "set --ttl 2s: $out"
[[ "$out" == *'"ttl_ms":2000'* ]] || fail "set --ttl answers its ttl_ms: $out"
wait_for 2 "session on every node" on_all session abc
left=$("$MESHKV" ttl session --node "${NODES[1]}" --json) || fail "ttl on n2: $left"
ms=$(echo "$left" | grep -o '"ttl_ms":[0-9]*' | cut -d: -f2)
{ [ -n "$ms" ] && [ "$ms" -le 2000 ] && [ "$ms" -gt 0 ]; } || fail "ttl on n2 counts down from 2000: $left"
# 2 s after the write (and a little for the command's own latency): absent.
sleep_ms=$((before + 2000 + 100 - $(now_ms)))
[ "$sleep_ms" -gt 0 ] && sleep "$(awk "BEGIN {print $sleep_ms / 1000}")"
absent_on_all session || fail "session still served somewhere 2.1 s after its write"
for n in "${NODES[@]}"; do
  "$MESHKV" list --node "$n" | grep -q session && fail "list on $n shows the expired key"
done
"$MESHKV" del session --node "${NODES[2]}" >/dev/null 2>&1
[ $? = 1 ] || fail "del of an expired key: expected exit 1 (not found)"
# It never reappears: checked while the others exchange state and the
# tombstone rules collect it (grace 2 s after its expiry).
end=$((SECONDS + 6))
while [ $SECONDS -lt $end ]; do
  absent_on_all session || fail "the expired key came back"
  collected 1 && break
  sleep 0.2
done
wait_for 10 "the expired key collected on every node" collected 1
absent_on_all session || fail "the expired key came back after collection"

# ---- restart from the log: still gone, keep still there ----------------------
kill_node n3 TERM
start_node n3 "$P3" --join "127.0.0.1:$P1" --data-dir "$RUN_DIR/n3" "${GC[@]}"
wait_for 15 "n3 back" value_is keep "${NODES[2]}" forever
absent_on_all session || fail "the expired key came back after n3 restarted"

# ---- expire and ttl ----------------------------------------------------------
"$MESHKV" ttl keep --node "${NODES[1]}" | grep -q "no expiry" || fail "ttl of a permanent key"
"$MESHKV" expire nothing 1s --node "${NODES[1]}" >/dev/null 2>&1
[ $? = 1 ] || fail "expire of an absent key: expected exit 1"
before=$(now_ms)
"$MESHKV" expire keep 1500ms --node "${NODES[1]}" >/dev/null || fail "expire keep"
wait_for 1 "keep still served" on_all keep forever
sleep_ms=$((before + 1500 + 100 - $(now_ms)))
[ "$sleep_ms" -gt 0 ] && sleep "$(awk "BEGIN {print $sleep_ms / 1000}")"
absent_on_all keep || fail "keep still served 1.6 s after expire 1500ms"
"$MESHKV" set keep again --node "${NODES[2]}" >/dev/null || fail "set keep again"
wait_for 5 "keep again everywhere" on_all keep again
echo "PASS: proc_types"
