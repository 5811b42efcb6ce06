#!/usr/bin/env bash
# Prometheus metrics with real processes: a durable node with --metrics is
# scraped over HTTP after writes; the exposition passes `promtool check
# metrics` and carries the figures the node's state implies.
# Usage: tests/proc_metrics.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 3)
P1=$BASE P2=$((BASE + 1)) PM=$((BASE + 2))
URL="http://127.0.0.1:$PM/metrics"

start_node m1 "$P1" --data-dir "$RUN_DIR/m1" --metrics "127.0.0.1:$PM"
start_node m2 "$P2" --join "127.0.0.1:$P1"
wait_for 15 "m2 alive at m1" member_is "$P1" m2 alive
for i in 1 2 3; do "$MESHKV" set "k$i" "v$i" --node "127.0.0.1:$P1" >/dev/null || fail "set k$i"; done
"$MESHKV" del k3 --node "127.0.0.1:$P1" >/dev/null || fail "del k3"
# A counter changed through both nodes, a set of two members, a set emptied again.
"$MESHKV" incr hits --node "127.0.0.1:$P1" >/dev/null || fail "incr via m1"
"$MESHKV" incr hits --node "127.0.0.1:$P2" >/dev/null || fail "incr via m2"
"$MESHKV" sadd team ann bo --node "127.0.0.1:$P1" >/dev/null || fail "sadd team"
"$MESHKV" sadd gone x --node "127.0.0.1:$P1" >/dev/null || fail "sadd gone"
"$MESHKV" srem gone x --node "127.0.0.1:$P1" >/dev/null || fail "srem gone"
wait_for 10 "m2's increment at m1" value_is hits "127.0.0.1:$P1" 2
sleep 0.5

scrape() { curl -sS --max-time 5 "$@"; }
scrape "$URL" >"$RUN_DIR/metrics.txt" || fail "scrape failed"
metric() { grep -E "^$1 " "$RUN_DIR/metrics.txt" | awk '{print $2}'; }

if command -v promtool >/dev/null; then
  promtool check metrics <"$RUN_DIR/metrics.txt" >"$RUN_DIR/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$RUN_DIR/promtool.out")"
  echo "promtool check metrics: ok ($(grep -vc '^#' "$RUN_DIR/metrics.txt") samples)"
  # The check can fail: a sample without its TYPE line is refused.
  printf 'meshkv_bogus{a="1"} x\n' | promtool check metrics >/dev/null 2>&1 && fail "promtool accepts garbage"
else
  echo "promtool not installed: format check skipped"
fi

# k1, k2; hits' two parts; team's two adds; gone's add and remove.
[ "$(metric meshkv_keys)" = 8 ] || fail "meshkv_keys is $(metric meshkv_keys), want 8"
[ "$(metric 'meshkv_keys_by_type\{type="register"\}')" = 2 ] || fail "registers: want 2 (k1, k2)"
[ "$(metric 'meshkv_keys_by_type\{type="counter"\}')" = 1 ] || fail "counters: want 1 (hits)"
# A set whose members were all removed keeps its entries: counted while they stay.
[ "$(metric 'meshkv_keys_by_type\{type="set"\}')" = 2 ] || fail "sets: want 2 (team, gone)"
[ "$(metric meshkv_tombstones)" = 1 ] || fail "meshkv_tombstones is $(metric meshkv_tombstones), want 1"
[ "$(metric 'meshkv_members\{state="alive"\}')" = 1 ] || fail "one alive member expected"
[ "$(metric 'meshkv_messages_sent_total\{type="push"\}')" -ge 4 ] || fail "pushes not counted"
[ "$(metric meshkv_wal_sync_seconds_count)" -ge 4 ] || fail "WAL syncs not counted"
grep -q '^meshkv_peer_rtt_seconds{peer="m2"} ' "$RUN_DIR/metrics.txt" || fail "no RTT for m2"
grep -q '^meshkv_vv_lag_writes{' "$RUN_DIR/metrics.txt" || fail "no version-vector lag"
grep -q 'k1\|v1' <(grep -v '^#' "$RUN_DIR/metrics.txt") && fail "a key or value leaked into the metrics"

# Anything but GET /metrics is refused, and an oversized request is cut off.
[ "$(scrape -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PM/")" = 404 ] || fail "/ should be 404"
[ "$(scrape -o /dev/null -w '%{http_code}' -X POST "$URL")" = 405 ] || fail "POST should be 405"
code=$(scrape -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 10000 /dev/zero | tr '\0' a)" "$URL")
[ "$code" = 431 ] || fail "an oversized request got $code, want 431"
"$MESHKV" status --node "127.0.0.1:$P1" >/dev/null || fail "node unwell after bad requests"
echo "PASS: metrics scraped, validated, and bad requests refused"
