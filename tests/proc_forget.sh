#!/usr/bin/env bash
# Membership that forgets, with real processes on 127.0.0.1:
#  - `meshkv forget` of a killed (dead) member removes it from the peers of
#    every survivor at once; forget of a live member, of an unknown name and
#    of the node itself is refused with a clear message and exit 2, 1 and 2;
#    the forgotten node, restarted, is a member again;
#  - a node with --reap-after 3000 removes a dead member by itself;
#  - --reap-after below --tombstone-grace is refused, as a flag and as the
#    config file's reap_after_ms, exit 2.
# Usage: tests/proc_forget.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 5)
N1=127.0.0.1:$BASE
N2=127.0.0.1:$((BASE + 1))

# lists NODE_PORT MEMBER: whether NODE's peers list MEMBER at all.
lists() { "$MESHKV" peers --node "127.0.0.1:$1" --json | grep -q "\"name\":\"$2\""; }
not_lists() { "$MESHKV" peers --node "127.0.0.1:$1" --json >/dev/null && ! lists "$1" "$2"; }

start_node n1 "$BASE"
start_node n2 $((BASE + 1)) --join "$N1"
start_node n3 $((BASE + 2)) --join "$N1"
all_alive() {
  member_is "$BASE" n2 alive && member_is "$BASE" n3 alive && member_is $((BASE + 1)) n3 alive &&
    member_is $((BASE + 1)) n1 alive && member_is $((BASE + 2)) n1 alive
}
wait_for 20 "three nodes see each other alive" all_alive
echo "ok: 3 nodes up"

kill_node n3
wait_for 15 "n1 and n2 declare n3 dead" bash -c "
  [ \"\$('$MESHKV' peers --node $N1 --json | grep -o '\"name\":\"n3\",\"state\":\"[a-z]*\"')\" = '\"name\":\"n3\",\"state\":\"dead\"' ] &&
  [ \"\$('$MESHKV' peers --node $N2 --json | grep -o '\"name\":\"n3\",\"state\":\"[a-z]*\"')\" = '\"name\":\"n3\",\"state\":\"dead\"' ]"
echo "ok: n3 killed and declared dead"

# Refusals first: a live member, an unknown name, the node itself.
out=$("$MESHKV" forget n2 --node "$N1" 2>&1)
rc=$?
[ $rc = 2 ] || fail "forget of the live n2 exited $rc (want 2): $out"
grep -q "n2 is alive" <<<"$out" || fail "forget of the live n2 said: $out"
lists "$BASE" n2 || fail "n2 is gone from n1's peers after a refused forget"
out=$("$MESHKV" forget nosuch --node "$N1" 2>&1)
rc=$?
[ $rc = 1 ] || fail "forget of an unknown name exited $rc (want 1): $out"
grep -q "no member named nosuch" <<<"$out" || fail "forget of an unknown name said: $out"
out=$("$MESHKV" forget n1 --node "$N1" 2>&1)
rc=$?
[ $rc = 2 ] || fail "forget of the node itself exited $rc (want 2): $out"
grep -q "n1 is this node" <<<"$out" || fail "forget of the node itself said: $out"
echo "ok: forget refuses a live member (exit 2), an unknown name (exit 1), the node itself (exit 2)"

t0=$(date +%s%N)
out=$("$MESHKV" forget n3 --node "$N1" 2>&1) || fail "forget n3: $out"
grep -q "forgot n3" <<<"$out" || fail "forget n3 said: $out"
not_lists "$BASE" n3 || fail "n1 still lists n3 right after forgetting it"
wait_for 5 "n2 no longer lists n3" not_lists $((BASE + 1)) n3
echo "ok: forget n3 on n1; gone from n1 and from n2 after $((($(date +%s%N) - t0) / 1000000)) ms"
"$MESHKV" status --node "$N1" --json | grep -q '"forgotten":1' || fail "n1's status does not count the forget"
out=$("$MESHKV" forget n3 --node "$N2" 2>&1)
[ $? = 1 ] && grep -q "removed already" <<<"$out" || fail "a second forget, on n2, said: $out"
sleep 2  # gossip goes on: it must stay gone
not_lists "$BASE" n3 && not_lists $((BASE + 1)) n3 || fail "n3 came back without restarting"
echo "ok: it stays gone; a second forget says it was removed already"

start_node n3 $((BASE + 2)) --join "$N1"
wait_for 20 "the restarted n3 is a member again everywhere" all_alive
echo "ok: n3 restarted is a member afresh"

# Reaping by itself: a two-node mesh whose observer reaps after 3 s.
start_node r1 $((BASE + 3)) --tombstone-grace 2000 --reap-after 3000
start_node r2 $((BASE + 4)) --join "127.0.0.1:$((BASE + 3))"
wait_for 20 "r1 sees r2 alive" member_is $((BASE + 3)) r2 alive
kill_node r2
wait_for 15 "r1 declares r2 dead" member_is $((BASE + 3)) r2 dead
t0=$(date +%s%N)
wait_for 10 "r1 reaps r2" not_lists $((BASE + 3)) r2
echo "ok: r1 (--reap-after 3000) removed the dead r2 $((($(date +%s%N) - t0) / 1000000)) ms after declaring it dead"
grep -q "reaping r2: dead for" "$RUN_DIR/r1.log" || fail "r1's log does not say it reaped r2"
"$MESHKV" status --node "127.0.0.1:$((BASE + 3))" --json | grep -q '"reap_after_ms":3000' ||
  fail "status does not show reap_after_ms"

# The setting's checks.
out=$("$MESHKV" node --id x --listen "127.0.0.1:$((BASE + 4))" --tombstone-grace 5000 --reap-after 1000 </dev/null 2>&1)
rc=$?
[ $rc = 2 ] || fail "--reap-after below the grace exited $rc (want 2): $out"
grep -q -- "--reap-after: 1000 is below the tombstone grace period (5000 ms)" <<<"$out" ||
  fail "--reap-after below the grace said: $out"
printf 'id = "x"\nreap_after_ms = 1000\n' >"$RUN_DIR/bad.toml"
out=$("$MESHKV" node --config "$RUN_DIR/bad.toml" --listen "127.0.0.1:$((BASE + 4))" </dev/null 2>&1)
rc=$?
[ $rc = 2 ] || fail "reap_after_ms below the grace in a file exited $rc (want 2): $out"
grep -q "bad.toml:2: key 'reap_after_ms': 1000 is below the tombstone grace period (86400000 ms)" <<<"$out" ||
  fail "reap_after_ms below the grace in a file said: $out"
echo "ok: --reap-after and reap_after_ms below the tombstone grace are refused (exit 2)"
echo "PASS"
