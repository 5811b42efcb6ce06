#!/usr/bin/env bash
# Every write command says what happened, against a real node: del of a key
# the node holds no value for is "not found" (exit 1) and writes nothing,
# del --force writes the tombstone anyway, del --batch counts what it did not
# find; --json reports outcomes and refusals as JSON; values and requests over
# the limits are refused with exit 2 and a message that names the limit, never
# reported as an unreachable node, and a raw frame over the node's limit gets
# an answer rather than a reset connection.
# Usage: tests/proc_writes.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 1)
A=127.0.0.1:$BASE
m() { "$MESHKV" "$@" --node "$A"; }
# run CODE DESCRIPTION COMMAND...: runs it, stdout in $OUT, stderr in $ERR.
run() {
  local want=$1 what=$2
  shift 2
  "$@" >"$RUN_DIR/out" 2>"$RUN_DIR/err"
  local rc=$?
  OUT=$(head -c 2000 "$RUN_DIR/out")
  ERR=$(head -c 2000 "$RUN_DIR/err")
  [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want; stdout: $OUT; stderr: $ERR"
}
# field NAME: a top-level number of the node's status.
field() {
  m status --json | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"
}
# counts: "writes tombstones keys" as status shows them.
counts() { echo "$(field writes) $(field tombstones) $(field keys)"; }
# seq: the highest seq of the node's version vector, as status shows it.
seq() { m status --json | python3 -c "import json, sys; print(max([e['seq'] for e in json.load(sys.stdin)['vv']] + [0]))"; }

start_node a "$BASE"
wait_for 10 "a answers" m status

# ---- del of a key with no value here ------------------------------------
run 0 "set" m set k v
[[ "$OUT" == "set k  hlc "*"  dot "*":1" ]] || fail "set says what it wrote: $OUT"
before=$(counts)
[ "$before" = "1 0 1" ] || fail "status after one set: $before"

run 1 "del of a never-written key" m del ghost
[ "$ERR" = "not found: ghost (nothing deleted; --force writes a tombstone anyway)" ] ||
  fail "del of a missing key: stderr '$ERR'"
[ -z "$OUT" ] || fail "del of a missing key printed on stdout: $OUT"
[ "$(counts)" = "$before" ] || fail "del of a missing key wrote something: $(counts), was $before"
[ "$(seq)" = 1 ] || fail "del of a missing key made a dot: seq $(seq)"

run 1 "del --json of a never-written key" m del ghost --json
python3 -c "
import json, sys
e = json.loads(sys.argv[1])
assert e == {'error': 'not found: ghost (nothing deleted; --force writes a tombstone anyway)', 'code': 1}, e
" "$OUT" || fail "del --json of a missing key: stdout '$OUT'"
[ -z "$ERR" ] || fail "del --json printed on stderr: $ERR"
echo "del of a missing key: exit 1, nothing written: ok"

run 0 "del of a present key" m del k
[[ "$OUT" == "deleted k  hlc "*"  dot "*":2" ]] || fail "del says what it wrote: $OUT"
[ "$(counts)" = "2 1 0" ] || fail "status after del: $(counts)"
run 1 "del of a key already deleted" m del k
[[ "$ERR" == "not found: k "* ]] || fail "del of a tombstone: $ERR"
[ "$(counts)" = "2 1 0" ] || fail "del of a tombstone wrote something: $(counts)"
echo "del of a present key, then of its tombstone: ok"

run 0 "del --force of a never-written key" m del --force ghost
[[ "$OUT" == "deleted ghost  hlc "* ]] || fail "del --force: $OUT"
[ "$(counts)" = "3 2 0" ] || fail "del --force wrote no tombstone: $(counts)"
run 0 "del --force over a tombstone" m del k --force --json
python3 -c "
import json, sys
e = json.loads(sys.argv[1])
assert e['key'] == 'k' and e['seq'] == 4 and e['hlc'] and e['origin'], e
" "$OUT" || fail "del --json: $OUT"
run 0 "set --json" m set k2 v2 --json
python3 -c "
import json, sys
e = json.loads(sys.argv[1])
assert e['key'] == 'k2' and e['seq'] == 5 and e['hlc'] and e['origin'], e
" "$OUT" || fail "set --json: $OUT"
echo "del --force writes a tombstone; set/del --json report hlc, origin, seq: ok"

# ---- del --batch ---------------------------------------------------------
printf 'k2\nnope1\n\nnope2\n' >"$RUN_DIR/dels"
before=$(counts)
run 0 "del --batch with keys not found" m del --batch "$RUN_DIR/dels"
[ "$OUT" = "deleted 1 keys, 2 not found (nothing written for those; --force writes tombstones)" ] ||
  fail "del --batch: $OUT"
[ "$(counts)" = "6 3 0" ] || fail "del --batch wrote for keys not found: $(counts), was $before"
run 0 "del --batch --json" m del --batch "$RUN_DIR/dels" --json
[ "$OUT" = '{"written":0,"not_found":3}' ] || fail "del --batch --json: $OUT"
run 0 "del --batch --force" m del --batch - --force <"$RUN_DIR/dels"
[ "$OUT" = "deleted 3 keys" ] || fail "del --batch --force: $OUT"
[ "$(counts)" = "9 5 0" ] || fail "del --batch --force: $(counts)"
echo "del --batch counts keys not found and writes nothing for them: ok"

# ---- values and requests over the limits ---------------------------------
before=$(counts)
{ printf 'fine ok\nbig '; head -c 2000000 /dev/zero | tr '\0' a; echo; } >"$RUN_DIR/big2m"
run 2 "a 2 MB value in set --batch" m set --batch "$RUN_DIR/big2m"
[ "$ERR" = "$RUN_DIR/big2m:2: value is 2000000 bytes; the limit is 1048576 (1 MiB) (stopped here; 0 keys written before this line)" ] ||
  fail "2 MB value: $ERR"
run 2 "a 2 MB value in set --batch --json" m set --batch "$RUN_DIR/big2m" --json
python3 -c "
import json, sys
e = json.loads(sys.argv[1])
assert e['code'] == 2 and 'the limit is 1048576 (1 MiB)' in e['error'], e
" "$OUT" || fail "2 MB value with --json: stdout '$OUT', stderr '$ERR'"
{ printf 'big '; head -c 67108864 /dev/zero | tr '\0' a; echo; } >"$RUN_DIR/big64m"
run 2 "a 64 MiB value in set --batch" m set --batch "$RUN_DIR/big64m"
[ "$ERR" = "$RUN_DIR/big64m:1: value is 67108864 bytes; the limit is 1048576 (1 MiB) (stopped here; 0 keys written before this line)" ] ||
  fail "64 MiB value: $ERR"
rm -f "$RUN_DIR/big64m"
[ "$(counts)" = "$before" ] || fail "a refused batch wrote something: $(counts), was $before"
# Many values each under the limit but together over a frame: sent in
# several frames, all written.
python3 -c "
import sys
v = 'x' * 1000000
with open(sys.argv[1], 'w') as f:
    for i in range(80):
        f.write('many/%d %s\n' % (i, v))
" "$RUN_DIR/many"
run 0 "80 values of 1 MB in one batch" m set --batch "$RUN_DIR/many" --timeout 20000
[ "$OUT" = "set 80 keys" ] || fail "80 MB batch: $OUT"
rm -f "$RUN_DIR/many"
echo "values over the limit: exit 2 with the limit named; a batch over a frame is split: ok"

# A raw client sends a frame over the node's 64 MiB limit: the node answers
# with the limit, and stays up.
python3 - "$BASE" >"$RUN_DIR/raw" 2>&1 <<'EOF' || fail "raw oversized frame: $(cat "$RUN_DIR/raw")"
import socket, struct, sys
n = 64 * 1024 * 1024 + 1
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(struct.pack("<I", n))
chunk = b"\0" * (1 << 20)
left = n
while left:
    left -= s.send(chunk[:min(left, len(chunk))])
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
want = b"request too large: 67108865 bytes, the limit is 67108864 (64 MiB)"
if want not in got:
    sys.exit("no refusal in the answer: %r" % got[:300])
print("answered: %d bytes" % len(got))
EOF
run 0 "the node answers after an oversized frame" m status
echo "a frame over the node's limit is answered, not reset: ok"
