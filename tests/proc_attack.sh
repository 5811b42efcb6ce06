#!/usr/bin/env bash
# Resource attacks on a sealed node's control port by a client without the
# key, all on loopback, with processes started here:
#  (A) memory: a few connections each announce a 64 MiB frame and send as
#      much of it as they can, reconnecting whenever closed, for 6 s. The
#      node's RSS must stay under 64 MB during the attack and after it.
#  (B) crowding out: 300 connections that send a byte now and then (one a
#      second here, far less than the 30 s idle timeout), reconnecting
#      whenever closed, for 8 s. Meanwhile a client with the key must get
#      each of its `set` and `get` answered within 1 s.
# Then the node's counters of connections closed by the caps are printed
# and must show the attacks were met (control_handshake_too_large,
# control_evicted or control_handshake_timeouts).
# Usage: tests/proc_attack.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
unset MESHKV_KEY_FILE MESHKV_NODE
T0=$SECONDS
since() { echo "[$((SECONDS - T0))s] $*"; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the attacking clients"; exit 0; }

PORT=$(free_base_port 1)
NODE=127.0.0.1:$PORT
KEY=$RUN_DIR/cluster.key
"$MESHKV" keygen --cluster -o "$KEY" >/dev/null || fail "keygen --cluster"
sk() { "$MESHKV" "$@" --key-file "$KEY"; }
start_node a "$PORT" --key-file "$KEY"
wait_for 10 "the sealed node answers" sk status --node "$NODE"
# shellcheck disable=SC2154 # set by start_node
PID=$PID_a

# Sanitizer builds take far more memory for the same work: scripts/test.sh
# raises the bound for them.
LIMIT_KB=${MESHKV_ATTACK_RSS_LIMIT_KB:-65536}
MAX_MS=${MESHKV_ATTACK_MAX_MS:-1000}  # for a keyed set or get
SECS=${MESHKV_ATTACK_SECONDS:-8}      # how long attack (B) lasts
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
counter() {
  local v
  v=$(sk status --node "$NODE" --json | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2)
  echo "${v:--1}"
}

# attack.py MODE PORT SECONDS CONNS: the attacking client, without a key.
cat >"$RUN_DIR/attack.py" <<'EOF'
import selectors, socket, struct, sys, time
mode, port, secs, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
sel = selectors.DefaultSelector()
end = time.time() + secs
chunk = b"\x00" * (1 << 20)
conns = {}  # socket -> bytes still to send (big) or time of next byte (trickle)

def connect():
    s = socket.socket()
    s.setblocking(False)
    try:
        # From another address than the keyed client, as an attacker on
        # another host would be: the per-address cap is what keeps it from
        # evicting the client's connection before its handshake.
        s.bind(("127.0.0.2", 0))
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        s.close()
        return
    if mode == "big":
        conns[s] = [struct.pack("<I", 64 << 20), 60 << 20]  # header, then 60 MiB of body
    else:
        conns[s] = 0.0
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)

def drop(s):
    sel.unregister(s)
    del conns[s]
    s.close()

for _ in range(n):
    connect()
closed = 0
while time.time() < end:
    for key, ev in sel.select(timeout=0.05):
        s = key.fileobj
        if s not in conns:
            continue
        try:
            if ev & selectors.EVENT_READ:
                if not s.recv(65536):
                    raise OSError("closed")
            if ev & selectors.EVENT_WRITE:
                st = conns[s]
                if mode == "big":
                    if st[0]:
                        st[0] = st[0][s.send(st[0]):]
                    elif st[1] > 0:
                        st[1] -= s.send(chunk[: min(len(chunk), st[1])])
                    else:
                        sel.modify(s, selectors.EVENT_READ)
                elif time.time() >= st:
                    s.send(b"\x01")
                    conns[s] = time.time() + 1.0
                    sel.modify(s, selectors.EVENT_READ)
        except OSError:
            drop(s)
            closed += 1
    if mode == "trickle":
        now = time.time()
        for s, t in list(conns.items()):
            if t <= now:
                sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    while len(conns) < n:  # reconnect what the node closed
        connect()
print(f"{mode}: {n} connections, {closed} closed by the node and reopened")
EOF

# ---- (A) memory -------------------------------------------------------------
RSS0=$(rss_kb)
python3 "$RUN_DIR/attack.py" big "$PORT" 6 6 >"$RUN_DIR/attack_a.out" 2>&1 &
APID=$!
PIDS+=("$APID")
PEAK=$RSS0
while kill -0 "$APID" 2>/dev/null; do
  r=$(rss_kb)
  [ "${r:-0}" -gt "$PEAK" ] && PEAK=$r
  sleep 0.1
done
wait "$APID"
sleep 0.5
RSS1=$(rss_kb)
since "(A) 6 connections announcing 64 MiB frames for 6 s: RSS ${RSS0} kB before, peak ${PEAK} kB during, ${RSS1} kB after ($(cat "$RUN_DIR/attack_a.out"))"
A_OK=1
[ "$PEAK" -lt "$LIMIT_KB" ] || { A_OK=0; echo "FAIL: (A) RSS reached $PEAK kB during the attack (limit $LIMIT_KB)"; }
[ "$RSS1" -lt "$LIMIT_KB" ] || { A_OK=0; echo "FAIL: (A) RSS is $RSS1 kB after the attack (limit $LIMIT_KB)"; }
kill -0 "$PID" 2>/dev/null || fail "(A) the node died"

# ---- (B) crowding out ---------------------------------------------------------
python3 "$RUN_DIR/attack.py" trickle "$PORT" "$SECS" 300 >"$RUN_DIR/attack_b.out" 2>&1 &
BPID=$!
PIDS+=("$BPID")
sleep 2  # the attack in place
B_OK=1 WORST=0
for i in 1 2 3 4 5; do
  for op in "set attack/k$i v$i" "get attack/k$i"; do
    t=$(date +%s%N)
    # shellcheck disable=SC2086
    out=$(timeout 5 "$MESHKV" $op --node "$NODE" --key-file "$KEY" 2>&1)
    rc=$?
    ms=$((($(date +%s%N) - t) / 1000000))
    [ "$ms" -gt "$WORST" ] && WORST=$ms
    if [ $rc != 0 ] || [ "$ms" -gt "$MAX_MS" ]; then
      B_OK=0
      echo "FAIL: (B) keyed '$op' during the attack: exit $rc after $ms ms: $out"
    elif [ "${op%% *}" = get ] && [ "$out" != "v$i" ]; then
      B_OK=0
      echo "FAIL: (B) keyed '$op' printed '$out', expected v$i"
    fi
  done
  sleep 0.3
done
kill -0 "$BPID" 2>/dev/null || { B_OK=0; echo "FAIL: (B) the attacker stopped before the keyed client was done"; }
wait "$BPID"
since "(B) 300 connections trickling a byte a second: keyed set/get, slowest ${WORST} ms ($(cat "$RUN_DIR/attack_b.out")); RSS $(rss_kb) kB"
kill -0 "$PID" 2>/dev/null || fail "(B) the node died"

# ---- counters -----------------------------------------------------------------
for c in control_refused control_handshake_too_large control_handshake_timeouts control_evicted control_rejected; do
  echo "  $c: $(counter $c)"
done
if [ $A_OK = 1 ] && [ $B_OK = 1 ]; then
  [ "$(counter control_handshake_too_large)" -gt 0 ] || fail "control_handshake_too_large was not counted"
  [ "$(($(counter control_evicted) + $(counter control_handshake_timeouts)))" -gt 0 ] ||
    fail "neither control_evicted nor control_handshake_timeouts was counted"
fi
if [ $A_OK != 1 ] || [ $B_OK != 1 ]; then fail "attack (A) ok=$A_OK, (B) ok=$B_OK"; fi
since "all ok"
