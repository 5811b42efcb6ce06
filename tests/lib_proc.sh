# Shared helpers for real-process tests: start meshkv nodes on free loopback
# ports, wait for conditions with a bound, and stop only what was started.
# Sourced by tests/proc_*.sh (not a test itself); $MESHKV is the binary under test.

RUN_DIR=$(mktemp -d /tmp/meshkv-test.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "${KEEP_LOGS:-0}" = 1 ] || [ "${FAILED:-0}" = 1 ]; then
    echo "logs kept in $RUN_DIR"
  else
    rm -rf "$RUN_DIR"
  fi
}
trap cleanup EXIT

fail() {
  FAILED=1
  echo "FAIL: $*" >&2
  for f in "$RUN_DIR"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done >&2
  exit 1
}

# A base port such that base..base+n-1 are free for TCP and UDP. Chosen
# below the kernel's ephemeral range (32768 and up by default), where a
# client connection's source port could otherwise take a node's port.
free_base_port() {
  local n=$1 base p busy
  for _ in $(seq 1 50); do
    base=$((12000 + RANDOM % 20000))
    busy=0
    for p in $(seq "$base" $((base + n - 1))); do
      if ss -Htuln "sport = :$p" | grep -q .; then busy=1; break; fi
    done
    [ "$busy" = 0 ] && { echo "$base"; return; }
  done
  echo "no free ports" >&2
  exit 1
}

# start_node NAME PORT [extra args...]: headless node, logs in $RUN_DIR/NAME.log
start_node() {
  local name=$1 port=$2
  shift 2
  "$MESHKV" node --id "$name" --listen "127.0.0.1:$port" "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  eval "PORT_$name=$port"
}

# kill_node NAME [SIGNAL]: SIGKILL (or SIGNAL, e.g. TERM for a clean
# shutdown) the node started as NAME, reap it, and wait until its port is
# free again, so that a restart on the same port cannot fail with "address
# already in use" however loaded the machine is.
kill_node() {
  local name=$1 sig=${2:-KILL} pid port
  eval "pid=\$PID_$name port=\$PORT_$name"
  kill -s "$sig" "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local end=$((SECONDS + 10))
  while ss -Htuln "sport = :$port" | grep -q .; do
    [ $SECONDS -lt $end ] || fail "port $port still bound 10 s after $name (pid $pid) was killed"
    sleep 0.05
  done
}

# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND every 0.1 s.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "timed out after ${secs}s waiting for: $what"
}

# state_of NODE_PORT MEMBER: the member's state as NODE sees it.
state_of() {
  "$MESHKV" peers --node "127.0.0.1:$1" --json | grep -o "\"name\":\"$2\",\"state\":\"[a-z]*\"" |
    sed 's/.*"state":"\([a-z]*\)"/\1/'
}

# member_is NODE_PORT MEMBER STATE: for wait_for, re-queried on every try.
member_is() { [ "$(state_of "$1" "$2")" = "$3" ]; }

# value_is KEY NODE VALUE: the node returns exactly VALUE for KEY.
value_is() { [ "$("$MESHKV" get "$1" --node "$2" 2>/dev/null)" = "$3" ]; }
# absent_on_all KEY: every address in the caller's NODES array answers
# "not found" (exit 1) for KEY.
absent_on_all() {
  local n rc
  for n in "${NODES[@]}"; do
    "$MESHKV" get "$1" --node "$n" >/dev/null 2>&1
    rc=$?
    [ "$rc" = 1 ] || return 1
  done
}
