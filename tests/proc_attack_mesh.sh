#!/usr/bin/env bash
# Attacks on an unsealed mesh by someone who can send it datagrams, all on
# loopback, with processes started here. Three honest nodes (a, b, c) and an
# attacker at 127.0.0.2 (meshkv_forge forges datagrams, valid CRC-32C
# included; a python3 client holds HTTP requests open):
#  (4) one forged Members datagram listing 50 members that do not exist,
#      sent to a. Gossip carries them to b and c. Keys deleted afterwards
#      must still have their tombstones collected on all three (grace 2 s),
#      and none of the 50 may end up on an exclusion list.
#  (3) for 12 s, 1,500 forged Members datagrams a second, 55 statements each
#      (alive, suspect, dead and left in turn), every one about a member and
#      a process never heard of before, sent to a.
#  (M) for 12 s, 1,500 connections to a's metrics port, each sending an HTTP
#      request's first line and never its end, reopened whenever closed.
# For each: every honest node's RSS stays under 64 MB during and after; a
# client's `set` and `get` on a are each answered within 1 s while the
# attack runs; a write on a reaches c, and no honest node is declared dead
# by another (replication goes on). Then the counters that recorded the
# attack are printed.
# Usage: tests/proc_attack_mesh.sh path/to/meshkv
#   (meshkv_forge is looked for next to meshkv, or in $MESHKV_FORGE;
#   MESHKV_ATTACK_RSS_LIMIT_KB, MESHKV_ATTACK_MAX_MS and MESHKV_ATTACK_SECONDS
#   change the bounds and the length of the attacks, for sanitizer builds)
set -uo pipefail
MESHKV=$(realpath "$1")
FORGE=${MESHKV_FORGE:-$(dirname "$MESHKV")/meshkv_forge}
source "$(dirname "$0")/lib_proc.sh"
unset MESHKV_KEY_FILE MESHKV_NODE
T0=$SECONDS
since() { echo "[$((SECONDS - T0))s] $*"; }
[ -x "$FORGE" ] || fail "$FORGE is not built (cmake --build build --target meshkv_forge)"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the metrics-port attacker"; exit 0; }
# Sanitizer builds take far more memory and time for the same work:
# scripts/test.sh raises the bounds for them.
LIMIT_KB=${MESHKV_ATTACK_RSS_LIMIT_KB:-65536}
MAX_MS=${MESHKV_ATTACK_MAX_MS:-1000}  # for a client's set or get
SECS=${MESHKV_ATTACK_SECONDS:-12}     # how long attacks (3) and (M) last

BASE=$(free_base_port 4)
PA=$BASE PB=$((BASE + 1)) PC=$((BASE + 2)) PM=$((BASE + 3))
A=127.0.0.1:$PA C=127.0.0.1:$PC
OPTS=(--tombstone-grace 2000 --log-level info)
start_node a "$PA" "${OPTS[@]}" --metrics "127.0.0.1:$PM"
start_node b "$PB" "${OPTS[@]}" --join "$A"
start_node c "$PC" "${OPTS[@]}" --join "$A"
# shellcheck disable=SC2154 # set by start_node
HONEST=("$PID_a" "$PID_b" "$PID_c")
for p in "$PA" "$PB" "$PC"; do
  for m in a b c; do
    [ "$p" = "$(eval echo "\$PORT_$m")" ] && continue
    wait_for 15 "$m alive at :$p" member_is "$p" "$m" alive
  done
done

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The largest RSS of the honest nodes now.
max_rss() {
  local m=0 r pid
  for pid in "${HONEST[@]}"; do
    r=$(rss_kb "$pid")
    [ "${r:-0}" -gt "$m" ] && m=$r
  done
  echo "$m"
}
status_json() { "$MESHKV" status --node "127.0.0.1:$1" --json 2>/dev/null; }
# counter PORT NAME: the first number called NAME in the node's status.
counter() {
  local v
  v=$(status_json "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2)
  echo "${v:--1}"
}
all_alive() { for pid in "${HONEST[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done; }

# watch_rss PID_OF_ATTACKER: the peak RSS of the honest nodes while it runs.
watch_rss() {
  local peak r
  peak=$(max_rss)
  while kill -0 "$1" 2>/dev/null; do
    r=$(max_rss)
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.1
  done
  echo "$peak"
}

# keyed_ops TAG [ATTACKER_PID]: five rounds of set and get on a, each timed
# (the attacker, if given, must still be at it when they are done), and a
# write on a that must reach c within 5 s. Sets OPS_OK, WORST (ms), REPL_MS.
keyed_ops() {
  local tag=$1 attacker=${2:-} i op out rc t ms
  OPS_OK=1 WORST=0
  for i in 1 2 3 4 5; do
    for op in "set $tag/k$i v$i" "get $tag/k$i"; do
      t=$(date +%s%N)
      # shellcheck disable=SC2086
      out=$(timeout 5 "$MESHKV" $op --node "$A" 2>&1)
      rc=$?
      ms=$((($(date +%s%N) - t) / 1000000))
      [ "$ms" -gt "$WORST" ] && WORST=$ms
      if [ $rc != 0 ] || [ "$ms" -gt "$MAX_MS" ]; then
        OPS_OK=0
        echo "FAIL: ($tag) '$op' on a during the attack: exit $rc after $ms ms: $out"
      elif [ "${op%% *}" = get ] && [ "$out" != "v$i" ]; then
        OPS_OK=0
        echo "FAIL: ($tag) '$op' printed '$out', expected v$i"
      fi
    done
    sleep 0.2
  done
  if [ -n "$attacker" ] && ! kill -0 "$attacker" 2>/dev/null; then
    OPS_OK=0
    echo "FAIL: ($tag) the attack ended before the client was done"
  fi
  t=$(date +%s%N)
  "$MESHKV" set "$tag/repl" "r-$tag" --node "$A" >/dev/null 2>&1 || OPS_OK=0
  REPL_MS=-1
  for _ in $(seq 1 50); do
    if value_is "$tag/repl" "$C" "r-$tag"; then
      REPL_MS=$((($(date +%s%N) - t) / 1000000))
      break
    fi
    sleep 0.1
  done
  [ "$REPL_MS" -ge 0 ] || { OPS_OK=0; echo "FAIL: ($tag) a write on a did not reach c within 5 s"; }
}

# How often, so far, an honest node was declared dead by another.
honest_deaths() { cat "$RUN_DIR"/[abc].log | grep -c -E "member [abc] \(127\.0\.0\.1:[0-9]+\) is dead"; }
DEATHS=0
# verdict TAG BEFORE PEAK AFTER: checks the RSS bound and the client's ops.
RESULT=0
verdict() {
  local tag=$1 before=$2 peak=$3 after=$4 ok=$OPS_OK
  since "($tag) RSS (largest of a, b, c): ${before} kB before, peak ${peak} kB during, ${after} kB after;" \
    "client set/get on a: slowest ${WORST} ms; a write on a reached c in ${REPL_MS} ms"
  [ "$peak" -lt "$LIMIT_KB" ] || { ok=0; echo "FAIL: ($tag) RSS reached $peak kB during the attack (limit $LIMIT_KB)"; }
  [ "$after" -lt "$LIMIT_KB" ] || { ok=0; echo "FAIL: ($tag) RSS is $after kB after the attack (limit $LIMIT_KB)"; }
  all_alive || fail "($tag) an honest node died"
  # An honest node too busy to answer probes is declared dead by the others,
  # which then stop replicating to it.
  local dead
  dead=$(($(honest_deaths) - DEATHS))
  [ "$dead" = 0 ] || { ok=0; echo "FAIL: ($tag) honest nodes were declared dead $dead times (see the logs)"; }
  DEATHS=$(honest_deaths)
  [ $ok = 1 ] || RESULT=1
}

# ---- (4) one datagram, 50 members that do not exist ---------------------------
for i in $(seq 1 20); do "$MESHKV" set "doomed/$i" "v$i" --node "$A" >/dev/null || fail "set doomed/$i"; done
keys_are() { [ "$(counter "$1" keys)" = "$2" ]; }
for p in "$PA" "$PB" "$PC"; do wait_for 10 "the 20 keys on :$p" keys_are "$p" 20; done
# The forgery is against an established mesh: every node has heard from every
# member once (gc.settled). A node still joining when forged names reach it
# settles only once they are reaped or forgotten (README, Tombstones), and
# on a quick machine the names could otherwise arrive before that.
settled() { status_json "$1" | grep -q '"settled":true'; }
for p in "$PA" "$PB" "$PC"; do wait_for 10 ":$p settled" settled "$p"; done
RSS0=$(max_rss)
"$FORGE" fake "$A" 50 >"$RUN_DIR/forge4.out" 2>&1 || fail "meshkv_forge fake: $(cat "$RUN_DIR/forge4.out")"
# Gossip carries the forgery on: wait until c lists ten of them too.
forged_at_c() { [ "$("$MESHKV" peers --node "$C" --json | grep -o '"name":"f[0-9][0-9]"' | wc -l)" -ge 10 ]; }
wait_for 15 "the forged members reach c" forged_at_c
for i in $(seq 1 20); do "$MESHKV" del "doomed/$i" --node "$A" >/dev/null || fail "del doomed/$i"; done
(sleep 12) &
W4=$!
PIDS+=("$W4")
watch_rss "$W4" >"$RUN_DIR/peak4" &
WATCH=$!
keyed_ops attack4
GC_OK=0
collected_everywhere() {
  for p in "$PA" "$PB" "$PC"; do [ "$(counter "$p" collected)" -ge 20 ] || return 1; done
}
END=$((SECONDS + 10))
while [ $SECONDS -lt $END ]; do
  collected_everywhere && { GC_OK=1; break; }
  sleep 0.2
done
T_GC=$((SECONDS - T0))
wait "$WATCH"
PEAK=$(cat "$RUN_DIR/peak4")
verdict attack4 "$RSS0" "$PEAK" "$(max_rss)"
for p in "$PA" "$PB" "$PC"; do
  echo "  :$p gc: collected $(counter "$p" collected), tombstones $(counter "$p" tombstones)," \
    "quorum $(status_json "$p" | grep -o '"quorum":[a-z]*' | cut -d: -f2)," \
    "excluded [$(status_json "$p" | grep -o '"excluded":\[[^]]*\]' | cut -d: -f2- | tr -d '[]')]," \
    "exclusions_refused $(counter "$p" exclusions_refused), unverified members $(counter "$p" unverified)"
done
[ $GC_OK = 1 ] || { RESULT=1; echo "FAIL: (attack4) tombstones were not collected on a, b and c within 10 s of the grace period"; }
[ $GC_OK = 1 ] && since "(attack4) the 20 tombstones collected on a, b and c by ${T_GC}s"
for p in "$PA" "$PB" "$PC"; do
  if status_json "$p" | grep -o '"excluded":\[[^]]*\]' | grep -q '"f[0-9]'; then
    RESULT=1
    echo "FAIL: (attack4) forged members are on :$p's exclusion list"
  fi
done

# ---- (3) forged members with fresh uids, 1,500 datagrams a second ---------------
RSS0=$(max_rss)
"$FORGE" flood "$A" "$SECS" 1500 >"$RUN_DIR/forge3.out" 2>&1 &
F3=$!
PIDS+=("$F3")
watch_rss "$F3" >"$RUN_DIR/peak3" &
WATCH=$!
sleep 1.5  # the attack in place
keyed_ops attack3 "$F3"
wait "$F3"
wait "$WATCH"
PEAK=$(cat "$RUN_DIR/peak3")
sleep 1
verdict attack3 "$RSS0" "$PEAK" "$(max_rss)"
echo "  $(cat "$RUN_DIR/forge3.out")"
for c in queue_drops table_drops gossip_drops gossip_queue process_names introductions unverified; do
  printf '  a %s: %s\n' "$c" "$(counter "$PA" "$c")"
done

# ---- (M) 1,500 half-open requests on the metrics port ---------------------------
cat >"$RUN_DIR/http.py" <<'EOF'
import selectors, socket, sys, time
port, secs, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
end = time.time() + secs
conns, closed = set(), 0
def connect():
    s = socket.socket()
    s.setblocking(False)
    try:
        s.bind(("127.0.0.2", 0))
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        s.close()
        return
    conns.add(s)
    sel.register(s, selectors.EVENT_WRITE)
while len(conns) < n:
    connect()
while time.time() < end:
    for key, ev in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            if ev & selectors.EVENT_WRITE:
                s.send(b"GET /metrics HTTP/1.1\r\nHost: meshkv\r\n")  # and never the blank line
                sel.modify(s, selectors.EVENT_READ)
            elif not s.recv(65536):
                raise OSError("closed")
        except OSError:
            sel.unregister(s)
            conns.discard(s)
            s.close()
            closed += 1
    while len(conns) < n:
        connect()
print(f"metrics: {n} half-open requests held, {closed} closed by the node and reopened")
EOF
RSS0=$(max_rss)
python3 "$RUN_DIR/http.py" "$PM" "$SECS" 1500 >"$RUN_DIR/http.out" 2>&1 &
HM=$!
PIDS+=("$HM")
watch_rss "$HM" >"$RUN_DIR/peakm" &
WATCH=$!
sleep 1.5
keyed_ops metrics "$HM"
wait "$HM"
wait "$WATCH"
PEAK=$(cat "$RUN_DIR/peakm")
sleep 1
verdict metrics "$RSS0" "$PEAK" "$(max_rss)"
echo "  $(cat "$RUN_DIR/http.out")"
if command -v curl >/dev/null; then
  curl -sS --max-time 5 "http://127.0.0.1:$PM/metrics" >"$RUN_DIR/metrics.txt" || fail "a scrape after the attack failed"
  grep -E '^meshkv_(members_unverified|exclusions_refused_total|membership_table_drops_total|http_refused_total)' \
    "$RUN_DIR/metrics.txt" | sed 's/^/  /'
fi

[ $RESULT = 0 ] || fail "an attack succeeded (see FAIL lines above)"
since "all ok"
