#!/usr/bin/env bash
# A chaos test of real meshkv processes on 127.0.0.1: a seeded plan of faults
# (injected loss and partitions, kill -9 and restart, SIGSTOP/SIGCONT pauses,
# skewed clocks, a full disk, optionally kernel packet loss) runs while clients write
# through random nodes; then everything is healed and a checker compares what
# the nodes hold with what was acknowledged. Run with --help for the details.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'EOF'
Usage: chaos.sh [--seed N] [--runs K] [--nodes N] [--duration S] [--bin PATH]
                [--checker PATH] [--quick] [--keep-logs] [--corrupt] [--self-test]

Starts N `meshkv node` processes on free loopback ports (some with a data
directory, some in-memory), then for S seconds applies faults drawn from the
seed while two clients write unique values to a small set of keys through
random nodes, recording every acknowledged write with the HLC and origin the
node reported, and a third client counts up and down on a few counter keys
(`meshkv incr`/`decr` by 1 to 5 through random nodes; no `del` of a counter:
a reset's effect depends on which increments its node had seen, which no
client can observe), recording each attempt's delta and outcome, and a
fourth adds and removes members m0..m5 of sets s0 and s1 (`meshkv sadd`/
`srem` through random nodes), recording each attempt's outcome. Faults:
`meshkv loss` (drop, duplication, corruption, delay) on some or all nodes;
partitions (`meshkv loss --partition`); kill -9 and
restart; SIGSTOP then SIGCONT after 2-4 s; restarts with a skewed clock
(`meshkv node --clock-offset-ms`); a full disk for 2-4 s (the durable nodes'
data directories share a tmpfs, filled with a ballast file and freed again;
skipped with a note where a tmpfs cannot be mounted, as without root);
kernel-level loss with nftables when available (skipped with a note
otherwise). Then every fault is healed and
the checker (meshkv_chaos_check, which orders writes as the replicas do)
requires:
  (a) within 20 s all nodes report the same digest and see each other alive,
      and nodes with the same digest list the same entries;
  (b) on every node, every key holds the acknowledged write with the
      greatest (hlc, origin), or a write greater than it (an unacknowledged
      one will do); so no acknowledged write is lost. Exception, reported:
      a write acknowledged by an in-memory node that was killed afterwards;
  (c) no two acknowledged writes share an (hlc, origin), and a write one
      origin acknowledged has a greater HLC than every write the origin
      acknowledged before it began;
  (d) no node was seen "dead" by another while both had been neither
      killed, paused nor partitioned for the last 5 s (sampled from
      `meshkv peers` every second);
  (e) every node holds the same total for each counter, and it lies
      between the sum of the acknowledged increments plus every decrement
      of unknown outcome, and that sum plus every increment of unknown
      outcome (no answer: it may or may not have counted); a refused one
      ("write refused", or the connection refused) counts not at all. So no
      acknowledged increment is lost or counted twice. Exception, reported:
      one acknowledged by an in-memory node killed afterwards may be lost;
  (f) every node holds the same members in each set; a member held was
      named by an add that was not refused; and a member whose add was
      acknowledged is held unless a remove of it could have seen the add (a
      remove of unknown outcome, or an acknowledged one that ended after the
      add began: a remove only removes the adds it has seen). Exception: an
      add acknowledged by an in-memory node killed afterwards.
A failed seed prints what failed, the command that replays it, and keeps its
logs; `meshkv_chaos_check RUN_DIR` checks a kept run again.

Options:
  --seed N       first seed (default: from the clock; --quick: 1)
  --runs K       run seeds N..N+K-1, one summary line each (default 1; --quick: 2)
  --nodes N      nodes per run, 3 to 9 (default 5; --quick: 4)
  --duration S   seconds of faults per run, 10 to 600 (default 40; --quick: 20)
  --bin PATH     the meshkv binary (default: build/meshkv of this checkout)
  --checker PATH the checker (default: meshkv_chaos_check beside the meshkv
                 binary; cmake builds both into build/)
  --quick        the bounded form CI runs (tests/proc_chaos.sh)
  --keep-logs    keep the logs of passing runs too
  --corrupt      let injected loss also flip bits (meshkv loss --corrupt); off
                 by default. Datagrams carry a CRC-32C (sealed ones a MAC), so
                 a flipped one is dropped and counted as bad_checksum
  --self-test    only run the checker's tests on hand-made histories: the
                 "chaos check:" cases of meshkv_tests beside the checker (seconds)
  -h, --help     this text

Environment:
  MESHKV_CHAOS_NODE_ARGS  extra options for every `meshkv node`, for experiments
                          (e.g. "--probe-interval 50 --probe-timeout 20")

Exit status: 0 every seed passed, 1 a seed failed, 2 usage error.
EOF
}

die_usage() {
  echo "chaos.sh: $*" >&2
  echo "Run 'chaos.sh --help' for usage." >&2
  exit 2
}

# ---- arguments ---------------------------------------------------------------
SEED="" RUNS="" NODES="" DURATION="" QUICK=0 KEEP_LOGS=0 CORRUPT=0 CHECKER=""
BIN=$ROOT/build/meshkv
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --seed | --runs | --nodes | --duration | --bin | --checker)
      [ $# -ge 2 ] || die_usage "$1 needs a value"
      case $1 in
        --seed) SEED=$2 ;;
        --runs) RUNS=$2 ;;
        --nodes) NODES=$2 ;;
        --duration) DURATION=$2 ;;
        --bin) BIN=$2 ;;
        --checker) CHECKER=$2 ;;
      esac
      shift
      ;;
    --quick) QUICK=1 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    --corrupt) CORRUPT=1 ;;
    --self-test) SELF_TEST=1 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done
if [ $QUICK = 1 ]; then
  : "${SEED:=1}" "${RUNS:=2}" "${NODES:=4}" "${DURATION:=20}"
else
  : "${SEED:=$(($(date +%s) % 100000))}" "${RUNS:=1}" "${NODES:=5}" "${DURATION:=40}"
fi
isnum() { [[ $1 =~ ^[0-9]+$ ]] && [ ${#1} -le 9 ]; }
isnum "$SEED" || die_usage "--seed needs a whole number below 10^9"
isnum "$RUNS" && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 1000 ] || die_usage "--runs needs 1 to 1000"
isnum "$NODES" && [ "$NODES" -ge 3 ] && [ "$NODES" -le 9 ] || die_usage "--nodes needs 3 to 9"
isnum "$DURATION" && [ "$DURATION" -ge 10 ] && [ "$DURATION" -le 600 ] || die_usage "--duration needs 10 to 600"
[ -x "$BIN" ] || { echo "chaos.sh: no meshkv binary at $BIN (build it, or pass --bin)" >&2; exit 2; }
BIN=$(realpath "$BIN")
: "${CHECKER:=$(dirname "$BIN")/meshkv_chaos_check}"
[ -x "$CHECKER" ] || {
  echo "chaos.sh: no checker at $CHECKER (cmake --build build --target meshkv_chaos_check, or pass --checker)" >&2
  exit 2
}
CHECKER=$(realpath "$CHECKER")
command -v ss >/dev/null || { echo "chaos.sh: needs ss (Debian package iproute2)" >&2; exit 2; }

# ---- constants ---------------------------------------------------------------
WRITERS=2             # concurrent client loops
KEYS=24               # key space: few keys, many conflicting writes per key
COUNTER_KEYS=3        # counters c0.., distinct from the registers' keys
SET_KEYS=2            # sets s0..
SET_MEMBERS=6         # members m0.. of each set: many conflicting adds and removes
WRITE_TIMEOUT_MS=1000 # a write not answered by then counts as unacknowledged
CONVERGE_S=20         # bound for (a) after the heal
GRACE_MS=5000         # (d): how long after a disturbance "dead" is excused
SAMPLE_EVERY=1        # seconds between rounds of `meshkv peers`

# Milliseconds since the epoch, into the variable NOW (no fork).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; NOW=$((10#$t / 1000)); }

# Kernel loss needs nft and the right to add a table; probed once.
NFT_OK=0
NFT_NOTE="kernel loss (nftables) skipped: "
if ! command -v nft >/dev/null; then
  NFT_NOTE+="nft is not installed (apt-get install nftables)"
elif ! nft add table inet "meshkv_chaos_probe_$$" 2>/dev/null; then
  NFT_NOTE+="this environment does not allow nftables rules"
else
  nft delete table inet "meshkv_chaos_probe_$$" 2>/dev/null
  NFT_OK=1
  NFT_NOTE=""
fi

# A full disk needs a tmpfs of our own for the data directories; probed once.
DISK_OK=0
DISK_NOTE="full disk skipped: cannot mount a tmpfs here (needs root)"
probe_dir=$(mktemp -d /tmp/meshkv-chaos-probe.XXXXXX)
if mount -t tmpfs -o size=1m meshkv-chaos "$probe_dir" 2>/dev/null; then
  umount "$probe_dir"
  DISK_OK=1
  DISK_NOTE=""
fi
rmdir "$probe_dir"

# ---- one run ---------------------------------------------------------------------
# Everything below runs in a subshell per seed, so that arrays, traps and
# the run directory of one seed never leak into the next.

# R = a random whole number from $1 to $2 (bash's RANDOM, seeded per run).
rnd() { R=$(($1 + RANDOM % ($2 - $1 + 1))); }

# The plan: per node its storage (durable or memory) and initial clock
# offset, and a list of timed fault events in $RUN_DIR/plan, all derived
# from the seed alone. Times are in tenths of a second after the start.
make_plan() {
  RANDOM=$SEED
  local i t end kind cand c n j k ids_g ids_h args p down d who
  local T=$((DURATION * 10)) seq=0 maxdown=$(((N - 1) / 2))
  for i in $(seq 0 $((N - 1))); do
    if ((RANDOM % 2)); then MODE[i]=durable; else MODE[i]=memory; fi
    OFF[i]=0
    NETBUSY[i]=0 PROCBUSY[i]=0 DOWNUNTIL[i]=0
  done
  MODE[0]=durable MODE[1]=memory # at least one of each
  rnd 0 $((N - 1)); i=$R
  rnd 200 5000; ((RANDOM % 2)) && R=$((-R))
  OFF[i]=$R
  OFF_START=("${OFF[@]}") # restarts below may draw new offsets
  : >"$RUN_DIR/plan"
  ev() { seq=$((seq + 1)); echo "$1 $seq ${*:2}" >>"$RUN_DIR/plan"; }
  t=10
  while [ $t -lt $((T - 30)) ]; do
    rnd 0 11
    case $R in
      0 | 1 | 2) kind=loss ;;
      3 | 4) kind=partition ;;
      5 | 6) kind="kill" ;;
      7 | 8) kind=pause ;;
      9) kind=skew ;;
      10) kind=kernel ;;
      *) kind=disk ;;
    esac
    cand=()
    case $kind in
      loss | partition) for i in $(seq 0 $((N - 1))); do [ "${NETBUSY[i]}" -le $t ] && cand+=("$i"); done ;;
      kill | pause | skew)
        down=0
        for i in $(seq 0 $((N - 1))); do [ "${DOWNUNTIL[i]}" -gt $t ] && down=$((down + 1)); done
        if [ $down -lt $maxdown ]; then
          for i in $(seq 0 $((N - 1))); do [ "${PROCBUSY[i]}" -le $t ] && cand+=("$i"); done
        fi
        ;;
      kernel) [ "${KERNELBUSY:-0}" -le $t ] && cand=(all) ;;
      disk) [ "${DISKBUSY:-0}" -le $t ] && cand=(all) ;;
    esac
    # Shuffle the candidates (Fisher-Yates).
    for ((k = ${#cand[@]} - 1; k > 0; k--)); do
      rnd 0 $k; c=${cand[k]}; cand[k]=${cand[R]}; cand[R]=$c
    done
    n=${#cand[@]}
    case $kind in
      loss)
        if [ "$n" -ge 1 ]; then
          rnd 30 80; end=$((t + R)); [ $end -gt $((T - 10)) ] && end=$((T - 10))
          if ((RANDOM % 5 < 2)); then k=$n; else rnd 1 "$n"; k=$R; fi # all free nodes, or some
          who=""
          for j in $(seq 0 $((k - 1))); do who+="${who:+,}n${cand[j]}"; done
          ev $t episode loss "injected loss on $who for $(((end - t) / 10)).$(((end - t) % 10))s"
          for j in $(seq 0 $((k - 1))); do
            i=${cand[j]}
            rnd 5 30; printf -v p '0.%02d' $R; args="--drop $p"
            if [ $R -le 15 ] && ((RANDOM % 3 == 0)); then args+=" --direction both"; fi
            if ((RANDOM % 3 == 0)); then rnd 5 20; printf -v p '0.%02d' $R; args+=" --dup $p"; fi
            # Drawn either way, so that --corrupt changes nothing else of the plan.
            if ((RANDOM % 4 == 0)); then
              rnd 1 5; printf -v p '0.%02d' $R
              [ "$CORRUPT" = 1 ] && args+=" --corrupt $p"
            fi
            if ((RANDOM % 3 == 0)); then rnd 5 60; d=$R; rnd 0 20; args+=" --delay $d:$R"; fi
            ev $t net "$i" "$args"
            ev $end netclear "$i"
            NETBUSY[i]=$((end + 1))
          done
        fi
        ;;
      partition)
        if [ "$n" -ge 2 ]; then
          rnd 20 60; end=$((t + R)); [ $end -gt $((T - 10)) ] && end=$((T - 10))
          rnd 1 $((n - 1)); k=$R # |G|; H is the rest, or part of it
          local h_end=$n
          if [ $((n - k)) -ge 2 ] && ((RANDOM % 3 == 0)); then rnd $((k + 1)) $((n - 1)); h_end=$R; fi
          ids_g="" ids_h=""
          for j in $(seq 0 $((k - 1))); do ids_g+="${ids_g:+,}n${cand[j]}"; done
          for j in $(seq $k $((h_end - 1))); do ids_h+="${ids_h:+,}n${cand[j]}"; done
          ev $t episode partition "partition $ids_g | $ids_h for $(((end - t) / 10)).$(((end - t) % 10))s"
          for j in $(seq 0 $((h_end - 1))); do
            i=${cand[j]}
            if [ "$j" -lt "$k" ]; then ev $t part "$i" "$ids_h"; else ev $t part "$i" "$ids_g"; fi
            ev $end unpart "$i"
            NETBUSY[i]=$((end + 1))
          done
        fi
        ;;
      kill)
        if [ "$n" -ge 1 ]; then
          i=${cand[0]}
          rnd 10 40; end=$((t + R)); [ $end -gt $((T - 10)) ] && end=$((T - 10))
          if ((RANDOM % 4 == 0)); then rnd 0 3000; ((RANDOM % 2)) && R=$((-R)); OFF[i]=$R; fi
          ev $t kill "$i"
          ev $end restart "$i" "${OFF[i]}"
          PROCBUSY[i]=$((end + 20)) DOWNUNTIL[i]=$((end + 20))
        fi
        ;;
      pause)
        if [ "$n" -ge 1 ]; then
          i=${cand[0]}
          rnd 20 40; end=$((t + R)) # 2-4 s: long enough to be suspected and declared dead
          [ $end -gt $((T - 10)) ] && end=$((T - 10))
          ev $t stop "$i"
          ev $end cont "$i"
          PROCBUSY[i]=$((end + 10)) DOWNUNTIL[i]=$((end + 10))
        fi
        ;;
      skew)
        # A crash and an immediate restart with a clock now off by up to 15 s,
        # sometimes by 90 s (beyond max_clock_skew_ms: peers do not adopt it).
        if [ "$n" -ge 1 ]; then
          i=${cand[0]}
          if ((RANDOM % 6 == 0)); then R=90000; else rnd 500 15000; fi
          ((RANDOM % 2)) && R=$((-R))
          OFF[i]=$R
          ev $t kill "$i"
          ev $((t + 3)) restart "$i" "${OFF[i]}"
          PROCBUSY[i]=$((t + 30)) DOWNUNTIL[i]=$((t + 30))
        fi
        ;;
      kernel)
        if [ "$n" -ge 1 ]; then
          rnd 30 60; end=$((t + R)); [ $end -gt $((T - 10)) ] && end=$((T - 10))
          rnd 10 30
          ev $t kernel all "$R"
          ev $end kernel_off all
          KERNELBUSY=$((end + 1))
        fi
        ;;
      disk)
        # Every durable node's log fails at once: its writes are refused
        # (exit 3, unacknowledged) until the ballast is removed.
        if [ "$n" -ge 1 ]; then
          rnd 20 40; end=$((t + R)); [ $end -gt $((T - 10)) ] && end=$((T - 10))
          ev $t diskfull all
          ev $end diskfree all
          DISKBUSY=$((end + 1))
        fi
        ;;
    esac
    rnd 5 25
    t=$((t + R))
  done
  sort -n -k1,1 -k2,2 "$RUN_DIR/plan" -o "$RUN_DIR/plan"
  for i in $(seq 0 $((N - 1))); do echo "n$i ${MODE[i]}" ; done >"$RUN_DIR/modes"
}

log_event() { # log_event TEXT: timestamped, to events.log and the terminal
  now_ms
  local rel=$((NOW - T0))
  printf '%d %s\n' "$NOW" "$*" >>"$RUN_DIR/events.log"
  printf '[seed %s] %+6.1fs %s\n' "$SEED" "$((rel / 100))e-1" "$*"
}
log_quiet() { now_ms; printf '%d %s\n' "$NOW" "$*" >>"$RUN_DIR/events.log"; }

# is_ours I: PID[I] is the running (not zombie) `meshkv node` this run
# started as nI, so a recycled pid is never signalled.
is_ours() {
  local pid=${PID[$1]:-} st
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
  st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *" node --id n$1 --listen ${ADDR[$1]} "* ]]
}

# start_proc I FIRST: starts nI (joining n0 at first, every other node on a
# restart) with its storage and current clock offset; disowned, so that its
# kill -9 is not reported by the shell.
start_proc() {
  local i=$1 args j
  args=(node --id "n$i" --listen "${ADDR[i]}")
  if [ "$2" = first ]; then
    [ "$i" != 0 ] && args+=(--join "${ADDR[0]}")
  else
    for j in $(seq 0 $((N - 1))); do [ "$j" != "$i" ] && args+=(--join "${ADDR[j]}"); done
  fi
  [ "${MODE[i]}" = durable ] && args+=(--data-dir "$RUN_DIR/data/n$i")
  [ "${CUR_OFF[i]}" != 0 ] && args+=(--clock-offset-ms "${CUR_OFF[i]}")
  # shellcheck disable=SC2206 # extra options, split on purpose
  [ -n "${MESHKV_CHAOS_NODE_ARGS:-}" ] && args+=($MESHKV_CHAOS_NODE_ARGS)
  echo "=== $(date -u +%H:%M:%S.%N | cut -c1-12) start: meshkv ${args[*]}" >>"$RUN_DIR/n$i.log"
  "$BIN" "${args[@]}" </dev/null >>"$RUN_DIR/n$i.log" 2>&1 &
  PID[i]=$!
  disown "${PID[i]}"
  STATE[i]=up
}

answers() { "$BIN" status --node "${ADDR[$1]}" --timeout 500 >/dev/null 2>&1; }

# wait_up I SECONDS: nI answers on its control port.
wait_up() {
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    answers "$1" && return 0
    is_ours "$1" || return 1
    sleep 0.1
  done
  return 1
}

# A disturbance of a node (killed, paused, partitioned) from its start to now.
dist_begin() { now_ms; DSTART[$1,$2]=$NOW; }
dist_end() {
  [ -n "${DSTART[$1,$2]:-}" ] || return 0
  now_ms
  echo "n$1 $2 ${DSTART[$1,$2]} $NOW" >>"$RUN_DIR/disturbances"
  unset "DSTART[$1,$2]"
}

# sync_net I: makes nI's injected faults what NET[I] says, when it can take
# the command; a killed or paused node gets it when it is back.
sync_net() {
  local i=$1
  [ "${STATE[i]}" = up ] || return 0
  # shellcheck disable=SC2086 # NET holds options
  if ! "$BIN" loss --node "${ADDR[i]}" --clear ${NET[i]} --timeout 2000 >/dev/null 2>&1; then
    log_event "warning: could not set the faults of n$i (${NET[i]:-clear})"
  fi
}

do_kill() {
  local i=$1 k
  [ "${STATE[i]}" = up ] || return 0
  if is_ours "$i"; then kill -9 "${PID[i]}"; fi
  for k in $(seq 1 30); do is_ours "$i" || break; sleep 0.1; done
  STATE[i]=killed
  dist_begin "$i" down
  echo "$NOW kill n$i" >>"$RUN_DIR/kills"
  FAULTS[kill]=$((${FAULTS[kill]:-0} + 1))
}

do_restart() {
  local i=$1
  [ "${STATE[i]}" = killed ] || return 0
  CUR_OFF[i]=$2
  start_proc "$i" again
  wait_up "$i" 10 || log_event "warning: n$i did not answer within 10 s of its restart"
  sync_net "$i"
  dist_end "$i" down
}

do_stop() {
  local i=$1
  [ "${STATE[i]}" = up ] && is_ours "$i" || return 0
  kill -STOP "${PID[i]}"
  STATE[i]=stopped
  dist_begin "$i" down
  FAULTS[pause]=$((${FAULTS[pause]:-0} + 1))
}

do_cont() {
  local i=$1
  [ "${STATE[i]}" = stopped ] || return 0
  is_ours "$i" && kill -CONT "${PID[i]}"
  STATE[i]=up
  sync_net "$i"
  dist_end "$i" down
}

kernel_on() {
  if [ $NFT_OK != 1 ]; then
    FAULTS[kernel_skipped]=$((${FAULTS[kernel_skipped]:-0} + 1))
    return 0
  fi
  nft add table inet "$NFT_TABLE" &&
    nft add chain inet "$NFT_TABLE" out '{ type filter hook output priority 0; policy accept; }' &&
    nft add rule inet "$NFT_TABLE" out oifname lo udp dport "$BASE-$((BASE + N - 1))" \
      numgen random mod 100 lt "$1" counter drop ||
    { log_event "warning: could not add the nftables rule"; return 0; }
  NFT_ON=1
  FAULTS[kernel]=$((${FAULTS[kernel]:-0} + 1))
}

kernel_off() {
  [ "${NFT_ON:-0}" = 1 ] || return 0
  local dropped
  dropped=$(nft list table inet "$NFT_TABLE" 2>/dev/null | grep -o 'packets [0-9]*' | head -1)
  nft delete table inet "$NFT_TABLE" 2>/dev/null
  NFT_ON=0
  log_event "kernel loss removed (${dropped:-packets ?} dropped)"
}

disk_full() {
  if [ "${DISK_MOUNTED:-0}" != 1 ]; then
    FAULTS[disk_skipped]=$((${FAULTS[disk_skipped]:-0} + 1))
    log_event "full disk skipped: ${DISK_NOTE#*: }"
    return 0
  fi
  head -c $((1024 * 1024 * 1024)) /dev/zero >"$RUN_DIR/data/ballast" 2>/dev/null
  FAULTS[disk]=$((${FAULTS[disk]:-0} + 1))
  log_event "full disk: the durable nodes' tmpfs filled ($(df -h --output=avail "$RUN_DIR/data" | tail -1 | tr -d ' ') left)"
}

disk_free() {
  [ -e "$RUN_DIR/data/ballast" ] || return 0
  rm -f "$RUN_DIR/data/ballast"
  log_event "disk space freed"
}

# One event of the plan: "TIME SEQ ACTION NODE [ARGS]".
apply() {
  local action=$1 i=$2
  shift 2
  case $action in
    episode) FAULTS[$i]=$((${FAULTS[$i]:-0} + 1)); log_event "$*" ;;
    net) NET[i]=$*; sync_net "$i"; log_quiet "loss n$i $*" ;;
    netclear) NET[i]=""; sync_net "$i"; log_quiet "loss n$i cleared" ;;
    part) NET[i]="--partition $1"; dist_begin "$i" partition; sync_net "$i"; log_quiet "n$i: loss --partition $1" ;;
    unpart) NET[i]=""; sync_net "$i"; dist_end "$i" partition; log_quiet "n$i: partition cleared" ;;
    kill)
      [ "${STATE[i]}" = up ] || return 0
      do_kill "$i"; log_event "kill -9 n$i (${MODE[i]})" ;;
    restart)
      [ "${STATE[i]}" = killed ] || return 0
      [ "$1" != "${CUR_OFF[i]}" ] && FAULTS[skew]=$((${FAULTS[skew]:-0} + 1))
      do_restart "$i" "$1"; log_event "restarted n$i (clock offset $1 ms)" ;;
    stop)
      [ "${STATE[i]}" = up ] || return 0
      do_stop "$i"; log_event "SIGSTOP n$i" ;;
    cont)
      [ "${STATE[i]}" = stopped ] || return 0
      do_cont "$i"; log_event "SIGCONT n$i" ;;
    kernel)
      kernel_on "$1"
      if [ $NFT_OK = 1 ]; then log_event "kernel loss: nftables drops $1% of UDP to ports $BASE-$((BASE + N - 1))"
      else log_event "kernel loss ($1%) skipped: ${NFT_NOTE#*: }"; fi ;;
    kernel_off) kernel_off ;;
    diskfull) disk_full ;;
    diskfree) disk_free ;;
  esac
}

# writer W: writes until told to stop (or a bound), one line per attempt in
# writes.W: writer seq start_ms end_ms node op key value rc phys logical origin.
writer() {
  local w=$1 i=0 node key op val out rc t0 t1 phys lg origin
  RANDOM=$((SEED * 31 + w))
  local limit=$((SECONDS + DURATION + 60))
  while [ ! -e "$RUN_DIR/stop-writers" ] && [ $i -lt 100000 ] && [ $SECONDS -lt $limit ]; do
    i=$((i + 1))
    node=$((RANDOM % N))
    key=k$((RANDOM % KEYS))
    if ((RANDOM % 100 < 8)); then op=del val=-; else op=set val=s${SEED}w${w}i$i; fi
    now_ms; t0=$NOW
    if [ $op = set ]; then
      out=$("$BIN" set "$key" "$val" --node "${ADDR[node]}" --json --timeout $WRITE_TIMEOUT_MS 2>/dev/null)
    else
      out=$("$BIN" del --force "$key" --node "${ADDR[node]}" --json --timeout $WRITE_TIMEOUT_MS 2>/dev/null)
    fi
    rc=$?
    now_ms; t1=$NOW
    phys=- lg=- origin=-
    if [[ $out =~ \"hlc\":\"([0-9]+)\.([0-9]+)\",\"origin\":\"([0-9a-f]+)\" ]]; then
      phys=${BASH_REMATCH[1]} lg=${BASH_REMATCH[2]} origin=${BASH_REMATCH[3]}
    fi
    echo "$w $i $t0 $t1 n$node $op $key $val $rc $phys $lg $origin"
    sleep 0.02
  done >"$RUN_DIR/writes.$w"
}

# What a client knows of an attempt from its exit status RC and JSON answer
# OUT: "applied" (rc 0); "refused" only where nothing can have been applied
# (the node said "write refused", judged before it changes anything, or the
# connection was refused, so the request never left); "unknown" otherwise
# (a timeout: maybe applied).
answer_of() {
  if [ "$1" = 0 ]; then
    echo applied
  elif [[ $2 == '{"error":"'*'write refused: '* || $2 == '{"error":"'*'unreachable: connection refused"'* ]]; then
    echo refused
  else
    echo unknown
  fi
}

# counter_client: increments and decrements until told to stop (or a bound),
# one line per attempt in incrs.1: client seq start_ms end_ms node key delta
# rc answer (delta signed: decr is negative; answer from answer_of).
# Its own random stream, so that the writers' and the plan's stay what they
# were for the seed.
counter_client() {
  local c=1 i=0 node key n op delta out rc answer t0 t1
  RANDOM=$((SEED * 37 + 1000))
  local limit=$((SECONDS + DURATION + 60))
  while [ ! -e "$RUN_DIR/stop-writers" ] && [ $i -lt 100000 ] && [ $SECONDS -lt $limit ]; do
    i=$((i + 1))
    node=$((RANDOM % N))
    key=c$((RANDOM % COUNTER_KEYS))
    n=$((1 + RANDOM % 5))
    now_ms; t0=$NOW
    if ((RANDOM % 4 == 0)); then op=decr delta=-$n; else op=incr delta=$n; fi
    out=$("$BIN" "$op" "$key" "$n" --node "${ADDR[node]}" --json --timeout $WRITE_TIMEOUT_MS 2>/dev/null)
    rc=$?
    now_ms; t1=$NOW
    answer=$(answer_of "$rc" "$out")
    echo "$c $i $t0 $t1 n$node $key $delta $rc $answer"
    sleep 0.02
  done >"$RUN_DIR/incrs.$c"
}

# set_client: adds and removes members m0.. of sets s0.. through random
# nodes until told to stop (or a bound), one line per attempt in sops.1:
# client seq start_ms end_ms node key op member rc answer (answer from
# answer_of). Its own random stream, as the counter client's.
set_client() {
  local c=1 i=0 node key member op out rc answer t0 t1
  RANDOM=$((SEED * 53 + 2000))
  local limit=$((SECONDS + DURATION + 60))
  while [ ! -e "$RUN_DIR/stop-writers" ] && [ $i -lt 100000 ] && [ $SECONDS -lt $limit ]; do
    i=$((i + 1))
    node=$((RANDOM % N))
    key=s$((RANDOM % SET_KEYS))
    member=m$((RANDOM % SET_MEMBERS))
    if ((RANDOM % 5 < 3)); then op=sadd; else op=srem; fi
    now_ms; t0=$NOW
    out=$("$BIN" "$op" "$key" "$member" --node "${ADDR[node]}" --json --timeout $WRITE_TIMEOUT_MS 2>/dev/null)
    rc=$?
    now_ms; t1=$NOW
    answer=$(answer_of "$rc" "$out")
    echo "$c $i $t0 $t1 n$node $key $op $member $rc $answer"
    sleep 0.02
  done >"$RUN_DIR/sops.$c"
}

# sampler: every node's view of every member, once a second: "ms observer
# member state" lines in samples.
sampler() {
  local rounds=0 i out
  while [ ! -e "$RUN_DIR/stop-sampler" ] && [ $rounds -lt $((DURATION + 300)) ]; do
    rounds=$((rounds + 1))
    for i in $(seq 0 $((N - 1))); do
      out=$("$BIN" peers --node "${ADDR[i]}" --json --timeout 800 2>/dev/null) || continue
      now_ms
      while [[ $out =~ \"name\":\"([^\"]+)\",\"state\":\"([a-z]+)\" ]]; do
        echo "$NOW n$i ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
        out=${out#*"${BASH_REMATCH[0]}"}
      done
    done
    sleep $SAMPLE_EVERY
  done >"$RUN_DIR/samples"
}

# (a): every node answers, all digests are equal, and every node sees the
# N-1 others alive. Sets DIGESTS for the report.
converged() {
  local i out d first="" ok=0
  DIGESTS=""
  for i in $(seq 0 $((N - 1))); do
    out=$("$BIN" status --node "${ADDR[i]}" --json --timeout 1000 2>/dev/null) || { DIGESTS+=" n$i:silent"; ok=1; continue; }
    [[ $out =~ \"digest\":\"([0-9a-f]+)\" ]] && d=${BASH_REMATCH[1]} || d=none
    DIGESTS+=" n$i:$d"
    [ -z "$first" ] && first=$d
    [ "$d" = "$first" ] || ok=1
    [ "$(grep -o '"state":"alive"' <<<"$out" | wc -l)" -eq $((N - 1)) ] || { DIGESTS+="(sees $(grep -o '"state":"alive"' <<<"$out" | wc -l) alive)"; ok=1; }
  done
  return $ok
}

# (a) to (e) over the run directory's files (formats in
# tests/chaos_check/check.h). Prints its report, prefixed with the seed, and
# adds a reason for each check that failed.
check_run() {
  local out rc line said=0
  out=$("$CHECKER" --t0 "$T0" --grace-ms "$GRACE_MS" "$RUN_DIR" 2>&1)
  rc=$?
  while IFS= read -r line; do
    printf '[seed %s] %s\n' "$SEED" "$line"
    [[ $line =~ ^\([a-e]\)\ [0-9]+\ violation ]] && { REASONS+=("$line"); said=1; }
  done <<<"$out"
  if [ $rc = 2 ]; then
    REASONS+=("the checker could not read the run (exit 2)")
  elif [ $rc != 0 ] && [ $said = 0 ]; then
    REASONS+=("the checker failed (exit $rc)")
  fi
}

run_seed() {
  # The run directory and free ports come from the shared real-process test
  # helpers; this script keeps its own pids and cleanup (nodes restart, so
  # every signal is preceded by an ownership check).
  # shellcheck disable=SC2034 # MESHKV is lib_proc.sh's name for the binary
  MESHKV=$BIN
  # shellcheck source=../tests/lib_proc.sh disable=SC1091
  source "$ROOT/tests/lib_proc.sh"
  trap run_cleanup EXIT
  trap 'exit 130' INT TERM HUP
  local started=$SECONDS i
  declare -gA FAULTS=() DSTART=()
  declare -ga MODE=() OFF=() OFF_START=() CUR_OFF=() NETBUSY=() PROCBUSY=() DOWNUNTIL=() PID=() STATE=() NET=() ADDR=() HELPERS=()
  N=$NODES
  FAILED=0
  REASONS=()
  make_plan
  BASE=$(free_base_port "$N")
  if [ -z "$BASE" ]; then
    REASONS+=("setup: no $N free ports")
    finish_seed 0 0 -
    return
  fi
  NFT_TABLE=meshkv_chaos_$$_$SEED
  for i in $(seq 0 $((N - 1))); do
    ADDR[i]=127.0.0.1:$((BASE + i))
    CUR_OFF[i]=${OFF_START[i]:-0}
    NET[i]=""
  done
  mkdir -p "$RUN_DIR/data"
  DISK_MOUNTED=0
  if [ $DISK_OK = 1 ] && grep -q " diskfull " "$RUN_DIR/plan"; then
    mount -t tmpfs -o size=128m meshkv-chaos "$RUN_DIR/data" && DISK_MOUNTED=1
  fi
  : >"$RUN_DIR/kills"
  : >"$RUN_DIR/disturbances"
  : >"$RUN_DIR/events.log"
  now_ms; T0=$NOW
  local desc="" offs=""
  for i in $(seq 0 $((N - 1))); do
    desc+=" n$i:${MODE[i]}"
    [ "${CUR_OFF[i]}" != 0 ] && offs+=" n$i:${CUR_OFF[i]}ms"
  done
  echo "[seed $SEED] $N nodes on 127.0.0.1:$BASE-$((BASE + N - 1)):$desc; clock offsets:${offs:- none}; $(wc -l <"$RUN_DIR/plan") planned events over ${DURATION}s; logs in $RUN_DIR"
  [ -n "$NFT_NOTE" ] && grep -q " kernel " "$RUN_DIR/plan" && echo "[seed $SEED] note: $NFT_NOTE"
  [ -n "$DISK_NOTE" ] && grep -q " diskfull " "$RUN_DIR/plan" && echo "[seed $SEED] note: $DISK_NOTE"

  for i in $(seq 0 $((N - 1))); do start_proc "$i" first; done
  local formed=0 end=$((SECONDS + 20))
  while [ $SECONDS -lt $end ]; do
    converged && { formed=1; break; }
    sleep 0.2
  done
  if [ $formed = 0 ]; then
    REASONS+=("setup: the mesh did not form within 20 s:$DIGESTS")
    finish_seed 0 0 -
    return
  fi

  # Clients and the membership sampler run while the plan is applied.
  for i in $(seq 1 $WRITERS); do writer "$i" & HELPERS+=($!); done
  counter_client & HELPERS+=($!)
  set_client & HELPERS+=($!)
  sampler &
  SAMPLER=$!
  now_ms; T0=$NOW
  local t seq action node rest
  while read -r t seq action node rest; do
    now_ms
    local wait_ms=$((T0 + t * 100 - NOW))
    [ $wait_ms -gt 0 ] && sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
    # shellcheck disable=SC2086 # rest holds the action's arguments
    apply "$action" "$node" $rest
  done <"$RUN_DIR/plan"
  now_ms
  local left_ms=$((T0 + DURATION * 1000 - NOW))
  [ $left_ms -gt 0 ] && sleep "$((left_ms / 1000)).$(printf '%03d' $((left_ms % 1000)))"

  # Heal everything (the plan should have, already): kernel loss off, paused
  # nodes continued, killed nodes restarted, injected faults cleared.
  log_event "healing: every fault stops"
  kernel_off
  disk_free
  for i in $(seq 0 $((N - 1))); do do_cont "$i"; done
  for i in $(seq 0 $((N - 1))); do do_restart "$i" "${CUR_OFF[i]}"; done
  for i in $(seq 0 $((N - 1))); do
    NET[i]=""; sync_net "$i"
    dist_end "$i" partition; dist_end "$i" down
  done
  touch "$RUN_DIR/stop-writers"
  for i in "${HELPERS[@]}"; do wait "$i"; done
  HELPERS=()
  cat "$RUN_DIR"/writes.* >"$RUN_DIR/writes"
  cat "$RUN_DIR"/incrs.* >"$RUN_DIR/incrs"
  cat "$RUN_DIR"/sops.* >"$RUN_DIR/sops"
  now_ms
  local heal=$NOW conv=- ok=0
  log_event "writers stopped; waiting up to ${CONVERGE_S}s for convergence"
  end=$((SECONDS + CONVERGE_S))
  while [ $SECONDS -lt $end ]; do
    converged && { ok=1; break; }
    sleep 0.25
  done
  now_ms
  if [ $ok = 1 ]; then
    conv=$(((NOW - heal) / 100))
    conv="$((conv / 10)).$((conv % 10))s"
    local digest=${DIGESTS#* n0:}
    log_event "(a) converged in $conv: every node has digest ${digest%% *} and sees every other alive"
  else
    REASONS+=("(a) not converged ${CONVERGE_S}s after the heal:$DIGESTS")
    for i in $(seq 1 $((N - 1))); do
      echo "== meshkv diff n0 n$i"
      "$BIN" diff "${ADDR[0]}" "${ADDR[i]}" 2>&1
    done >"$RUN_DIR/diffs"
    log_event "(a) FAILED:$DIGESTS (meshkv diff of n0 with each node in $RUN_DIR/diffs)"
  fi
  sleep 1 # one more membership sample after convergence
  touch "$RUN_DIR/stop-sampler"
  wait "$SAMPLER"
  SAMPLER=""

  # The final states, and each node's digest just after its list.
  : >"$RUN_DIR/finals"
  : >"$RUN_DIR/counters"
  : >"$RUN_DIR/sets"
  : >"$RUN_DIR/digests"
  local d
  for i in $(seq 0 $((N - 1))); do
    if ! "$BIN" list --node "${ADDR[i]}" --json --timeout 5000 >"$RUN_DIR/list.n$i" 2>&1; then
      REASONS+=("(b) list on n$i failed: $(head -c 200 "$RUN_DIR/list.n$i")")
      continue
    fi
    grep -o '"key":"[^"]*","value":"[^"]*","hlc":"[0-9]*\.[0-9]*","origin":"[0-9a-f]*"' "$RUN_DIR/list.n$i" |
      sed -E "s/\"key\":\"([^\"]*)\",\"value\":\"([^\"]*)\",\"hlc\":\"([0-9]*)\.([0-9]*)\",\"origin\":\"([0-9a-f]*)\"/n$i \1 \2 \3 \4 \5/" \
        >>"$RUN_DIR/finals"
    # Counters list their total where registers have an HLC, so neither
    # pattern takes the other's entries.
    grep -o '"key":"[^"]*","value":"-\{0,1\}[0-9]*","type":"counter"' "$RUN_DIR/list.n$i" |
      sed -E "s/\"key\":\"([^\"]*)\",\"value\":\"([^\"]*)\".*/n$i \1 \2/" >>"$RUN_DIR/counters"
    # Sets list their members (m0.., no quotes or commas inside): a line each.
    grep -o '"key":"[^"]*","type":"set","members":\[[^]]*\]' "$RUN_DIR/list.n$i" |
      sed -E 's/"key":"([^"]*)","type":"set","members":\[([^]]*)\]/\1 \2/' |
      while read -r key list; do
        tr ',' '\n' <<<"$list" | tr -d '"' | while read -r member; do
          [ -n "$member" ] && echo "n$i $key $member"
        done
      done >>"$RUN_DIR/sets"
    d=silent
    [[ $("$BIN" status --node "${ADDR[i]}" --json --timeout 1000 2>/dev/null) =~ \"digest\":\"([0-9a-f]+)\" ]] &&
      d=${BASH_REMATCH[1]}
    echo "n$i $d" >>"$RUN_DIR/digests"
  done
  check_run
  finish_seed "$(awk '$9 == 0 && $10 != "-"' "$RUN_DIR/writes" | wc -l)" "$(wc -l <"$RUN_DIR/writes")" "$conv" \
    "$(awk '$8 == 0' "$RUN_DIR/incrs" | wc -l)" "$(wc -l <"$RUN_DIR/incrs")" \
    "$(awk '$9 == 0' "$RUN_DIR/sops" | wc -l)" "$(wc -l <"$RUN_DIR/sops")"
}

# Writes this seed's summary line to $SUMMARY and sets FAILED for cleanup.
finish_seed() {
  local k faults="" count=0
  for k in loss partition kill pause skew kernel disk; do
    [ "${FAULTS[$k]:-0}" -gt 0 ] && { faults+="${faults:+, }$k ${FAULTS[$k]}"; count=$((count + FAULTS[$k])); }
  done
  [ "${FAULTS[kernel_skipped]:-0}" -gt 0 ] && faults+="${faults:+, }kernel skipped ${FAULTS[kernel_skipped]}"
  [ "${FAULTS[disk_skipped]:-0}" -gt 0 ] && faults+="${faults:+, }disk skipped ${FAULTS[disk_skipped]}"
  local result=PASS
  if [ ${#REASONS[@]} -gt 0 ]; then
    result=FAIL
    FAILED=1
    echo "[seed $SEED] FAIL:"
    for k in "${REASONS[@]}"; do echo "[seed $SEED]   $k"; done
    echo "[seed $SEED] replay: scripts/chaos.sh --seed $SEED --nodes $NODES --duration $DURATION$([ "$CORRUPT" = 1 ] && echo " --corrupt")"
    echo "[seed $SEED] logs kept in $RUN_DIR (nI.log, events.log, plan, writes, incrs, sops, finals, counters, sets, digests, samples, disturbances)"
    [ -e "$RUN_DIR/digests" ] && echo "[seed $SEED] check again: $CHECKER --t0 $T0 $RUN_DIR"
  fi
  printf 'seed %-6s %s  faults %3d (%s)  writes %5s acked of %5s  incrs %5s acked of %5s  sets %5s acked of %5s  converged %6s  %3ds\n' \
    "$SEED" "$result" "$count" "${faults:-none}" "$1" "$2" "${4:-0}" "${5:-0}" "${6:-0}" "${7:-0}" "$3" \
    $((SECONDS - ${started:-$SECONDS})) >>"$SUMMARY"
}

# Stops what this run started, by pid and only after an ownership check.
run_cleanup() {
  local i
  [ -n "${SAMPLER:-}" ] && { touch "$RUN_DIR/stop-sampler"; kill "$SAMPLER" 2>/dev/null; }
  touch "$RUN_DIR/stop-writers" 2>/dev/null
  for i in "${HELPERS[@]}"; do kill "$i" 2>/dev/null; done
  for i in "${HELPERS[@]}" ${SAMPLER:-}; do wait "$i" 2>/dev/null; done
  kernel_off >/dev/null
  for i in "${!PID[@]}"; do
    if is_ours "$i"; then
      kill -9 "${PID[i]}" 2>/dev/null
    fi
  done
  if [ "${DISK_MOUNTED:-0}" = 1 ]; then
    # The killed nodes may still hold files there for a moment.
    for _ in $(seq 1 30); do umount "$RUN_DIR/data" 2>/dev/null && break; sleep 0.1; done
    mountpoint -q "$RUN_DIR/data" && umount -l "$RUN_DIR/data"
  fi
  if [ "$FAILED" = 1 ] || [ "$KEEP_LOGS" = 1 ]; then
    [ "$FAILED" = 1 ] || echo "[seed $SEED] logs kept in $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
  [ "$FAILED" = 1 ] && exit 1
  exit 0
}

# ---- the checker's own test ----------------------------------------------------------
# Hand-made histories, one the checker must pass and one for each violation
# it must catch, so that a passing seed means something: doctest cases in
# tests/chaos_check_test.cc. Seconds, no nodes.
self_test() {
  local tests
  tests=$(dirname "$CHECKER")/meshkv_tests
  [ -x "$tests" ] || { echo "chaos.sh: no $tests to run the checker's tests" >&2; return 2; }
  "$tests" --test-case='chaos check:*' --no-version || return 1
  echo "checker self-test: PASS"
}
if [ "${SELF_TEST:-0}" = 1 ]; then
  self_test
  exit
fi

# ---- all runs ----------------------------------------------------------------------
SUMMARY=$(mktemp /tmp/meshkv-chaos-summary.XXXXXX)
trap 'rm -f "$SUMMARY"' EXIT
ALL_START=$SECONDS
echo "chaos: seeds $SEED..$((SEED + RUNS - 1)), $NODES nodes, ${DURATION}s of faults each, $BIN"
[ -n "$NFT_NOTE" ] && echo "chaos: note: $NFT_NOTE"
passed=0
failed_seeds=()
for s in $(seq "$SEED" $((SEED + RUNS - 1))); do
  if (SEED=$s; run_seed); then
    passed=$((passed + 1))
  else
    failed_seeds+=("$s")
  fi
done
echo
echo "== chaos summary"
cat "$SUMMARY"
echo "passed $passed/$RUNS seeds in $((SECONDS - ALL_START))s${failed_seeds[*]:+; failed: ${failed_seeds[*]}}"
[ ${#failed_seeds[@]} = 0 ]
