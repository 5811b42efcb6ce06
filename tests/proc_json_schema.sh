#!/usr/bin/env bash
# Every subcommand's --json has exactly the fields, of exactly the types,
# that the man page's JSON OUTPUT section lists (tests/json_schema.py reads
# the tables from man/meshkv.1), so the docs cannot drift from the binary:
# each command runs against real nodes (a memory mesh a, b, d and a sealed
# node c with a data directory), in the cases that change its shape (found
# and missing keys, --wait, --read, --batch, values that are not UTF-8,
# refusals), and every line it prints is checked. Also: every example in the
# section fits its table, and every subcommand with --json has a table.
# Usage: tests/proc_json_schema.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAN=$ROOT/man/meshkv.1
CHECK=(python3 "$ROOT/tests/json_schema.py" "$MAN")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 5)
A=127.0.0.1:$BASE B=127.0.0.1:$((BASE + 1)) C=127.0.0.1:$((BASE + 2))
NOBODY=127.0.0.1:$((BASE + 4))
OUT=$RUN_DIR/out
mkdir -p "$OUT"

"${CHECK[@]}" examples || fail "an example in the man page's JSON OUTPUT does not fit its table"

# Every subcommand whose --help offers --json has a table (del shares set's,
# decr incr's).
"${CHECK[@]}" names >"$RUN_DIR/names"
for sub in $("$MESHKV" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
  "$MESHKV" "$sub" --help 2>/dev/null | grep -q -- '--json' || continue
  [ "$sub" = del ] && continue
  [ "$sub" = decr ] && continue  # decr shares incr's
  [ "$sub" = srem ] && continue  # srem shares sadd's
  grep -q -E "^$sub( |\$)" "$RUN_DIR/names" || fail "meshkv $sub has --json but no table in the man page's JSON OUTPUT"
done

# json SCHEMA RC COMMAND...: run COMMAND --json, want exit status RC, and keep
# its output to check against SCHEMA's table.
json() {
  local schema=$1 want=$2 rc
  shift 2
  "$MESHKV" "$@" --json >"$RUN_DIR/last" 2>"$RUN_DIR/last.err"
  rc=$?
  [ "$rc" = "$want" ] || fail "meshkv $* --json: exit $rc, want $want: $(cat "$RUN_DIR/last" "$RUN_DIR/last.err")"
  [ -s "$RUN_DIR/last.err" ] && fail "meshkv $* --json wrote to stderr: $(cat "$RUN_DIR/last.err")"
  cat "$RUN_DIR/last" >>"$OUT/$schema"
}

start_node a "$BASE" --probe-interval 100
start_node b $((BASE + 1)) --join "$A" --probe-interval 100
start_node d $((BASE + 3)) --join "$A" --probe-interval 100
"$MESHKV" keygen --cluster --out "$RUN_DIR/ck" >/dev/null || fail "keygen"
"$MESHKV" keygen --cluster --out "$RUN_DIR/ck2" >/dev/null || fail "keygen"
start_node c $((BASE + 2)) --key-file "$RUN_DIR/ck" --data-dir "$RUN_DIR/c-data"
wait_for 10 "a sees b alive" member_is "$BASE" b alive
wait_for 10 "a sees d alive" member_is "$BASE" d alive
wait_for 10 "c answers" "$MESHKV" status --node "$C" --key-file "$RUN_DIR/ck"

"$MESHKV" watch --node "$A" --json >"$OUT/watch" 2>"$RUN_DIR/watch.err" &
WATCH=$!
PIDS+=("$WATCH")
sleep 0.3

printf 'a\xff\xfe' >"$RUN_DIR/bin"
json set 0 set k1 v1 --node "$A"
json set 0 set k2 v2 --wait all --node "$A"
json set 0 set bin --value-file "$RUN_DIR/bin" --node "$A"
printf 'b1 one\nb2 two\n' >"$RUN_DIR/batch"
json "set batch" 0 set --batch "$RUN_DIR/batch" --node "$A"
printf 'b1\nnot-there\n' >"$RUN_DIR/dels"
json "set batch" 0 del --batch "$RUN_DIR/dels" --node "$A"
json set 0 del k2 --node "$A"
json set 0 set k3 v3 --node "$A"
json set 0 del k3 --wait quorum --node "$A"
json get 0 get k1 --node "$A"
json get 0 get bin --node "$A"
json get 1 get k2 --node "$A"
json get 0 get k1 --read quorum --node "$A"
json list 0 list --node "$A"
json list 0 list --read quorum --node "$A"
json set 0 set t1 v --ttl 1h --node "$A"
json expire 0 expire t1 10m --node "$A"
json ttl 0 ttl t1 --node "$A"
json ttl 0 ttl k1 --node "$A"
json incr 0 incr hits 3 --node "$A"
json incr 0 decr hits --wait all --node "$A"
json error 2 incr k1 --node "$A"
json get 0 get hits --node "$A"
json list 0 list h --node "$A"
json sadd 0 sadd team alice "$(printf '\xff\xfe')" --node "$A"
json sadd 0 srem team alice --wait all --node "$A"
json error 2 sadd k1 x --node "$A"
json smembers 0 smembers team --node "$A"
json error 1 smembers nope --node "$A"
json sismember 0 sismember team alice --node "$A"
json get 0 get team --node "$A"
json list 0 list te --node "$A"
json get 0 get t1 --node "$A"
json list 0 list t --node "$A"
json status 0 status --node "$A"
json status 0 status --node "$C" --key-file "$RUN_DIR/ck"
json peers 0 peers --node "$A"
json peers 0 peers --node "$C" --key-file "$RUN_DIR/ck"
json clock 0 clock --node "$A"
json clock 0 clock --node "$A" --node "$B"
json join 0 join "$B" --node "$A"
json loss 0 loss --drop 0.5 --node "$A"
json loss 0 loss --clear --node "$A"
json diff 0 diff "$A" "$B"
json trace 0 trace t1 v1 --node "$A"
json keys 0 keys --node "$C" --key-file "$RUN_DIR/ck"
json keys 0 keys install "$RUN_DIR/ck2" --node "$C" --key-file "$RUN_DIR/ck"
json keys 0 keys remove "$RUN_DIR/ck2" --node "$C" --key-file "$RUN_DIR/ck"
json quarantine 0 quarantine --node "$A"
json "quarantine drop" 0 quarantine drop --all --node "$A"
json sim 0 sim --nodes 3 --writes 5 --seed 3
json error 1 forget nobody --node "$A"
json error 3 status --node "$NOBODY" --timeout 300
json error 2 keys --node "$A"

# Entries only one node holds, and one they hold in different versions:
# both drop every datagram they send while the writes are made.
"$MESHKV" loss --drop 1 --node "$A" >/dev/null || fail "loss a"
"$MESHKV" loss --drop 1 --node "$B" >/dev/null || fail "loss b"
"$MESHKV" set only-a 1 --node "$A" >/dev/null || fail "set only-a"
"$MESHKV" set only-b 2 --node "$B" >/dev/null || fail "set only-b"
"$MESHKV" set both old --node "$A" >/dev/null || fail "set both"
"$MESHKV" set both new --node "$B" >/dev/null || fail "set both"
json diff 1 diff "$A" "$B"
"$MESHKV" loss --clear --node "$A" >/dev/null || fail "clear a"
"$MESHKV" loss --clear --node "$B" >/dev/null || fail "clear b"

# forget: d ends without leaving, and is forgotten once suspected.
kill_node d
d_gone() { case $(state_of "$BASE" d) in suspect | dead) return 0 ;; esac; return 1; }
wait_for 20 "a suspects d" d_gone
json forget 0 forget d --node "$A"

sleep 0.3
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null
[ -s "$RUN_DIR/watch.err" ] && fail "watch --json wrote to stderr: $(cat "$RUN_DIR/watch.err")"
grep -q '"value":null' "$OUT/watch" || fail "watch --json saw no delete"
grep -q '"value_base64"' "$OUT/watch" || fail "watch --json saw no value that is not UTF-8"

"${CHECK[@]}" check-dir "$OUT" || fail "meshkv's --json output does not match the man page's tables (JSON OUTPUT)"
checked=$(cat "$OUT"/* | wc -l)
# A table no command here printed is reported, so the gap is visible.
while read -r name; do
  [ -e "$OUT/$name" ] || echo "proc_json_schema: table '$name' not exercised here"
done <"$RUN_DIR/names"
echo "proc_json_schema: ok ($checked JSON lines of $(find "$OUT" -type f | wc -l) tables match the man page)"
