#!/usr/bin/env bash
# A damaged or missing snapshot with real processes (issue 14, item 5): two
# nodes with data directories; b is stopped cleanly (its snapshot then holds
# every key, its log none), then a byte of its snapshot is flipped, or the
# snapshot deleted. The start must be refused with exit 2 and words that say
# what is wrong and where; --repair must start it, say at warn what it
# dropped, and anti-entropy must bring every key back from a.
# Usage: tests/proc_snapshot.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
# shellcheck source=/dev/null
source "$(dirname "$0")/lib_proc.sh"
KEYS=2000 # two records of entries in the snapshot (1024 a record)
BASE=$(free_base_port 2)
PA=$BASE PB=$((BASE + 1))
DB="$RUN_DIR/b"

field() { "$MESHKV" status --node "127.0.0.1:$1" --json 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
keys_are() { [ "$(field "$1" keys)" = "$2" ]; }
node_up() { "$MESHKV" status --node "127.0.0.1:$1" >/dev/null 2>&1; }

# stop_b: SIGTERM (a clean shutdown writes the snapshot), reaped, port free.
stop_b() { kill_node b TERM; }

# refused NAME WORDS...: b started in the foreground (bounded: an old binary
# that starts anyway is stopped after 10 s) exits 2 with every WORDS in its
# output.
refused() {
  local name=$1 rc
  shift
  timeout 10 "$MESHKV" node --id b --listen "127.0.0.1:$PB" --data-dir "$DB" </dev/null \
    >"$RUN_DIR/$name.log" 2>&1
  rc=$?
  [ "$rc" = 2 ] || fail "$name: the start must be refused with exit 2 (got $rc): $(cat "$RUN_DIR/$name.log")"
  for w in "$@"; do
    grep -qF -- "$w" "$RUN_DIR/$name.log" || fail "$name: no '$w' in: $(cat "$RUN_DIR/$name.log")"
  done
}

# repaired WHAT: b starts with --repair, warns what it dropped, and gets every
# key back from a; a sample of them answers `get` on b.
repaired() {
  local t0
  t0=$(date +%s%N)
  start_node b "$PB" --data-dir "$DB" --join "127.0.0.1:$PA" --repair
  wait_for 10 "b starts with --repair ($1)" node_up "$PB"
  grep -q "WARN .*dropped" "$RUN_DIR/b.log" || fail "$1: no warning of what --repair dropped"
  wait_for 15 "all $KEYS keys back on b ($1)" keys_are "$PB" "$KEYS"
  for i in 1 500 1024 1500 2000; do
    value_is "k$i" "127.0.0.1:$PB" "v$i" || fail "$1: get k$i on b after --repair"
  done
  echo "$1: refused with the right words; --repair started, and said:"
  grep -E "WARN |INFO  loaded" "$RUN_DIR/b.log" | cut -c26- | sed 's/^/  /'
  echo "  every key back on b $((($(date +%s%N) - t0) / 1000000)) ms after its start"
}

start_node a "$PA" --data-dir "$RUN_DIR/a"
start_node b "$PB" --data-dir "$DB" --join "127.0.0.1:$PA"
wait_for 10 "a starts" node_up "$PA"
wait_for 10 "b starts" node_up "$PB"
seq 1 "$KEYS" | awk '{print "k" $1 " v" $1}' >"$RUN_DIR/keys.txt"
"$MESHKV" set --batch "$RUN_DIR/keys.txt" --node "127.0.0.1:$PA" >/dev/null || fail "batch write on a"
wait_for 20 "b holds the $KEYS keys" keys_are "$PB" "$KEYS"
stop_b
grep -q "snapshot (clean shutdown): $KEYS entries" "$RUN_DIR/b.log" || fail "b wrote no snapshot when stopped"

# ---- a flipped byte in the last record (the operator's case) ----------------------
size=$(stat -c %s "$DB/snapshot")
off=$((size - 10))
byte=$(od -An -tu1 -j "$off" -N1 "$DB/snapshot" | tr -d ' ')
printf '%b' "\\$(printf '%03o' $((byte ^ 0x5a)))" | dd of="$DB/snapshot" bs=1 seek="$off" conv=notrunc 2>/dev/null
refused flipped "$DB/snapshot: checksum mismatch at offset" "--repair"
if grep -q "incomplete snapshot" "$RUN_DIR/flipped.log"; then fail "a flipped byte is no incomplete snapshot"; fi
repaired "flipped byte"
stop_b

# ---- the snapshot deleted -------------------------------------------------------
rm "$DB/snapshot"
segs=("$DB"/wal-*.log) # sorted: eight-digit numbers
seg=${segs[0]}
refused missing "missing: $seg continues it" "--repair"
repaired "deleted snapshot"
stop_b
echo PASS
