#!/usr/bin/env bash
# Health checks of a real node: GET /health answers 200 while the node runs;
# GET /ready answers 200 when the node is joined and writes are not refused,
# 503 with a one-line reason otherwise; `meshkv status --check` says the same
# in one line with exit 0 (ready), 1 (not ready) or 3 (unreachable).
# Not ready: a node told to join a seed that never answers ("not joined"),
# and a node whose clock runs an hour ahead of its two peers, once the
# clock-offset guard refuses its writes ("writes refused: ...").
# Usage: tests/proc_health.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 8)
A="127.0.0.1:$BASE" B="127.0.0.1:$((BASE + 1))" L="127.0.0.1:$((BASE + 3))"
MA="127.0.0.1:$((BASE + 4))" MB="127.0.0.1:$((BASE + 5))" ML="127.0.0.1:$((BASE + 6))"
NOBODY="127.0.0.1:$((BASE + 7))" # nothing listens there
T0=$SECONDS
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
# code URL: the HTTP status; body URL: the body.
code() { curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$1"; }
body() { curl -sS --max-time 5 "$1"; }

start_node a "$BASE" --metrics "$MA"
start_node c $((BASE + 2)) --join "$A"
wait_for 20 "a sees c alive" member_is "$BASE" c alive

[ "$(code "http://$MA/health")" = 200 ] || fail "/health of a running node: not 200"
[ "$(body "http://$MA/health")" = ok ] || fail "/health body: $(body "http://$MA/health")"
[ "$(code "http://$MA/ready")" = 200 ] || fail "/ready of a joined node: $(code "http://$MA/ready") $(body "http://$MA/ready")"
[ "$(body "http://$MA/ready")" = ready ] || fail "/ready body: $(body "http://$MA/ready")"
[ "$(curl -sS --max-time 5 -I -o /dev/null -w '%{http_code}' "http://$MA/ready")" = 200 ] || fail "HEAD /ready: not 200"
[ "$(code "http://$MA/nothing")" = 404 ] || fail "/nothing: not 404"
out=$("$MESHKV" status --check --node "$A")
rc=$?
[ $rc = 0 ] || fail "status --check on a ready node: exit $rc: $out"
[ "$out" = "ready: a ($A)" ] || fail "status --check on a ready node says: $out"
echo "ok: a is alive and ready: $out"

# ---- not joined: its only seed never answers --------------------------------
start_node lonely $((BASE + 3)) --join "$NOBODY" --metrics "$ML"
wait_for 10 "lonely answers /health" [ "$(code "http://$ML/health")" = 200 ]
[ "$(code "http://$ML/health")" = 200 ] || fail "/health of an unjoined node: not 200"
[ "$(code "http://$ML/ready")" = 503 ] || fail "/ready of an unjoined node: not 503"
body "http://$ML/ready" | grep -qx "not ready: not joined: .*" || fail "/ready body: $(body "http://$ML/ready")"
out=$("$MESHKV" status --check --node "$L")
rc=$?
[ $rc = 1 ] || fail "status --check on an unjoined node: exit $rc: $out"
grep -qx "not ready: lonely ($L): not joined: .*" <<<"$out" || fail "status --check says: $out"
echo "ok: unjoined: $out"
# It joins a: ready.
"$MESHKV" join "$A" --node "$L" >/dev/null || fail "join lonely to a"
wait_for 20 "lonely becomes ready" [ "$(code "http://$ML/ready")" = 200 ]
"$MESHKV" status --check --node "$L" >/dev/null || fail "status --check after the join: exit $?"
echo "ok: ready once joined"

# ---- writes refused: b's clock is an hour ahead of a and c -------------------
start_node b $((BASE + 1)) --join "$A" --clock-offset-ms 3600000 --metrics "$MB"
b_refuses() { [ "$(code "http://$MB/ready")" = 503 ]; }
wait_for 30 "b's /ready turns 503 once its clock is judged" b_refuses
[ "$(code "http://$MB/health")" = 200 ] || fail "/health of a refusing node: not 200 (it is alive)"
# The measured offset is an hour give or take the probe's round trip: 3599999 is
# as right as 3600001.
body "http://$MB/ready" | grep -Eqx "not ready: writes refused: this node's clock is 3[56][0-9]{5} ms ahead.*" ||
  fail "/ready body of b: $(body "http://$MB/ready")"
out=$("$MESHKV" status --check --node "$B")
rc=$?
[ $rc = 1 ] || fail "status --check on a refusing node: exit $rc: $out"
grep -q "^not ready: b ($B): writes refused: this node's clock is" <<<"$out" || fail "status --check says: $out"
# Asking is free: the guard's refusal counter does not move.
refused=$("$MESHKV" status --node "$B" --json | grep -o '"writes_refused":[0-9]*' | tail -n 1)
for _ in 1 2 3; do code "http://$MB/ready" >/dev/null; "$MESHKV" status --check --node "$B" >/dev/null; done
[ "$("$MESHKV" status --node "$B" --json | grep -o '"writes_refused":[0-9]*' | tail -n 1)" = "$refused" ] ||
  fail "health checks counted as refused writes"
echo "ok: refusing writes: $out"

# ---- unreachable -----------------------------------------------------------------
out=$("$MESHKV" status --check --node "$NOBODY" --timeout 500)
rc=$?
[ $rc = 3 ] || fail "status --check on nothing: exit $rc: $out"
grep -q "^node $NOBODY unreachable: " <<<"$out" || fail "status --check on nothing says: $out"
echo "ok: $out"
echo "PASS ($((SECONDS - T0)) s)"
