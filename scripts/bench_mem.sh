#!/usr/bin/env bash
# Memory, restart and full-sync figures for 1,000,000 keys (issue 19), as
# "name value" lines on stdout; scripts/bench.sh turns them into table rows.
#
#   scripts/bench_mem.sh BIN [KEYS]
#
# Real processes on loopback: node A (with a data directory) loads KEYS keys
# `key-%012d` -> `value-%014d` with `set --batch`; node B (in memory) joins
# and gets them by full sync. Then A is killed (-9: restart = snapshot of the
# load's compactions + log replay) and stopped cleanly (restart = snapshot
# alone), each restart timed by the node's own storage.startup_ms.
set -euo pipefail
bin=${1:?usage: bench_mem.sh BIN [KEYS]}
keys=${2:-1000000}
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free-looking port pair per run, away from the other benchmarks.
base=$((21000 + RANDOM % 2000))
a=127.0.0.1:$base b=127.0.0.1:$((base + 1))

now_ms() { date +%s%3N; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# field NODE NAME: a top-level number of `status --json`.
field() {
  "$bin" status --node "$1" --json 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}
# wait_keys NODE N SECONDS: until NODE's status shows N keys; fails after SECONDS.
wait_keys() {
  local deadline=$(($(date +%s) + $3)) k
  while (($(date +%s) < deadline)); do
    k=$(field "$1" keys || true)
    [ "${k:-0}" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
start() {  # start NAME ADDR ARGS...: the node's pid in $started
  local name=$1 addr=$2
  shift 2
  "$bin" node --id "$name" --listen "$addr" "$@" >"$tmp/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
  local _
  for _ in $(seq 100); do
    "$bin" status --node "$addr" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench_mem: $name did not start" >&2
  return 1
}

awk -v n="$keys" 'BEGIN { for (i = 0; i < n; i++) printf "key-%012d value-%014d\n", i, i }' >"$tmp/batch"

start a "$a" --data-dir "$tmp/a"
pa=$started
t0=$(now_ms)
"$bin" set --node "$a" --timeout 600000 --batch "$tmp/batch" >/dev/null
wait_keys "$a" "$keys" 120
echo "load_s $(awk -v t=$(($(now_ms) - t0)) 'BEGIN { print t / 1000 }')"
sleep 1  # let the allocator settle after the batch's buffers
echo "rss_loading_mb $(rss_mb "$pa")"

start b "$b" --join "$a"
pb=$started
t0=$(now_ms)
if wait_keys "$b" "$keys" 120; then
  echo "full_sync_ms $(($(now_ms) - t0))"
else
  echo "full_sync_ms -1"
fi
sleep 1
echo "rss_synced_mb $(rss_mb "$pb")"
kill -9 "$pb"

# Crash restart: whatever snapshot the load's compactions left, and the log.
kill -9 "$pa"
wait "$pa" 2>/dev/null || true
echo "wal_mb $(du -cm "$tmp"/a/wal-* 2>/dev/null | tail -1 | cut -f1)"
start a "$a" --data-dir "$tmp/a"
pa=$started
wait_keys "$a" "$keys" 120
echo "restart_crash_ms $(field "$a" startup_ms)"
echo "rss_restarted_mb $(rss_mb "$pa")"

# Clean restart: the shutdown wrote one snapshot of every key.
kill -TERM "$pa"
wait "$pa" 2>/dev/null || true
start a "$a" --data-dir "$tmp/a"
pa=$started
wait_keys "$a" "$keys" 120
echo "restart_clean_ms $(field "$a" startup_ms)"
