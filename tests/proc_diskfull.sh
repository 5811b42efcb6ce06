#!/usr/bin/env bash
# A full disk refuses writes rather than lose them, against real processes:
# node a keeps its data directory on a small tmpfs, b is in memory. Writes
# through a fill the disk; the write whose log record does not fit is
# refused ("write refused: a: no space left on device", exit 3), is on
# neither node, and so are the writes of a batch that failed as a whole.
# Reads go on; `status`, `status --check` and /metrics say writes are refused. Once space is
# freed, writes are accepted again without a restart, and a restart of a
# from its directory finds every acknowledged write and no refused one.
# Needs root (mount -t tmpfs); exits 77 (skipped) without it.
# Usage: tests/proc_diskfull.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"

DISK=$RUN_DIR/disk
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=4m meshkv-test "$DISK" 2>/dev/null; then
  echo "skipped: cannot mount a tmpfs here (needs root)"
  exit 77
fi
# Runs before lib_proc's cleanup removes $RUN_DIR: the nodes first, then the disk.
unmount() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  umount "$DISK" 2>/dev/null
  cleanup
}
trap unmount EXIT

BASE=$(free_base_port 2)
A=127.0.0.1:$BASE
B=127.0.0.1:$((BASE + 1))
# Ballast taking most of the disk, freed later to give the space back.
head -c $((2560 * 1024)) /dev/zero >"$DISK/ballast" || fail "cannot write the ballast"

start_node a "$BASE" --data-dir "$DISK/a"
start_node b $((BASE + 1)) --join "$A"
wait_for 10 "a and b see each other" member_is "$BASE" b alive
wait_for 10 "b sees a" member_is $((BASE + 1)) a alive

VALUE=$(head -c 24000 /dev/zero | tr '\0' v)
# status_field NODE PATH: a field of `status --json` (PATH like storage.writes).
status_field() {
  "$MESHKV" status --node "$1" --json | python3 -c "
import json, sys
v = json.load(sys.stdin)
for p in '$2'.split('.'):
    v = v[p]
print(v)"
}

# ---- fill the disk ---------------------------------------------------------
acked=()
refused=""
for i in $(seq 1 200); do
  out=$("$MESHKV" set "fill-$i" "$VALUE" --node "$A" 2>&1)
  rc=$?
  if [ "$rc" = 0 ]; then
    acked+=("fill-$i")
    continue
  fi
  [ "$rc" = 3 ] || fail "a write on a full disk exits 3, not $rc: $out"
  [[ "$out" == *"write refused: a: no space left on device"* ]] ||
    fail "the refusal names the node and the reason: $out"
  refused="fill-$i"
  break
done
[ -n "$refused" ] || fail "200 writes of 24 KB fit on a 1.5 MB disk"
[ ${#acked[@]} -gt 10 ] || fail "only ${#acked[@]} writes were accepted before the disk filled"
echo "disk full after ${#acked[@]} writes: $refused refused"

# The refused write is on no node; every acknowledged one is on both.
sleep 1
for n in "$A" "$B"; do
  "$MESHKV" get "$refused" --node "$n" >/dev/null 2>&1 && fail "the refused $refused is on $n"
  for k in "${acked[0]}" "${acked[-1]}"; do
    value_is "$k" "$n" "$VALUE" || fail "acknowledged $k missing on $n"
  done
done

# Further writes are refused at once, batches whole; reads go on.
out=$("$MESHKV" set more v --node "$A" 2>&1)
[ $? = 3 ] || fail "a write while the disk is full exits 3: $out"
[[ "$out" == *"write refused: a: no space left on device"* ]] || fail "second refusal: $out"
"$MESHKV" del "${acked[0]}" --node "$A" >/dev/null 2>&1 && fail "a delete while the disk is full was accepted"
value_is "${acked[0]}" "$A" "$VALUE" || fail "a read while the disk is full"
[ "$(status_field "$A" storage.writes)" = refused ] || fail "status shows writes refused"
# Both refusals above are counted; read until they are (bounded), as the
# count was seen lagging the refusal's answer by a moment.
refusals_counted() { [ "$(status_field "$A" storage.writes_refused)" -ge 2 ]; }
wait_for 5 "status counts refused writes" refusals_counted
# Health checks say so too (GET /ready gives the same verdict: proc_health.sh).
out=$("$MESHKV" status --check --node "$A")
rc=$?
[ $rc = 1 ] || fail "status --check while the disk is full: exit $rc: $out"
[[ "$out" == "not ready: a ($A): writes refused: "*"no space left on device"* ]] || fail "status --check says: $out"

# b's writes still reach a (merged in memory while a's log refuses them).
"$MESHKV" set from-b hello --node "$B" >/dev/null || fail "set on b"
wait_for 10 "b's write reaches a" value_is from-b "$A" hello

# ---- space returns ----------------------------------------------------------
rm -f "$DISK/ballast"
t0=$(date +%s%N)
wait_for 20 "a accepts writes again" "$MESHKV" set after v --node "$A"
echo "writes accepted again $(( ($(date +%s%N) - t0) / 1000000 )) ms after space was freed"
[ "$(status_field "$A" storage.writes)" = accepted ] || fail "status shows writes accepted"
"$MESHKV" status --check --node "$A" >/dev/null || fail "status --check once space is back: exit $?"
wait_for 10 "the write after recovery reaches b" value_is after "$B" v

# A batch that does not fit fails whole: none of its writes is on a node.
head -c $((3 * 1024 * 1024)) /dev/zero >"$DISK/ballast2" 2>/dev/null
batch=$RUN_DIR/batch
for i in $(seq 1 20); do echo "batch-$i $VALUE"; done >"$batch"
out=$("$MESHKV" set --batch "$batch" --node "$A" 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
  echo "note: the batch fit in what was left; its refusal is not exercised"
else
  [ "$rc" = 3 ] || fail "a batch that does not fit exits 3, not $rc: $out"
  sleep 1
  for n in "$A" "$B"; do
    for k in batch-1 batch-20; do
      "$MESHKV" get "$k" --node "$n" >/dev/null 2>&1 && fail "$k of the refused batch is on $n"
    done
  done
fi
rm -f "$DISK/ballast2"
wait_for 20 "a accepts writes after the batch" "$MESHKV" set after2 v --node "$A"

# ---- restart from the directory ----------------------------------------------
kill_node a
start_node a "$BASE" --data-dir "$DISK/a"
wait_for 10 "a restarted" "$MESHKV" status --node "$A"
for k in "${acked[@]}"; do
  value_is "$k" "$A" "$VALUE" || fail "acknowledged $k lost by the restart"
done
value_is after "$A" v || fail "the write after recovery lost by the restart"
"$MESHKV" get "$refused" --node "$A" >/dev/null 2>&1 && fail "the refused $refused came back with the restart"
grep -q "write-ahead log failed" "$RUN_DIR/a.log" 2>/dev/null || true
echo "proc_diskfull: ok"
