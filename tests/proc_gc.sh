#!/usr/bin/env bash
# Tombstone garbage collection with real processes: 300,000 keys are written
# into a 3-node cluster (data directories, a 4 s grace period) and deleted
# while n3 is cut off. Past the grace period n1 and n2 have dropped every
# tombstone: their memory and snapshot return to about their size before the
# keys were written. When the partition heals, n3 (away longer than half the
# grace period) is told by the others that it was left out and reconciles
# instead of bringing the deleted keys back.
# Usage: tests/proc_gc.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
KEYS=${MESHKV_GC_KEYS:-300000}
BASE=$(free_base_port 3)
P1=$BASE P2=$((BASE + 1)) P3=$((BASE + 2))
GC=(--tombstone-grace 4000 --log-level info)

field() { "$MESHKV" status --node "127.0.0.1:$1" --json 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
digest() { "$MESHKV" status --node "127.0.0.1:$1" --json 2>/dev/null | grep -o '"digest":"[^"]*"' | cut -d'"' -f4; }
rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
snap_bytes() { stat -c %s "$RUN_DIR/$1/snapshot"; }
keys_are() { [ "$(field "$1" keys)" = "$2" ] && [ "$(field "$1" tombstones)" = "0" ]; }
same_digest() { local d; d=$(digest "$P1"); [ -n "$d" ] && [ "$(digest "$P2")" = "$d" ] && [ "$(digest "$P3")" = "$d" ]; }

start_node n1 "$P1" --data-dir "$RUN_DIR/n1" "${GC[@]}"
start_node n2 "$P2" --data-dir "$RUN_DIR/n2" --join "127.0.0.1:$P1" "${GC[@]}"
start_node n3 "$P3" --data-dir "$RUN_DIR/n3" --join "127.0.0.1:$P1" "${GC[@]}"
for p in "$P1" "$P2" "$P3"; do
  for m in n1 n2 n3; do
    [ "127.0.0.1:$p" = "127.0.0.1:$P1" ] && [ $m = n1 ] && continue
    [ "$p" = "$P2" ] && [ $m = n2 ] && continue
    [ "$p" = "$P3" ] && [ $m = n3 ] && continue
    wait_for 15 "$m alive at :$p" member_is "$p" "$m" alive
  done
done

# Baseline: 1000 keys that stay. n2 restarts cleanly to write its snapshot.
seq 1 1000 | awk '{print "base-" $1 " v" $1}' >"$RUN_DIR/base.txt"
"$MESHKV" set --batch "$RUN_DIR/base.txt" --node "127.0.0.1:$P1" >/dev/null || fail "baseline batch"
for p in "$P1" "$P2" "$P3"; do wait_for 20 "baseline on :$p" keys_are "$p" 1000; done
kill -TERM "$PID_n2"; wait "$PID_n2"
S0=$(snap_bytes n2)
start_node n2 "$P2" --data-dir "$RUN_DIR/n2" --join "127.0.0.1:$P1" "${GC[@]}"
wait_for 15 "n2 back" member_is "$P1" n2 alive
wait_for 15 "n2 sees n3" member_is "$P2" n3 alive
sleep 1
R0=$(rss_kb "$PID_n2")

# 100,000 keys in, everywhere.
seq 1 "$KEYS" | awk '{print "gone-" $1 " value-" $1}' >"$RUN_DIR/gone.txt"
"$MESHKV" set --batch "$RUN_DIR/gone.txt" --node "127.0.0.1:$P1" --timeout 20000 >/dev/null || fail "write batch"
for p in "$P1" "$P2" "$P3"; do wait_for 60 "$KEYS keys on :$p" keys_are "$p" $((KEYS + 1000)); done
R1=$(rss_kb "$PID_n2")

# Cut n3 off, then delete all of them on the majority side.
"$MESHKV" loss --partition n3 --node "127.0.0.1:$P1" >/dev/null || fail "loss on n1"
"$MESHKV" loss --partition n3 --node "127.0.0.1:$P2" >/dev/null || fail "loss on n2"
"$MESHKV" loss --partition n1,n2 --node "127.0.0.1:$P3" >/dev/null || fail "loss on n3"
wait_for 15 "n1 declares n3 dead" member_is "$P1" n3 dead
wait_for 15 "n3 declares n1 dead" member_is "$P3" n1 dead
cut -d' ' -f1 "$RUN_DIR/gone.txt" >"$RUN_DIR/gone.keys"
"$MESHKV" del --batch "$RUN_DIR/gone.keys" --node "127.0.0.1:$P1" --timeout 20000 >/dev/null || fail "delete batch"
T_DEL=$SECONDS
for p in "$P1" "$P2"; do wait_for 60 "tombstones collected on :$p" keys_are "$p" 1000; done
echo "tombstones collected on n1 and n2 $((SECONDS - T_DEL)) s after the deletes (grace 4 s)"
[ "$(field "$P3" keys)" = $((KEYS + 1000)) ] || fail "n3 should still hold the keys it never saw deleted"
sleep 1
R2=$(rss_kb "$PID_n2")
S2=$(snap_bytes n2)
echo "n2 memory: ${R0} KB before the writes, ${R1} KB with $KEYS keys, ${R2} KB after delete and collection"
echo "n2 snapshot: ${S0} bytes before the writes, ${S2} bytes after delete and collection"
# "Near": back within a quarter of what the keys had added, and the snapshot
# within 2x (plus a page) of the baseline.
[ $((R2 - R0)) -le $(((R1 - R0) / 4)) ] || fail "memory did not come back: $R0 -> $R1 -> $R2 KB"
[ "$S2" -le $((2 * S0 + 4096)) ] || fail "snapshot did not shrink: $S0 -> $S2 bytes"

# Heal: n3 was without a majority far longer than half the grace period.
for p in "$P1" "$P2" "$P3"; do "$MESHKV" loss --clear --node "127.0.0.1:$p" >/dev/null || fail "clear :$p"; done
T_HEAL=$SECONDS
wait_for 60 "n3 reconciles to the 1000 surviving keys" keys_are "$P3" 1000
wait_for 30 "identical digests" same_digest
echo "n3 reconciled and all digests equal $((SECONDS - T_HEAL)) s after the heal"
grep -q "reconciled with" "$RUN_DIR/n3.log" || fail "n3 did not log its reconciliation"
sleep 2  # anti-entropy rounds after convergence must not bring anything back
for p in "$P1" "$P2" "$P3"; do
  n=$("$MESHKV" list gone- --node "127.0.0.1:$p" --json --timeout 10000 | grep -o '"key":' | wc -l)
  [ "$n" = 0 ] || fail "$n deleted keys came back on :$p"
  keys_are "$p" 1000 || fail ":$p holds $(field "$p" keys) keys, $(field "$p" tombstones) tombstones"
done
echo "no deleted key came back after the partition healed"

# A member stopped for longer than the grace period: the others left it out
# of their collections and tell it so when it comes back, so it reconciles.
kill -TERM "$PID_n3"; wait "$PID_n3"
seq 1 100 | awk '{print "base-" $1}' >"$RUN_DIR/base.gone"
"$MESHKV" del --batch "$RUN_DIR/base.gone" --node "127.0.0.1:$P2" >/dev/null || fail "delete while n3 is away"
for p in "$P1" "$P2"; do wait_for 60 "collected while n3 is away (:$p)" keys_are "$p" 900; done
start_node n3 "$P3" --data-dir "$RUN_DIR/n3" --join "127.0.0.1:$P1" "${GC[@]}"
wait_for 30 "restarted n3 converges" same_digest
grep -q "reconciled with" "$RUN_DIR/n3.log" || fail "restarted n3 did not reconcile"
keys_are "$P3" 900 || fail "restarted n3 holds $(field "$P3" keys) keys: deleted keys came back"
echo "PASS: $KEYS deletes collected; no deleted key came back after a partition or a long stop"
