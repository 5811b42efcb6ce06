#!/usr/bin/env bash
# The operator subcommands against real processes: join, loss, clock, diff,
# watch, trace, peers, status, list, set --batch and sim, a node with a
# skewed clock (--clock-offset-ms), bad arguments (exit 2) and unreachable
# nodes (exit 3, without hanging).
# Usage: tests/proc_tools.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 6)
A=127.0.0.1:$BASE B=127.0.0.1:$((BASE + 1)) C=127.0.0.1:$((BASE + 2))
DEAD=127.0.0.1:$((BASE + 3))  # nobody listens here
SKEWED=127.0.0.1:$((BASE + 4)) BEHIND=127.0.0.1:$((BASE + 5))
m() { "$MESHKV" "$@"; }
expect_rc() {  # expect_rc CODE DESCRIPTION COMMAND...
  local want=$1 what=$2
  shift 2
  "$@" >"$RUN_DIR/out" 2>&1
  local rc=$?
  [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want: $(head -c 300 "$RUN_DIR/out")"
}

# join: c starts alone and is bootstrapped into a's mesh by an operator.
start_node a "$BASE"
start_node b $((BASE + 1)) --join "$A"
start_node c $((BASE + 2))
wait_for 10 "b joins a" member_is "$BASE" b alive
m join "$A" --node "$C" >/dev/null || fail "join"
wait_for 10 "c is known to b after join" member_is $((BASE + 1)) c alive
echo "join: ok"

# set --batch, list, status
printf 'app/k1 one\napp/k2 two words\nother x\n' | m set --batch - --node "$A" >/dev/null || fail "set --batch"
wait_for 10 "batch replicated" value_is app/k2 "$C" "two words"
[ "$(m list app/ --node "$B" --json | grep -o '"key":"[^"]*"' | wc -l)" = 2 ] || fail "list with prefix"
m status --node "$A" --json | grep -q '"storage":{"kind":"memory"' || fail "status --json"
m status --node "$A" --json | grep -q '"digest":"[0-9a-f]\{16\}"' || fail "status shows the digest"
m peers --node "$A" --json | grep -q '"clock_offset_ms"' || fail "peers shows clock offsets"
# Options may come before the positionals: --node takes exactly one value.
m set --node "$A" early/k v1 >/dev/null || fail "set --node A KEY VALUE"
[ "$(m get --node "$A" early/k)" = v1 ] || fail "get --node A KEY"
m clock --node "$A" --node "$B" >/dev/null || fail "clock --node A --node B"
printf 'no-value-here\n' | m set --batch - --node "$A" >/dev/null 2>&1
[ $? = 2 ] || fail "a malformed batch line must exit 2"
echo "set --batch, list, status, peers: ok"

# watch streams local and replicated changes as JSON lines.
m watch --node "$B" --prefix w/ --json >"$RUN_DIR/watch.out" 2>&1 &
WATCH=$!
PIDS+=($WATCH)
sleep 0.3
m set w/1 hello --node "$A" >/dev/null
wait_for 10 "w/1 reaches c" value_is w/1 "$C" hello  # del of a key c lacks would write nothing
m del w/1 --node "$C" >/dev/null || fail "del w/1 on c"
wait_for 10 "watch saw a set and a delete" grep -q '"deleted":true' "$RUN_DIR/watch.out"
grep -q '"key":"w/1","value":"hello"' "$RUN_DIR/watch.out" || fail "watch missed the set"
kill "$WATCH"
echo "watch: ok"

# loss --partition: divergence shows in clock and diff; clearing heals it.
m loss --node "$A" --partition c >/dev/null || fail "loss --partition"
m loss --node "$C" --partition a,b >/dev/null || fail "loss --partition on c"
m loss --node "$A" --json | grep -q '"partition":\["c"\]' || fail "loss shows the partition"
m set split left --node "$A" >/dev/null
m set split right --node "$C" >/dev/null
sleep 0.3
expect_rc 1 "diff of diverged nodes" m diff "$A" "$C"
grep -q "differs: split" "$RUN_DIR/out" || fail "diff names the key"
m clock --node "$A" --node "$C" | grep -q " -1" || fail "clock shows a lag"
m loss --node "$A" --clear >/dev/null && m loss --node "$C" --clear >/dev/null || fail "loss --clear"
wait_for 15 "diff reports identical after the heal" m diff "$A" "$C"
[ "$(m get split --node "$A")" = right ] || fail "last writer wins after the heal"
echo "loss, clock, diff: ok"

# trace: every member acknowledges; an injected delay shows.
m loss --node "$C" --delay 30 >/dev/null
m trace t/1 v --node "$A" >"$RUN_DIR/trace.out" || fail "trace"
grep -q "^c .*ms" "$RUN_DIR/trace.out" && grep -q "^b .*ms" "$RUN_DIR/trace.out" || fail "trace lists members"
m loss --node "$C" --drop 1 >/dev/null
expect_rc 1 "trace with a member that never acks" m trace t/2 v --node "$A" --timeout 300
m loss --node "$C" --clear >/dev/null
echo "trace: ok"

# sim: deterministic, and reports no lost write.
s1=$(m sim --seed 3 --nodes 4 --loss 0.2 --quiet) || fail "sim"
s2=$(m sim --seed 3 --nodes 4 --loss 0.2 --quiet)
[ "$s1" = "$s2" ] || fail "sim is not deterministic"
echo "$s1" | grep -q "lost 0" || fail "sim lost writes"
echo "sim: ok"

# --clock-offset-ms: a node whose clock runs an hour ahead stamps its writes
# an hour ahead, and its peers measure the offset; the config key takes a
# negative value; out of range is refused.
# (Its guard is off: a and b would have it refuse writes once measured;
# tests/proc_skew.sh tests the guard.)
start_node skewed $((BASE + 4)) --join "$A" --clock-offset-ms 3600000 --max-clock-offset 0
wait_for 10 "the skewed node is alive at a" member_is "$BASE" skewed alive
now_ms=$(date +%s%3N)
hlc=$(m set skew/1 ahead --node "$SKEWED" --json | grep -o '"hlc":"[0-9]*' | cut -d'"' -f4)
[ -n "$hlc" ] && [ "$hlc" -ge $((now_ms + 3590000)) ] && [ "$hlc" -le $((now_ms + 3610000)) ] ||
  fail "a write through a node an hour ahead has hlc ${hlc:-none}, now is $now_ms"
# The offset is null until a probe of the skewed node has been answered.
offset_near_an_hour() {
  local off
  off=$(m peers --node "$A" --json | grep -o '"name":"skewed",[^}]*' | grep -o '"clock_offset_ms":-\?[0-9]*' | cut -d: -f2)
  [ -n "$off" ] && [ "$off" -ge 3590000 ] && [ "$off" -le 3610000 ]
}
wait_for 10 "a measures the skewed node's clock an hour ahead" offset_near_an_hour
printf 'clock_offset_ms = -5000\nmax_clock_offset_ms = 0\n' >"$RUN_DIR/skew.toml"
start_node behind $((BASE + 5)) --config "$RUN_DIR/skew.toml"  # alone: adopts no other clock
wait_for 10 "the node with a config file starts" m status --node "$BEHIND"
now_ms=$(date +%s%3N)
hlc=$(m set skew/2 behind --node "$BEHIND" --json | grep -o '"hlc":"[0-9]*' | cut -d'"' -f4)
[ -n "$hlc" ] && [ "$hlc" -le $((now_ms - 4000)) ] && [ "$hlc" -ge $((now_ms - 6000)) ] ||
  fail "clock_offset_ms = -5000: a write has hlc ${hlc:-none}, now is $now_ms"
m status --node "$BEHIND" --json | grep -q '"guard":"off"' || fail "max_clock_offset_ms = 0 does not turn the guard off"
expect_rc 2 "--clock-offset-ms beyond a day" m node --clock-offset-ms 86400001
expect_rc 2 "--max-clock-offset beyond a day" m node --max-clock-offset 86400001
printf 'clock_offset_ms = "x"\n' >"$RUN_DIR/skew.toml"
expect_rc 2 "clock_offset_ms not an integer" m node --config "$RUN_DIR/skew.toml"
# The names an older README gave: refused, naming the real key.
for pair in probe_interval=probe_interval_ms gossip_interval=gossip_interval_ms key_file=key_files \
  allow_peer=allowed_peers; do
  printf '%s = 1\n' "${pair%%=*}" >"$RUN_DIR/bad.toml"
  expect_rc 2 "config key ${pair%%=*}" m node --config "$RUN_DIR/bad.toml"
  grep -q "unknown key '${pair%%=*}' (did you mean '${pair#*=}'?)" "$RUN_DIR/out" ||
    fail "config key ${pair%%=*}: no suggestion of ${pair#*=}: $(cat "$RUN_DIR/out")"
done
echo "clock offset: ok"

# Bad arguments: exit 2 with a message.
expect_rc 2 "loss --drop 2" m loss --node "$A" --drop 2
expect_rc 2 "loss --delay abc" m loss --node "$A" --delay abc
expect_rc 2 "diff with one address" m diff "$A"
expect_rc 2 "diff with a bad address" m diff "$A" nowhere
expect_rc 2 "clock --node garbage" m clock --node garbage
expect_rc 2 "sim --partition without times" m sim --partition 1
expect_rc 2 "trace without a value" m trace onlykey --node "$A"
expect_rc 2 "watch --node garbage" m watch --node garbage
expect_rc 2 "join a bad peer" m join not-an-address --node "$A"
expect_rc 2 "an unknown subcommand" m frobnicate
echo "bad arguments: ok"

# Unreachable nodes: exit 3, promptly.
for cmd in "get k" "status" "peers" "clock" "list" "loss" "watch" "trace k v" "join $A"; do
  t0=$SECONDS
  # shellcheck disable=SC2086
  expect_rc 3 "$cmd against a dead node" m $cmd --node "$DEAD"
  [ $((SECONDS - t0)) -le 5 ] || fail "$cmd hung against a dead node"
done
expect_rc 3 "diff against a dead node" m diff "$A" "$DEAD"
echo "unreachable nodes: ok"
echo PASS
