#!/usr/bin/env bash
# Attacks on a sealed mesh of real processes, all on loopback:
#  (a) a sealed 3-node cluster converges (writes on one, read on the others);
#  (b) a node without the key and one with another mesh's key, both told to
#      join it, never become members, never see its data, and the sealed
#      node counts them (unsealed, unknown_key);
#  (c) control commands without a key or with a wrong one exit 3 with
#      "permission denied" and print no key, value or secret; keys install
#      without a key refuses to send the new key at all;
#  (d) an allowlist: two nodes that allow each other refuse a third that
#      holds the cluster key (refused_peers); no write crosses either way;
#  (e) rotation: keys install, use, remove over the live cluster while a
#      writer writes: no acknowledged write is lost; the old key is refused
#      afterwards, for control and for joining;
#  (f) with tcpdump: a capture of the sealed cluster's traffic (its UDP
#      ports, and the TCP control port of one node) holds none of the keys,
#      values and secrets used, while a capture of an unsealed cluster given
#      the same writes holds them (so this check can fail); and datagrams
#      from the capture replayed to a node are refused: within its lifetime
#      by the counter window (replayed), after its restart by the receiver
#      uid (stale_session). Skipped with a note where tcpdump cannot capture.
# Usage: tests/proc_security.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
unset MESHKV_KEY_FILE MESHKV_NODE  # the caller's, if any, must not leak in
T0=$SECONDS

BASE=$(free_base_port 12)
PA=$BASE PB=$((BASE + 1)) PC=$((BASE + 2))  # the sealed cluster
PX=$((BASE + 3)) PY=$((BASE + 4))           # intruders: no key, another key
PP=$((BASE + 5)) PQ=$((BASE + 6)) PR=$((BASE + 7))  # allowlist: p, q allowed; r not
PU1=$((BASE + 8)) PU2=$((BASE + 9))         # an unsealed cluster, the control for (f)
POLD=$((BASE + 10))                         # joins with the key removed in (e)
PPROBE=$((BASE + 11))                       # nobody listens: capture probe
LAST=$PPROBE
A=127.0.0.1:$PA B=127.0.0.1:$PB C=127.0.0.1:$PC

m() { "$MESHKV" "$@"; }
# As a client holding $KEY, the sealed cluster's current key.
sk() { "$MESHKV" "$@" --key-file "$KEY"; }
# As a client without a key.
nk() { "$MESHKV" "$@"; }
# As a client of the allowlist mesh, and with another mesh's key.
ak() { "$MESHKV" "$@" --key-file "$KA"; }
ok() { "$MESHKV" "$@" --key-file "$KO"; }
since() { echo "[$((SECONDS - T0))s] $*"; }

# ---- keys -------------------------------------------------------------------
KD=$RUN_DIR/keys
mkdir -p "$KD"
m keygen --cluster -o "$KD/cluster.key" >/dev/null || fail "keygen cluster.key"
m keygen --cluster -o "$KD/other.key" >/dev/null || fail "keygen other.key"
KNEW_ID=$(m keygen --cluster -o "$KD/new.key" | sed -n 's/^key id: *//p')
[ ${#KNEW_ID} = 16 ] || fail "keygen new.key printed no key id"
m keygen --cluster -o "$KD/allow.key" >/dev/null || fail "keygen allow.key"
K=$KD/cluster.key KO=$KD/other.key KNEW=$KD/new.key KA=$KD/allow.key
KEY=$K
pub_of() {  # pub_of NAME: makes NAME.identity, prints its public key
  m keygen -o "$KD/$1.identity" | sed -n 's/^public key: *\(mkpub:[A-Za-z0-9_-]*\)$/\1/p'
}
PUB_P=$(pub_of p) PUB_Q=$(pub_of q)
pub_of r >/dev/null
[ ${#PUB_P} = 49 ] && [ ${#PUB_Q} = 49 ] || fail "keygen printed no public key"
# Secrets as they could appear on the wire or on a terminal: the base64 line
# of each key file, and the raw key in hex (how keys install carries it).
b64_to_hex() {
  local s
  s=$(tr '_-' '/+' <<<"$1")
  while ((${#s} % 4)); do s+="="; done
  base64 -d <<<"$s" | od -An -v -tx1 | tr -d ' \n'
}
SECRETS=()
for f in "$K" "$KO" "$KNEW" "$KA"; do
  s=$(sed -n 2p "$f")
  SECRETS+=("$s" "$(b64_to_hex "$s")")
done

# ---- (f) capture: started first, so that it sees everything ----------------
CAPTURE=0 TCPDUMP=""
PCAP=$RUN_DIR/all.pcap
if ! command -v tcpdump >/dev/null; then
  echo "note: tcpdump is not installed (scripts/setup.sh installs it): the capture and replay checks are skipped"
else
  # --immediate-mode: packets reach the file as they pass, not in blocks a
  # second later (which a stop could lose). -Z: stay this user, who owns
  # $RUN_DIR, rather than switch to one that cannot write there.
  tcpdump -i lo -n -s 0 --immediate-mode -U -Z "$(id -un)" -w "$PCAP" \
    "(udp and portrange $BASE-$LAST) or (tcp and port $PA)" 2>"$RUN_DIR/tcpdump.err" &
  TCPDUMP=$!
  PIDS+=("$TCPDUMP")
  for _ in $(seq 50); do
    grep -q "listening on" "$RUN_DIR/tcpdump.err" 2>/dev/null && break
    kill -0 "$TCPDUMP" 2>/dev/null || break
    sleep 0.1
  done
  # A marker sent to the probe port must show up in the file.
  marker="meshkv-capture-probe-$RANDOM$RANDOM"
  for _ in $(seq 30); do
    kill -0 "$TCPDUMP" 2>/dev/null || break
    printf '%s' "$marker" 2>/dev/null >"/dev/udp/127.0.0.1/$PPROBE"
    if grep -a -q "$marker" "$PCAP" 2>/dev/null; then
      CAPTURE=1
      break
    fi
    sleep 0.1
  done
  if [ $CAPTURE = 0 ]; then
    echo "note: tcpdump cannot capture on lo here ($(head -c 200 "$RUN_DIR/tcpdump.err" | tr '\n' ' ')): the capture and replay checks are skipped"
    kill "$TCPDUMP" 2>/dev/null
  fi
fi

# ---- (a) a sealed cluster converges ----------------------------------------
start_node a "$PA" --key-file "$K"
start_node b "$PB" --key-file "$K" --join "$A"
start_node c "$PC" --key-file "$K" --join "$A"
start_node u1 "$PU1"
start_node u2 "$PU2" --join "127.0.0.1:$PU1"
start_node p "$PP" --key-file "$KA" --identity "$KD/p.identity" --allow-peer "$PUB_P" --allow-peer "$PUB_Q"
start_node q "$PQ" --key-file "$KA" --identity "$KD/q.identity" --allow-peer "$PUB_P" --allow-peer "$PUB_Q" \
  --join "127.0.0.1:$PP"
start_node r "$PR" --key-file "$KA" --identity "$KD/r.identity" --join "127.0.0.1:$PP"

# sees PORT NAME [client]: the node at PORT lists NAME as alive (asked with
# $KEY unless another client is named).
sees() { "${3:-sk}" peers --node "127.0.0.1:$1" --json | grep -q "\"name\":\"$2\",\"state\":\"alive\""; }
# members_of PORT [client...]: the member names a node lists, itself left out.
members_of() {
  local port=$1
  shift
  "${@:-sk}" peers --node "127.0.0.1:$port" --json | grep -o '"name":"[^"]*"[^}]*"self":false' |
    grep -o '^"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' '
}
# counter PORT NAME: one of the datagram counters of the sealed node at PORT.
counter() {
  local v
  v=$(sk status --node "127.0.0.1:$1" --json | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2)
  echo "${v:--1}"
}
# holds PORT KEY VALUE [client]: the node returns VALUE for KEY.
holds() { [ "$("${4:-sk}" get "$2" --node "127.0.0.1:$1" 2>/dev/null)" = "$3" ]; }
# counter_reaches PORT NAME MIN
counter_reaches() { [ "$(counter "$1" "$2")" -ge "$3" ]; }

cluster_whole() { sees "$PA" b && sees "$PA" c && sees "$PB" a && sees "$PB" c && sees "$PC" a && sees "$PC" b; }
wait_for 10 "a, b and c see each other" cluster_whole
NEEDLE_K="needle-key-$RANDOM$RANDOM" NEEDLE_V="needle-value-$RANDOM$RANDOM"
FROM_B="from-b-$RANDOM$RANDOM"
sk set "$NEEDLE_K" "$NEEDLE_V" --node "$A" >/dev/null || fail "set on a"
sk set conv/b "$FROM_B" --node "$B" >/dev/null || fail "set on b"
needle_on_b_c() { holds "$PB" "$NEEDLE_K" "$NEEDLE_V" && holds "$PC" "$NEEDLE_K" "$NEEDLE_V"; }
from_b_on_a_c() { holds "$PA" conv/b "$FROM_B" && holds "$PC" conv/b "$FROM_B"; }
wait_for 10 "a's write on b and c" needle_on_b_c
wait_for 10 "b's write on a and c" from_b_on_a_c
since "(a) sealed cluster converges: ok"

# The same writes on the unsealed cluster, for the capture's control.
wait_for 10 "u2 joins u1" sees "$PU1" u2 nk
nk set "$NEEDLE_K" "$NEEDLE_V" --node "127.0.0.1:$PU1" >/dev/null || fail "set on u1"
wait_for 10 "u1's write on u2" holds "$PU2" "$NEEDLE_K" "$NEEDLE_V" nk

# ---- (b) intruders, and (d) the allowlist, observed together ----------------
unsealed0=$(counter "$PA" unsealed) unknown0=$(counter "$PA" unknown_key)
start_node x "$PX" --join "$A"
start_node y "$PY" --key-file "$KO" --join "$A"
wait_for 10 "q joins p" sees "$PP" q ak
ak set allow/from-p yes --node "127.0.0.1:$PP" >/dev/null || fail "set on p"
ak set allow/from-r yes --node "127.0.0.1:$PR" >/dev/null || fail "set on r"
wait_for 10 "p's write on q" holds "$PQ" allow/from-p yes ak
# For 4 s, every half second: nobody lets an intruder in.
for _ in $(seq 8); do
  for port in "$PA" "$PB" "$PC"; do
    mem=$(members_of "$port")
    case " $mem" in *" x "* | *" y "*) fail "an intruder became a member of the node at $port: $mem" ;; esac
  done
  for port in "$PP" "$PQ"; do
    mem=$(members_of "$port" ak)
    case " $mem" in *" r "*) fail "r, not on the allowlist, became a member of the node at $port: $mem" ;; esac
  done
  nk list --node "127.0.0.1:$PX" --json | grep -q '^{"entries":\[\],' || fail "x holds data: $(nk list --node "127.0.0.1:$PX")"
  ok list --node "127.0.0.1:$PY" --json | grep -q '^{"entries":\[\],' || fail "y holds data: $(ok list --node "127.0.0.1:$PY")"
  sleep 0.5
done
[ -z "$(members_of "$PX" nk)" ] || fail "x learned members: $(members_of "$PX" nk)"
[ -z "$(members_of "$PY" ok)" ] || fail "y learned members: $(members_of "$PY" ok)"
[ "$(counter "$PA" unsealed)" -gt "$unsealed0" ] || fail "a did not count x's unsealed datagrams"
[ "$(counter "$PA" unknown_key)" -gt "$unknown0" ] || fail "a did not count y's datagrams under another key"
since "(b) no key, another key: never members, nothing read, counted (unsealed $unsealed0 -> $(counter "$PA" unsealed), unknown_key $unknown0 -> $(counter "$PA" unknown_key)): ok"

refused=$(ak status --node "127.0.0.1:$PP" --json | grep -o '"refused_peers":[0-9]*' | cut -d: -f2)
[ "${refused:-0}" -gt 0 ] || fail "p did not count r as refused"
for port in "$PP" "$PQ"; do
  ak get allow/from-r --node "127.0.0.1:$port" >/dev/null 2>&1 && fail "r's write reached the node at $port"
done
ak get allow/from-p --node "127.0.0.1:$PR" >/dev/null 2>&1 && fail "p's write reached r"
since "(d) allowlist: r refused (refused_peers $refused), no write crossed: ok"

# ---- (c) control without the key, or with a wrong one ----------------------
# leaks FILE: FILE shows a stored key or value, or a secret.
leaks() {
  local s
  for s in "$NEEDLE_K" "$NEEDLE_V" "$FROM_B" "${SECRETS[@]}"; do
    grep -qF -- "$s" "$1" && return 0
  done
  return 1
}
refused0=$(counter "$PA" control_refused)
denials=0
for cmd in "get conv/b" "list" "status" "peers" "clock" "set conv/b overwritten" "del conv/b" \
  "join $B" "loss --drop 1" "trace t/1 v" "watch" "keys" "keys list"; do
  for who in none wrong; do
    # shellcheck disable=SC2086
    if [ $who = none ]; then
      timeout 10 "$MESHKV" $cmd --node "$A" >"$RUN_DIR/out" 2>&1
    else
      timeout 10 "$MESHKV" $cmd --node "$A" --key-file "$KO" >"$RUN_DIR/out" 2>&1
    fi
    rc=$?
    [ $rc = 3 ] || fail "'$cmd' with $who key: exit $rc, expected 3: $(head -c 300 "$RUN_DIR/out")"
    grep -q "permission denied" "$RUN_DIR/out" || fail "'$cmd' with $who key: no 'permission denied': $(head -c 300 "$RUN_DIR/out")"
    leaks "$RUN_DIR/out" && fail "'$cmd' with $who key printed a key, value or secret: $(head -c 300 "$RUN_DIR/out")"
    denials=$((denials + 1))
  done
done
for who in none wrong; do
  if [ $who = none ]; then
    timeout 10 "$MESHKV" diff "$A" "$B" >"$RUN_DIR/out" 2>&1
  else
    timeout 10 "$MESHKV" diff "$A" "$B" --key-file "$KO" >"$RUN_DIR/out" 2>&1
  fi
  rc=$?
  [ $rc = 3 ] && grep -q "permission denied" "$RUN_DIR/out" || fail "diff with $who key: exit $rc: $(head -c 300 "$RUN_DIR/out")"
  leaks "$RUN_DIR/out" && fail "diff with $who key printed a key, value or secret"
  denials=$((denials + 1))
done
# keys install with the wrong key: refused at the handshake, before the key is sent.
timeout 10 "$MESHKV" keys install "$KNEW" --node "$A" --key-file "$KO" >"$RUN_DIR/out" 2>&1
rc=$?
[ $rc = 3 ] && grep -q "permission denied" "$RUN_DIR/out" || fail "keys install with a wrong key: exit $rc: $(head -c 300 "$RUN_DIR/out")"
denials=$((denials + 1))
# Without any key it does not even connect: the request would carry the new key in clear.
before=$(counter "$PA" control_refused)
timeout 10 "$MESHKV" keys install "$KNEW" --node "$A" >"$RUN_DIR/out" 2>&1
rc=$?
[ $rc = 2 ] || fail "keys install without a key: exit $rc, expected 2: $(head -c 300 "$RUN_DIR/out")"
leaks "$RUN_DIR/out" && fail "keys install without a key printed a secret"
[ "$(counter "$PA" control_refused)" = "$before" ] || fail "keys install without a key connected to the node"
# Nothing the denied commands asked for happened, and each was counted.
holds "$PA" conv/b "$FROM_B" || fail "a denied set or del changed conv/b"
sk loss --node "$A" --json | grep -q '"drop_ppm":0,' || fail "a denied loss changed a's faults"
[ "$(counter "$PA" control_refused)" -ge $((refused0 + denials)) ] ||
  fail "control_refused went from $refused0 to $(counter "$PA" control_refused), expected +$denials"
since "(c) $denials control commands without a key or with a wrong one: exit 3, permission denied, nothing printed; keys install without a key refused locally: ok"

# ---- (f) replay of captured datagrams ---------------------------------------
# payloads_to PORT FROM_PORT...: the UDP payloads captured so far that went to
# PORT from one of FROM_PORTs and name their receiver (a uid, not 0), as
# printf %b escapes, one per line. Only what tcpdump -x prints is needed: the
# IP header (its length in the low nibble of the first byte), 8 bytes of
# UDP header (length at offset 4), then the payload.
payloads_to() {
  local port=$1 from
  shift
  from=$(printf ' or src port %s' "$@")
  cp "$PCAP" "$RUN_DIR/snap.pcap"
  tcpdump -r "$RUN_DIR/snap.pcap" -nn -x "udp and dst port $port and (${from# or })" 2>/dev/null | awk '
    function dec(h,   i, v) {
      v = 0
      for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
      return v
    }
    function flush(   off, len, p, out, i) {
      if (hex == "") return
      off = dec(substr(hex, 2, 1)) * 4
      len = dec(substr(hex, (off + 4) * 2 + 1, 4)) - 8
      p = substr(hex, (off + 8) * 2 + 1, len * 2)
      hex = ""
      # Sealed (magic "mS", version 1), receiver uid at bytes 20..27 not 0.
      if (substr(p, 1, 6) != "6d5301" || substr(p, 41, 16) == "0000000000000000") return
      out = ""
      for (i = 1; i <= length(p); i += 2) out = out "\\x" substr(p, i, 2)
      print out
    }
    /^[0-9]/ { flush(); next }
    /^[ \t]+0x[0-9a-f]+:/ { for (i = 2; i <= NF; i++) hex = hex $i }
    END { flush() }'
}
# replay PORT FILE: sends every payload of FILE to PORT, one datagram each.
replay() {
  local esc
  exec 3<>"/dev/udp/127.0.0.1/$1" || fail "cannot open a UDP socket to $1"
  while IFS= read -r esc; do
    printf '%b' "$esc" >"$RUN_DIR/pkt"
    dd if="$RUN_DIR/pkt" bs=65536 count=1 status=none >&3
  done <"$2"
  exec 3>&-
}
if [ $CAPTURE = 1 ]; then
  payloads_to "$PB" "$PA" "$PC" | tail -n 40 >"$RUN_DIR/replay.esc"
  N=$(wc -l <"$RUN_DIR/replay.esc")
  [ "$N" -ge 10 ] || fail "only $N datagrams to b in the capture"
  # Within b's lifetime: every one was seen before.
  r0=$(counter "$PB" replayed) a0=$(counter "$PB" auth_failed)
  replay "$PB" "$RUN_DIR/replay.esc"
  wait_for 5 "b counts $N replays (from $r0)" counter_reaches "$PB" replayed $((r0 + N))
  [ "$(counter "$PB" auth_failed)" = "$a0" ] || fail "replayed datagrams failed authentication: they were damaged on the way"
  since "(f) $N captured datagrams replayed to b: refused by the counter windows (replayed $r0 -> $(counter "$PB" replayed)): ok"
  # After b restarts: sealed for the process that is gone.
  # shellcheck disable=SC2154  # PID_b: set by start_node
  kill -TERM "$PID_b"
  for _ in $(seq 50); do kill -0 "$PID_b" 2>/dev/null || break; sleep 0.1; done
  kill_node b
  start_node b "$PB" --key-file "$K" --join "$A"
  wait_for 10 "the restarted b rejoins" cluster_whole
  s0=$(counter "$PB" stale_session)
  replay "$PB" "$RUN_DIR/replay.esc"
  wait_for 5 "the restarted b counts $N stale datagrams (from $s0)" counter_reaches "$PB" stale_session $((s0 + N))
  wait_for 10 "the restarted b catches up" holds "$PB" "$NEEDLE_K" "$NEEDLE_V"
  since "(f) the same datagrams replayed after b restarted: refused by receiver uid (stale_session $s0 -> $(counter "$PB" stale_session)): ok"
fi

# ---- (e) rotation under writes ----------------------------------------------
NODES=("$A" "$B" "$C")
: >"$RUN_DIR/acked"
writer() {
  local i n
  for ((i = 1; i <= 3000; i++)); do
    [ -e "$RUN_DIR/stop-writer" ] && return
    n=${NODES[i % 3]}
    # Whichever key the node takes at this moment; only exit 0 counts.
    if "$MESHKV" set "rot/$i" "rot-value-$i" --node "$n" --timeout 2000 --key-file "$K" >/dev/null 2>&1 ||
      "$MESHKV" set "rot/$i" "rot-value-$i" --node "$n" --timeout 2000 --key-file "$KNEW" >/dev/null 2>&1; then
      echo "rot/$i" >>"$RUN_DIR/acked"
    fi
  done
}
writer &
WRITER=$!
PIDS+=("$WRITER")
ALL=(--node "$A" --node "$B" --node "$C")
sleep 0.5
sk keys install "$KNEW" "${ALL[@]}" >"$RUN_DIR/out" 2>&1 || fail "keys install: $(cat "$RUN_DIR/out")"
sleep 0.5
sk keys use "$KNEW" "${ALL[@]}" >"$RUN_DIR/out" 2>&1 || fail "keys use: $(cat "$RUN_DIR/out")"
sleep 0.5
m keys remove "$K" "${ALL[@]}" --key-file "$KNEW" >"$RUN_DIR/out" 2>&1 || fail "keys remove: $(cat "$RUN_DIR/out")"
KEY=$KNEW
sleep 0.5
touch "$RUN_DIR/stop-writer"
wait "$WRITER"
acked=$(wc -l <"$RUN_DIR/acked")
[ "$acked" -ge 20 ] || fail "the writer had only $acked writes acknowledged"
for n in "$A" "$B" "$C"; do
  got=$(sk keys --node "$n" --json | grep -o '"keys":\[[^]]*\]')
  [ "$got" = "\"keys\":[{\"id\":\"$KNEW_ID\",\"primary\":true}]" ] ||
    fail "$n holds keys $got after the rotation, expected only $KNEW_ID, primary"
done
sort "$RUN_DIR/acked" >"$RUN_DIR/acked.sorted"
# on_node HOST:PORT: the rot/ keys the node holds with their right values.
on_node() {
  sk list rot/ --node "$1" --json | grep -oE '"key":"rot/[0-9]+","value":"rot-value-[0-9]+"' |
    sed -nE 's#^"key":"(rot/([0-9]+))","value":"rot-value-\2"$#\1#p' | sort
}
all_acked_on() { [ -z "$(comm -23 "$RUN_DIR/acked.sorted" <(on_node "$1"))" ]; }
# The old key, after its removal: refused for control, and for joining.
for n in "$A" "$B" "$C"; do
  m status --node "$n" --key-file "$K" >"$RUN_DIR/out" 2>&1
  rc=$?
  [ $rc = 3 ] && grep -q "permission denied" "$RUN_DIR/out" ||
    fail "the removed key still opens $n's control port: exit $rc: $(head -c 200 "$RUN_DIR/out")"
done
unknown0=$(counter "$PA" unknown_key)
start_node old "$POLD" --key-file "$K" --join "$A"
for n in "$A" "$B" "$C"; do
  wait_for 10 "every acknowledged write on $n after the rotation" all_acked_on "$n"
done
wait_for 5 "a counts the old key's datagrams" counter_reaches "$PA" unknown_key $((unknown0 + 1))
for port in "$PA" "$PB" "$PC"; do
  case " $(members_of "$port")" in *" old "*) fail "a node with the removed key became a member" ;; esac
done
cluster_whole || fail "the mesh is not whole after the rotation: a lists $(members_of "$PA")"
since "(e) rotation under writes: $acked acknowledged writes, none lost; the old key refused for control and joining: ok"

# ---- (f) what the capture holds ---------------------------------------------
if [ $CAPTURE = 1 ]; then
  kill -INT "$TCPDUMP"
  wait "$TCPDUMP" 2>/dev/null
  tcpdump -r "$PCAP" -w "$RUN_DIR/sealed.pcap" "(udp and (port $PA or port $PB or port $PC)) or (tcp and port $PA)" 2>/dev/null
  tcpdump -r "$PCAP" -w "$RUN_DIR/unsealed.pcap" "udp and (port $PU1 or port $PU2)" 2>/dev/null
  npk=$(tcpdump -r "$RUN_DIR/sealed.pcap" -nn 2>/dev/null | wc -l)
  [ "$npk" -ge 200 ] || fail "only $npk packets of the sealed cluster captured"
  # The same grep on both captures: it finds the writes in the unsealed one.
  for s in "$NEEDLE_K" "$NEEDLE_V"; do
    n=$(grep -a -c -F -- "$s" "$RUN_DIR/unsealed.pcap")
    [ "$n" -gt 0 ] || fail "the control failed: '$s' is not in the unsealed cluster's capture"
  done
  for s in "$NEEDLE_K" "$NEEDLE_V" "$FROM_B" rot-value- "${SECRETS[@]}"; do
    n=$(grep -a -c -F -- "$s" "$RUN_DIR/sealed.pcap")
    [ "$n" = 0 ] || fail "'$s' appears in clear in $n places of the sealed cluster's capture"
  done
  for s in "${SECRETS[@]}"; do
    n=$(grep -a -c -F -- "$s" "$PCAP")
    [ "$n" = 0 ] || fail "a secret appears in the capture"
  done
  since "(f) capture: $npk packets of the sealed cluster hold no key, value or secret; the unsealed cluster's hold the same writes: ok"
fi
echo "PASS ($((SECONDS - T0))s)"
