#!/usr/bin/env bash
# A local meshkv cluster for demos and tests: N headless nodes on 127.0.0.1,
# started, inspected and stopped as one. Run with --help for the details.
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: cluster.sh up N [--loss P] [--base-port PORT] [--wait SECONDS] [--dir DIR]
       cluster.sh status [--dir DIR]
       cluster.sh down [--dir DIR]

A local meshkv cluster: N headless `meshkv node` processes on 127.0.0.1.

  up N     Start nodes n1..nN on consecutive ports (n1 on the first port) and
           make n2..nN join n1. Waits until every node sees every other alive
           (at most --wait seconds, default 15), then prints each node's id,
           address, pid and log, and the line to paste to point the meshkv
           subcommands at the cluster. If the cluster does not form in time,
           or a node exits, it stops the nodes it started, shows the end of
           their logs and exits 1. Refuses (exit 1) while a cluster is up in
           the same directory.
             --loss P          every node drops this share (0..1) of the
                               datagrams it sends (meshkv node --loss)
             --base-port PORT  first port; PORT..PORT+N-1 must be free for
                               UDP and TCP. Default: the first run of N free
                               ports from 7946 on
             --wait SECONDS    how long to wait for the mesh to form (15)
  status   For each node: pid, whether that process is running, and, asked
           with `meshkv status --json`, how many members it knows, how many
           of them it sees alive, and its key count. Exit 0 when every node
           runs and answers, 1 otherwise.
  down     Stop the nodes whose pids are recorded in the run directory:
           SIGTERM (they leave the mesh gracefully), then SIGKILL after 3 s
           for any still running. Removes the pid files, keeps the logs.
           Nothing else is ever signalled. Harmless when nothing runs.

Options for every command:
  --dir DIR   the run directory: per node a log (nI.log) and a pid file
              (nI.pid), and the list of nodes (nodes). Default
              $MESHKV_CLUSTER_DIR, or ./.meshkv-cluster
  -h, --help  this text

Environment:
  MESHKV_BIN          the meshkv binary (default: ../build/meshkv next to
                      this script)
  MESHKV_CLUSTER_DIR  the default run directory

Exit status: 0 success, 1 failure (cluster not formed, already up, a node
down), 2 usage error or missing binary.

Example:
  scripts/cluster.sh up 5 --loss 0.1
  export MESHKV_NODE=127.0.0.1:7946      # as printed by up
  build/meshkv set color blue && build/meshkv clock --node 127.0.0.1:7947
  scripts/cluster.sh status
  scripts/cluster.sh down
EOF
}

die_usage() {
  echo "cluster.sh: $*" >&2
  echo "Run 'cluster.sh --help' for usage." >&2
  exit 2
}

# ---- arguments ---------------------------------------------------------------
CMD=""
N=""
LOSS=""
BASE_PORT=""
WAIT=15
DIR=${MESHKV_CLUSTER_DIR:-./.meshkv-cluster}
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --dir) [ $# -ge 2 ] || die_usage "--dir needs a value"; DIR=$2; shift ;;
    --dir=*) DIR=${1#*=} ;;
    --loss) [ $# -ge 2 ] || die_usage "--loss needs a value"; LOSS=$2; shift ;;
    --loss=*) LOSS=${1#*=} ;;
    --base-port) [ $# -ge 2 ] || die_usage "--base-port needs a value"; BASE_PORT=$2; shift ;;
    --base-port=*) BASE_PORT=${1#*=} ;;
    --wait) [ $# -ge 2 ] || die_usage "--wait needs a value"; WAIT=$2; shift ;;
    --wait=*) WAIT=${1#*=} ;;
    -*) die_usage "unknown option '$1'" ;;
    *)
      if [ -z "$CMD" ]; then
        CMD=$1
      elif [ "$CMD" = up ] && [ -z "$N" ]; then
        N=$1
      else
        die_usage "unexpected argument '$1'"
      fi
      ;;
  esac
  shift
done
[ -n "$CMD" ] || { usage >&2; exit 2; }
[ -n "$DIR" ] || die_usage "--dir must not be empty"

[ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd)

BIN=${MESHKV_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/meshkv}
if [ ! -x "$BIN" ]; then
  echo "cluster.sh: no meshkv binary at $BIN (build it, or set MESHKV_BIN)" >&2
  exit 2
fi

# ---- helpers -------------------------------------------------------------------
# node_running PID ID: PID is a live (not zombie) `meshkv node --id ID ...`,
# so a recycled pid is never mistaken for a node, nor signalled.
node_running() {
  local pid=$1 id=$2 state cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  if [ -d /proc/1 ]; then
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
    [[ $cmd == *" node --id $id "* ]] # as up starts it
  else
    kill -0 "$pid" 2>/dev/null
  fi
}

port_busy() {
  ss -Htuln "sport = :$1" 2>/dev/null | grep -q .
}

# The ids with a pid file in $DIR, in order n1, n2, ...
pid_ids() {
  local f
  for f in "$DIR"/n*.pid; do
    [ -f "$f" ] || continue
    f=${f##*/}
    echo "${f%.pid}"
  done | sort -t n -k 2 -n
}

# Milliseconds since the epoch, without a fork.
now_ms() {
  local t=${EPOCHREALTIME//[.,]/}
  echo $((10#$t / 1000))
}

# json_count TEXT PATTERN: occurrences of PATTERN in TEXT.
json_count() {
  grep -o -- "$2" <<<"$1" | wc -l | tr -d ' '
}

# ---- down ----------------------------------------------------------------------
do_down() {
  local id pid ids=() pids=() i alive
  for id in $(pid_ids); do
    pid=$(cat "$DIR/$id.pid" 2>/dev/null)
    if node_running "$pid" "$id"; then
      kill -TERM "$pid" 2>/dev/null
      ids+=("$id")
      pids+=("$pid")
    else
      echo "$id: pid ${pid:-?} is not running"
    fi
  done
  # Up to 3 s for a graceful leave, then SIGKILL; then up to 2 s to vanish.
  local end=$(($(now_ms) + 3000))
  while [ "$(now_ms)" -lt $end ]; do
    alive=0
    for i in "${!pids[@]}"; do node_running "${pids[i]}" "${ids[i]}" && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if node_running "${pids[i]}" "${ids[i]}"; then
      echo "${ids[i]}: pid ${pids[i]} still running after 3 s; sending SIGKILL"
      kill -KILL "${pids[i]}" 2>/dev/null
    fi
  done
  local rc=0
  for i in "${!pids[@]}"; do
    for _ in $(seq 1 20); do
      node_running "${pids[i]}" "${ids[i]}" || break
      sleep 0.1
    done
    if node_running "${pids[i]}" "${ids[i]}"; then
      echo "${ids[i]}: pid ${pids[i]} did not stop" >&2
      rc=1
    else
      echo "${ids[i]}: stopped (pid ${pids[i]})"
    fi
  done
  for id in $(pid_ids); do rm -f "$DIR/$id.pid"; done
  return $rc
}

cmd_down() {
  if [ -z "$(pid_ids 2>/dev/null)" ]; then
    echo "no meshkv cluster running in $DIR"
    return 0
  fi
  do_down
  local rc=$?
  echo "logs kept in $DIR"
  return $rc
}

# ---- status --------------------------------------------------------------------
cmd_status() {
  if [ ! -f "$DIR/nodes" ]; then
    echo "no meshkv cluster was started in $DIR"
    return 1
  fi
  local id addr pid running json members alive keys rc=0
  printf '%-4s  %-15s  %-7s  %-7s  %-7s  %-5s  %s\n' ID ADDRESS PID PROCESS MEMBERS ALIVE KEYS
  while read -r id addr; do
    [ -n "$id" ] || continue
    pid=$(cat "$DIR/$id.pid" 2>/dev/null || echo -)
    members=- alive=- keys=-
    if node_running "$pid" "$id"; then
      running=running
      if json=$("$BIN" status --node "$addr" --json --timeout 1000 2>/dev/null); then
        # "members":[{...,"state":"alive",...},...] lists the other members.
        members=$(json_count "$json" '"state":"')
        alive=$(json_count "$json" '"state":"alive"')
        keys=$(grep -o '"keys":[0-9]*' <<<"$json" | head -n 1 | cut -d: -f2)
      else
        running="silent"
        rc=1
      fi
    else
      running=stopped
      rc=1
    fi
    printf '%-4s  %-15s  %-7s  %-7s  %-7s  %-5s  %s\n' "$id" "$addr" "$pid" "$running" "$members" "$alive" "$keys"
  done <"$DIR/nodes"
  return $rc
}

# ---- up ------------------------------------------------------------------------
# Every node answers and sees all N alive (peers lists the node itself too).
all_alive() {
  local id addr json
  while read -r id addr; do
    json=$("$BIN" peers --node "$addr" --json --timeout 500 2>/dev/null) || return 1
    [ "$(json_count "$json" '"state":"alive"')" -ge "$N" ] || return 1
  done <"$DIR/nodes"
}

# Stops what up started (first, so that nothing is left behind whatever
# happens to the output), then shows why it failed.
up_failed() {
  trap - INT TERM HUP PIPE
  do_down >/dev/null 2>&1
  echo "cluster.sh: $*" >&2
  local id
  for id in $(cut -d' ' -f1 "$DIR/nodes"); do
    echo "--- $DIR/$id.log (last lines)" >&2
    tail -n 5 "$DIR/$id.log" >&2 2>/dev/null
  done
  echo "stopped the nodes; logs kept in $DIR" >&2
  exit 1
}

cmd_up() {
  [[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 64 ] || die_usage "up needs a node count N from 1 to 64"
  [[ $WAIT =~ ^[0-9]+$ ]] && [ "$WAIT" -ge 1 ] || die_usage "--wait needs a whole number of seconds"
  if [ -n "$LOSS" ] && ! [[ $LOSS =~ ^(0(\.[0-9]*)?|\.[0-9]+|1(\.0*)?)$ ]]; then
    die_usage "--loss needs a share between 0 and 1, got '$LOSS'"
  fi
  command -v ss >/dev/null || { echo "cluster.sh: needs ss (Debian package iproute2) to find free ports" >&2; exit 2; }

  mkdir -p "$DIR" || exit 2
  DIR=$(cd "$DIR" && pwd)
  local id pid
  for id in $(pid_ids); do
    pid=$(cat "$DIR/$id.pid" 2>/dev/null)
    if node_running "$pid" "$id"; then
      echo "cluster.sh: a cluster is already up in $DIR ($id is pid $pid); run: $0 down --dir $DIR" >&2
      exit 1
    fi
  done
  for id in $(pid_ids); do rm -f "$DIR/$id.pid"; done # stale, from a crash

  local base p i
  if [ -n "$BASE_PORT" ]; then
    [[ $BASE_PORT =~ ^[0-9]+$ ]] && [ "$BASE_PORT" -ge 1 ] && [ $((BASE_PORT + N - 1)) -le 65535 ] ||
      die_usage "--base-port needs a port such that PORT+N-1 <= 65535"
    base=$BASE_PORT
    for p in $(seq "$base" $((base + N - 1))); do
      port_busy "$p" && { echo "cluster.sh: port $p is in use (ports $base..$((base + N - 1)) are needed)" >&2; exit 1; }
    done
  else
    base=""
    p=7946
    while [ -z "$base" ] && [ $((p + N - 1)) -le 65535 ] && [ $p -lt $((7946 + 2000)) ]; do
      local run=0
      while [ $run -lt "$N" ] && ! port_busy $((p + run)); do run=$((run + 1)); done
      if [ $run = "$N" ]; then base=$p; else p=$((p + run + 1)); fi
    done
    [ -n "$base" ] || { echo "cluster.sh: no $N consecutive free ports from 7946 on" >&2; exit 1; }
  fi

  local seed="127.0.0.1:$base" args
  # Interrupted before the mesh is up: stop whatever was started.
  trap 'up_failed "interrupted"' INT TERM HUP PIPE
  : >"$DIR/nodes"
  for i in $(seq 1 "$N"); do
    id=n$i
    args=(node --id "$id" --listen "127.0.0.1:$((base + i - 1))")
    [ "$i" -gt 1 ] && args+=(--join "$seed")
    [ -n "$LOSS" ] && args+=(--loss "$LOSS")
    "$BIN" "${args[@]}" </dev/null >"$DIR/$id.log" 2>&1 &
    echo $! >"$DIR/$id.pid"
    echo "$id 127.0.0.1:$((base + i - 1))" >>"$DIR/nodes"
  done

  local end=$(($(now_ms) + WAIT * 1000)) formed=0
  while [ "$(now_ms)" -lt $end ]; do
    for id in $(pid_ids); do
      node_running "$(cat "$DIR/$id.pid")" "$id" || up_failed "$id exited while starting"
    done
    if all_alive; then
      formed=1
      break
    fi
    sleep 0.2
  done
  [ $formed = 1 ] || up_failed "the mesh did not form within $WAIT s (every node must see the $((N - 1)) others alive)"
  trap - INT TERM HUP PIPE

  echo "meshkv cluster of $N node(s) up in $DIR${LOSS:+ (each dropping $LOSS of what it sends)}"
  printf '%-4s  %-15s  %-7s  %s\n' ID ADDRESS PID LOG
  local addr
  while read -r id addr; do
    printf '%-4s  %-15s  %-7s  %s\n' "$id" "$addr" "$(cat "$DIR/$id.pid")" "$DIR/$id.log"
  done <"$DIR/nodes"
  echo
  echo "export MESHKV_NODE=$seed"
  echo "stop with: $0 down --dir $DIR"
}

case $CMD in
  up) cmd_up ;;
  status) cmd_status ;;
  down) cmd_down ;;
  help) usage ;;
  *) die_usage "unknown command '$CMD' (up, status or down)" ;;
esac
