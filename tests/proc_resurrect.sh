#!/usr/bin/env bash
# Deleted keys must stay deleted (real processes, a 4 s tombstone grace on
# every node). Three ways a member that missed a delete can bring the key back
# after a and b have collected its tombstone:
#   1. c, cut off, writes k1 0.5 s before a deletes it (an acknowledged
#      delete newer than the minority's write); after the heal k1 must be
#      absent everywhere, and no node may ever show the minority's value.
#   2. c is paused (SIGSTOP) while k1..k20 are deleted and collected; after
#      SIGCONT the keys must not come back.
#   3. c is SIGKILLed while k1..k20 are deleted and collected, and restarts
#      from its data directory with its clock 30 s behind; the keys must not
#      come back.
# Each scenario runs on a fresh 3-node cluster and prints
# "scenario N: converged in X.Y s". ONLY=1|2|3 runs one scenario;
# KEEP_GOING=1 runs all of them even after a failure (exit 1 at the end if
# any failed).
# Usage: tests/proc_resurrect.sh path/to/meshkv
set -uo pipefail
[ $# = 1 ] || { echo "usage: [ONLY=1|2|3] [KEEP_GOING=1] $0 path/to/meshkv" >&2; exit 2; }
case ${ONLY:-} in "" | 1 | 2 | 3) ;; *) echo "ONLY must be 1, 2 or 3 (got '$ONLY')" >&2; exit 2 ;; esac
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
GC=(--tombstone-grace 4000 --log-level info)
N_KEYS=20

# ---- helpers -----------------------------------------------------------------------

# Milliseconds on a wall clock (for sub-second timings), and "X.Y" seconds since MS.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t / 1000)); }
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }

field() { "$MESHKV" status --node "127.0.0.1:$1" --json 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
digest() { "$MESHKV" status --node "127.0.0.1:$1" --json 2>/dev/null | grep -o '"digest":"[^"]*"' | cut -d'"' -f4; }
same_digest() { local d; d=$(digest "$PA"); [ -n "$d" ] && [ "$(digest "$PB")" = "$d" ] && [ "$(digest "$PC")" = "$d" ]; }
keys_are() { [ "$(field "$1" keys)" = "$2" ]; }
# At least N tombstones collected on the node at PORT, none left.
collected() {
  local c t
  c=$(field "$1" collected) t=$(field "$1" tombstones)
  [ -n "$c" ] && [ "$c" -ge "$2" ] && [ "$t" = 0 ]
}
both_collected() { collected "$PA" "$1" && collected "$PB" "$1"; }
# The k* entries the node at PORT holds, one "key=value" a line, or
# "unreachable".
present() {
  local out
  out=$("$MESHKV" list k --node "127.0.0.1:$1" --json --timeout 2000 2>/dev/null) || { echo unreachable; return; }
  grep -o '"key":"[^"]*","value":"[^"]*"' <<<"$out" | sed 's/"key":"\([^"]*\)","value":"\([^"]*\)"/\1=\2/'
}
# How many of the keys PRESENT lists, for a report: "N (k1=v1 k2=v2 ...)".
count() {
  case $1 in
    "") echo 0 ;;
    unreachable) echo "? (unreachable)" ;;
    *) echo "$(wc -l <<<"$1") ($(tr "\n" " " <<<"$1" | cut -c1-48)...)" ;;
  esac
}
digests() { echo "digests a=$(digest "$PA") b=$(digest "$PB") c=$(digest "$PC")"; }
port_of() { eval echo "\$P${1^^}"; }

loss() { "$MESHKV" loss --node "127.0.0.1:$1" "${@:2}" >/dev/null || fail "loss ${*:2} on :$1"; }

# start_cluster [durable]: a, b and c joined to a, each seeing the other two alive.
start_cluster() {
  local base dd=()
  base=$(free_base_port 3)
  PA=$base PB=$((base + 1)) PC=$((base + 2))
  A=127.0.0.1:$PA B=127.0.0.1:$PB C=127.0.0.1:$PC
  [ "${1:-}" = durable ] && dd=(--data-dir "$RUN_DIR/a")
  start_node a "$PA" "${dd[@]}" "${GC[@]}"
  [ "${1:-}" = durable ] && dd=(--data-dir "$RUN_DIR/b")
  start_node b "$PB" "${dd[@]}" --join "$A" "${GC[@]}"
  [ "${1:-}" = durable ] && dd=(--data-dir "$RUN_DIR/c")
  start_node c "$PC" "${dd[@]}" --join "$A" "${GC[@]}"
  local p m
  for p in "$PA:a" "$PB:b" "$PC:c"; do
    for m in a b c; do
      [ "${p#*:}" = $m ] && continue
      wait_for 15 "$m alive as seen from ${p#*:}" member_is "${p%:*}" "$m" alive
    done
  done
}

# Partition c away, in both directions, on a and b (and on c when "all").
partition_c() {
  loss "$PA" --partition c --direction both
  loss "$PB" --partition c --direction both
  [ "${1:-}" = all ] && loss "$PC" --partition a,b --direction both
}

# Write k1..k20 through a; wait until every node holds them.
write_keys() {
  seq 1 $N_KEYS | awk '{print "k" $1 " v" $1}' >"$RUN_DIR/keys.txt"
  cut -d' ' -f1 "$RUN_DIR/keys.txt" >"$RUN_DIR/keys.del"
  "$MESHKV" set --batch "$RUN_DIR/keys.txt" --node "$A" >/dev/null || fail "set --batch on a"
  for p in "$PA" "$PB" "$PC"; do wait_for 15 "$N_KEYS keys on :$p" keys_are "$p" $N_KEYS; done
}

# Delete k1..k20 on a and wait (bounded) until a and b have collected every tombstone.
delete_and_collect() {
  local t0
  "$MESHKV" del --batch "$RUN_DIR/keys.del" --node "$A" >/dev/null || fail "del --batch on a"
  t0=$(now_ms)
  wait_for 15 "a and b collect the $N_KEYS tombstones" both_collected $N_KEYS
  echo "  tombstones collected on a and b $(secs_since "$t0") s after the deletes"
}

# wait_keys_gone N SECS T0 EVENT: until SECS after T0 (ms, when EVENT
# happened), every node must come to hold none of k1..k20 and all digests
# must agree. a and b deleted them and collected the tombstones: any of the
# keys there means they came back, and the scenario fails at once. c may hold
# them until it learns of the deletes; still holding them at the end means c
# serves deleted keys for good.
wait_keys_gone() {
  local n=$1 secs=$2 t0=$3 event=$4 on_a on_b on_c t
  while [ $(($(now_ms) - t0)) -lt $((secs * 1000)) ]; do
    on_a=$(present "$PA") on_b=$(present "$PB") on_c=$(present "$PC")
    if [ -n "$on_a$on_b" ] && [ "$on_a" != unreachable ] && [ "$on_b" != unreachable ]; then
      t=$(secs_since "$t0")
      sleep 1  # let it settle, for the report
      on_a=$(present "$PA") on_b=$(present "$PB") on_c=$(present "$PC")
      fail "scenario $n: deleted keys came back on a or b $t s after $event; 1 s later" \
        "a holds $(count "$on_a"), b holds $(count "$on_b"), c holds $(count "$on_c") of the $N_KEYS; $(digests)"
    fi
    if [ -z "$on_c" ] && same_digest; then
      echo "scenario $n: converged in $(secs_since "$t0") s (from $event)"
      return 0
    fi
    sleep 0.1
  done
  fail "scenario $n: not converged $secs s after $event: c still serves $(count "$on_c") of the $N_KEYS" \
    "deleted keys (a holds $(count "$on_a"), b $(count "$on_b")); $(digests)"
}

# get_k1 PORT: "absent", "value:VAL", or "error:RC".
get_k1() {
  local out rc
  out=$("$MESHKV" get k1 --node "127.0.0.1:$1" --timeout 1000 2>/dev/null)
  rc=$?
  case $rc in
    0) echo "value:$out" ;;
    1) echo absent ;;
    *) echo "error:$rc" ;;
  esac
}

# ---- scenario 1: a minority's write older than an acknowledged delete ------------------
scenario1() {
  start_cluster
  "$MESHKV" set k1 orig --node "$A" >/dev/null || fail "set k1 orig on a"
  for addr in "$A" "$B" "$C"; do wait_for 10 "k1=orig on $addr" value_is k1 "$addr" orig; done
  partition_c all
  "$MESHKV" set k1 minority-early --node "$C" >/dev/null || fail "set k1 minority-early on c"
  sleep 0.5
  "$MESHKV" del k1 --node "$A" >/dev/null || fail "del k1 on a"
  local t0; t0=$(now_ms)
  wait_for 12 "a and b collect the tombstone of k1" both_collected 1
  echo "  tombstone of k1 collected on a and b $(secs_since "$t0") s after the delete"
  for p in "$PA" "$PB" "$PC"; do loss "$p" --clear; done
  local heal; heal=$(now_ms)

  # Sample get k1 on every node until converged (or 20 s). a and b, which
  # acknowledged the delete, must never show a value; c may show its own
  # write until it hears that it was left out (it never saw the delete), and
  # never after convergence. Sampling goes on until a or b shows one (the
  # write spread) or the wait ends, so the failure says who showed what, when.
  local -A seen=()
  local converged="" n r all_absent
  while [ $(($(now_ms) - heal)) -lt 20000 ]; do
    all_absent=1
    for n in a b c; do
      r=$(get_k1 "$(port_of $n)")
      [ "$r" = absent ] && continue
      all_absent=0
      [ $n = c ] && continue
      [[ $r == value:* ]] && [ -z "${seen[$n]:-}" ] && seen[$n]="'${r#value:}' from $(secs_since "$heal") s"
    done
    [ -n "${seen[a]:-}${seen[b]:-}" ] && break
    if [ $all_absent = 1 ] && same_digest; then
      converged=$(secs_since "$heal")
      break
    fi
    sleep 0.1
  done
  # Settled? Anti-entropy rounds (1 s) after convergence must not bring it back.
  if [ -n "$converged" ] && [ -z "${seen[*]:-}" ]; then
    local until=$(($(now_ms) + 3000))
    while [ "$(now_ms)" -lt "$until" ]; do
      for n in a b c; do
        r=$(get_k1 "$(port_of $n)")
        [[ $r == value:* ]] && [ -z "${seen[$n]:-}" ] && seen[$n]="'${r#value:}' from $(secs_since "$heal") s"
      done
      [ -n "${seen[*]:-}" ] && break
      sleep 0.2
    done
  fi
  if [ -n "${seen[*]:-}" ]; then
    local report=""
    for n in a b c; do
      report+=" $n: ${seen[$n]:-never}, now $(get_k1 "$(port_of $n)");"
    done
    fail "scenario 1: deleted k1 came back after the heal (get k1 showed a value):$report $(digests)"
  fi
  [ -n "$converged" ] || fail "scenario 1: not converged 20 s after the heal: get k1 a=$(get_k1 "$PA")" \
    "b=$(get_k1 "$PB") c=$(get_k1 "$PC"); $(digests)"
  echo "scenario 1: converged in $converged s"

  # Where did the minority's write go? Never dropped: kept aside in
  # quarantine on at least one node, and listed there.
  local where="" q
  for n in a b c; do
    q=$("$MESHKV" quarantine list --node "127.0.0.1:$(port_of $n)" 2>&1) ||
      fail "scenario 1: quarantine list on $n: $q"
    grep -q 'minority-early' <<<"$q" && where+=" $n"
  done
  [ -n "$where" ] || fail "scenario 1: the minority's write is in no node's quarantine: it was lost"
  echo "  the minority's write is in quarantine on:$where"
  # The operator decides: applied on one node, it is the key's value again
  # everywhere, and leaves every node's quarantine (the new write orders it).
  local first=${where# }
  first=${first%% *}
  "$MESHKV" quarantine apply k1 --node "127.0.0.1:$(port_of "$first")" >/dev/null ||
    fail "scenario 1: quarantine apply k1 on $first"
  for n in a b c; do
    wait_for 10 "k1=minority-early on $n after apply" value_is k1 "127.0.0.1:$(port_of $n)" minority-early
    wait_for 10 "$n's quarantine empty after apply" quarantine_empty "$(port_of $n)"
  done
  echo "  applied on $first: k1 is minority-early everywhere, every quarantine is empty"
  for n in a b c; do
    q=$("$MESHKV" status --node "127.0.0.1:$(port_of $n)" --json 2>/dev/null |
      grep -o '"quarantin[a-z_]*":[^,}]*' | tr '\n' ' ')
    [ -n "$q" ] && echo "  status of $n: $q"
  done
  return 0
}

quarantine_empty() { "$MESHKV" quarantine list --node "127.0.0.1:$1" 2>/dev/null | grep -q 'quarantine is empty'; }

# ---- scenario 2: a paused node ---------------------------------------------------------
scenario2() {
  start_cluster
  write_keys
  kill -STOP "$PID_c"
  partition_c
  delete_and_collect
  loss "$PA" --clear
  loss "$PB" --clear
  kill -CONT "$PID_c"
  wait_keys_gone 2 30 "$(now_ms)" SIGCONT
}

# ---- scenario 3: a restart from the data directory with the clock stepped back ------------
scenario3() {
  start_cluster durable
  write_keys
  kill_node c
  delete_and_collect
  start_node c "$PC" --data-dir "$RUN_DIR/c" --join "$A" "${GC[@]}" --clock-offset-ms -30000
  wait_keys_gone 3 30 "$(now_ms)" "the restart"
}

# ---- driver ----------------------------------------------------------------------------------
# Each scenario in a subshell with its own log directory; a failure there
# (fail, wait_for) ends only that subshell, which stops its own nodes.
T_START=$SECONDS
ANY_FAILED=0
for s in 1 2 3; do
  [ -n "${ONLY:-}" ] && [ "$ONLY" != "$s" ] && continue
  (
    RUN_DIR=$RUN_DIR/s$s
    mkdir -p "$RUN_DIR"
    PID_a="" PID_b="" PID_c=""
    stop_nodes() {
      local p
      for p in $PID_a $PID_b $PID_c; do kill -9 "$p" 2>/dev/null; done
      for p in $PID_a $PID_b $PID_c; do wait "$p" 2>/dev/null; done
    }
    trap stop_nodes EXIT
    echo "scenario $s:"
    "scenario$s"
  )
  if [ $? != 0 ]; then
    ANY_FAILED=1
    # shellcheck disable=SC2034  # read by lib_proc.sh's cleanup: keep the logs
    FAILED=1
    [ "${KEEP_GOING:-0}" = 1 ] || break
  fi
done
echo "total $((SECONDS - T_START)) s"
[ $ANY_FAILED = 0 ] || { echo "FAIL: deleted keys came back or did not converge (see above)" >&2; exit 1; }
echo PASS
