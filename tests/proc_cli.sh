#!/usr/bin/env bash
# The command line as a user meets it, against a real node: values that
# start with '-', values from stdin and files, `meshkv help [COMMAND]`, and
# usage errors that say "meshkv:", name the unknown word, suggest the
# likely one, print ranges as "0 to 1", and exit 2; tables cut to the
# terminal; peers with the node itself and a state filter; join that says
# which address answered; status fields that keep their type.
# Usage: tests/proc_cli.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 3)
A=127.0.0.1:$BASE B=127.0.0.1:$((BASE + 1)) SILENT=127.0.0.1:$((BASE + 2))

# expect CODE PATTERN DESCRIPTION COMMAND...: exit CODE, stdout+stderr match PATTERN.
expect() {
  local want=$1 pattern=$2 what=$3 out rc
  shift 3
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want; output: $out"
  [[ "$out" == *$pattern* ]] || fail "$what: output does not contain '$pattern': $out"
}

start_node a "$BASE"
wait_for 10 "a answers" "$MESHKV" status --node "$A"

# ---- values that start with '-' ---------------------------------------------
expect 0 "set neg" "a value starting with '-'" "$MESHKV" set neg -x --node "$A"
value_is neg "$A" "-x" || fail "neg holds -x"
expect 0 "set -k" "a key starting with '-', after --, options after it" \
  "$MESHKV" set -- -k --dash --node "$A"
[ "$("$MESHKV" get -- -k --node "$A")" = "--dash" ] || fail "-k holds --dash"
expect 0 "" "a negative number as a value" "$MESHKV" set n -5 --node "$A"
value_is n "$A" "-5" || fail "n holds -5"
expect 2 "meshkv set: unknown option '--dash'" "an unknown --word is an option error" \
  "$MESHKV" set k --dash --node "$A"
expect 2 "goes after '--'" "the error hints at --" "$MESHKV" set k --dash --node "$A"

# ---- values from stdin and files -----------------------------------------------
printf 'line one\nline two\n' | "$MESHKV" set from-stdin - --node "$A" >/dev/null || fail "set KEY - from stdin"
"$MESHKV" get from-stdin --json --node "$A" | grep -q '"value":"line one\\nline two\\n"' ||
  fail "stdin value byte for byte"
head -c 1048576 /dev/zero | tr '\0' x >"$RUN_DIR/mib"
expect 0 "set big" "a 1 MiB value from a file" "$MESHKV" set big --value-file "$RUN_DIR/mib" --node "$A"
[ "$("$MESHKV" get big --node "$A" | wc -c)" = 1048577 ] || fail "the 1 MiB value round-trips (plus newline)"
printf 'y' >>"$RUN_DIR/mib"
expect 2 "the limit is 1048576" "a value file over the limit" \
  "$MESHKV" set big --value-file "$RUN_DIR/mib" --node "$A"
expect 2 "cannot open" "a value file that does not exist" \
  "$MESHKV" set k --value-file "$RUN_DIR/none" --node "$A"

# ---- batch files -------------------------------------------------------------------
printf '# a comment\n\nb1 v1\r\nb2  two  spaces  \nb3 "quoted value"\n"b 4" '"'"'single'"'"'\nb5 it'"'"'s fine\n' \
  >"$RUN_DIR/batch"
expect 0 "set 5 keys" "a batch with comments, blank lines, CRLF and quotes" \
  "$MESHKV" set --batch "$RUN_DIR/batch" --node "$A"
value_is b1 "$A" v1 || fail "CRLF: b1 holds v1"
value_is b2 "$A" "two  spaces" || fail "b2: no leading or trailing blanks"
value_is b3 "$A" "quoted value" || fail "b3: quotes stripped as at the prompt"
value_is "b 4" "$A" single || fail "a quoted key"
value_is b5 "$A" "it's fine" || fail "an apostrophe inside a value"
"$MESHKV" get "#" --node "$A" >/dev/null 2>&1 && fail "a comment became key '#'"
printf 'ok v\nbad "unterminated\n' >"$RUN_DIR/batch2"
expect 2 "batch2:2: unterminated double quote" "a batch error names file and line" \
  "$MESHKV" set --batch "$RUN_DIR/batch2" --node "$A"
printf '# keys\r\n"b 4"\r\nb1\r\n' >"$RUN_DIR/dels"
expect 0 "deleted 2 keys" "del --batch with a quoted key and CRLF" "$MESHKV" del --batch "$RUN_DIR/dels" --node "$A"

# ---- get --json of a missing key: an answer, not an error -------------------------
out=$("$MESHKV" get missing --json --node "$A" 2>&1)
[ $? = 1 ] || fail "get --json of a missing key exits 1"
[ "$out" = '{"key":"missing","found":false}' ] || fail "get --json of a missing key: $out"
"$MESHKV" get neg --json --node "$A" | grep -q '"found":true' || fail "get --json of a key found says found"

# ---- help and usage errors --------------------------------------------------------
expect 0 "Usage:" "meshkv help" "$MESHKV" help
# The usage lines name the program, as the man page's synopsis does.
expect 0 "Usage: meshkv " "meshkv --help names meshkv" "$MESHKV" --help
expect 0 "Usage: meshkv diff " "meshkv diff --help names meshkv diff" "$MESHKV" diff --help
expect 0 "write a key" "meshkv help set" "$MESHKV" help set
expect 2 "did you mean 'set'?" "meshkv help with a typo" "$MESHKV" help sett
expect 2 "meshkv: unknown command 'gte' (did you mean 'get'?)" "an unknown command" "$MESHKV" gte color
expect 2 "did you mean '--json'?" "an unknown option" "$MESHKV" get k --jsn --node "$A"
expect 2 "not in range 0 to 1" "a range printed plainly" "$MESHKV" loss --drop 2 --node "$A"
expect 2 "meshkv set: unexpected argument 'extra'" "too many arguments" "$MESHKV" set k v extra --node "$A"
expect 2 "with a port from 1 to 65535" "port 0 is a usage error" "$MESHKV" get k --node 127.0.0.1:0
expect 2 "got 'nohost'" "an address error names what it got" "$MESHKV" get k --node nohost
expect 0 "" "a bare port is an address, as the error says" "$MESHKV" get neg --node "$BASE"
expect 0 "" "localhost:PORT too" "$MESHKV" get neg --node "localhost:$BASE"
# ---- tables that fit a terminal ----------------------------------------------
"$MESHKV" set wide "$(head -c 50000 /dev/zero | tr '\0' x)" --node "$A" >/dev/null || fail "set a 50 KB value"
"$MESHKV" set cjk "$(printf '日本語%.0s' $(seq 1 30))" --node "$A" >/dev/null || fail "set a double-width value"
longest=$("$MESHKV" list --node "$A" | awk '{ if (length($0) > m) m = length($0) } END { print m }')
[ "$longest" -lt 400 ] || fail "list pads rows to a 50 KB value when piped: a line of $longest bytes"
"$MESHKV" list --node "$A" | grep -q 'xxx…' || fail "list cuts a long value with an ellipsis"
# With COLUMNS=60, every line fits 60 terminal columns (double-width counted twice).
COLUMNS=60 "$MESHKV" list --node "$A" | python3 -c '
import sys, unicodedata
for line in sys.stdin.read().splitlines():
    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
    if cols > 60:
        sys.exit("a line of %d columns: %r" % (cols, line[:80]))
' || fail "list does not fit COLUMNS=60"
[ "$("$MESHKV" get wide --node "$A" | wc -c)" = 50001 ] || fail "get shows the whole value"
"$MESHKV" list --json --node "$A" | python3 -c '
import json, sys
entries = {e["key"]: e["value"] for e in json.load(sys.stdin)["entries"]}
sys.exit(entries["wide"] != "x" * 50000)' || fail "list --json has the whole value"

# ---- peers: the node itself, and a state filter ---------------------------------
start_node b $((BASE + 1))
wait_for 10 "b answers" "$MESHKV" status --node "$B"
expect 0 "reached $B (b)" "join reports the address it reached" "$MESHKV" join "$B" --node "$A"
expect 3 '"reached":false' "join of a silent address exits 3" "$MESHKV" join "$SILENT" --node "$A" --timeout 700 --json
expect 0 "no answer from $SILENT" "join of two addresses, one silent" "$MESHKV" join "$SILENT" "$B" --node "$A" --timeout 700
"$MESHKV" peers --json --node "$A" | grep -q '"members":\[{"name":"a","state":"alive",[^}]*"self":true' ||
  fail "peers lists the node itself first, marked self"
"$MESHKV" peers --node "$A" | grep -q '^  a (self) ' || fail "peers marks the node itself in the table"
wait_for 10 "a sees b alive" sh -c "'$MESHKV' peers --state alive --json --node '$A' | grep -q '\"name\":\"b\"'"
"$MESHKV" peers --state dead --json --node "$A" | grep -q '"members":\[\]' || fail "peers --state dead lists no one"
expect 2 "not in {alive,suspect,dead,left}" "an unknown state" "$MESHKV" peers --state gone --node "$A"
"$MESHKV" status --json --node "$A" | grep -q '"storage":{"kind":"memory"' || fail "status.storage is an object in memory"
"$MESHKV" status --json --node "$A" | grep -q '"faults":{[^}]*"active":false' || fail "status.faults is an object when none is set"
"$MESHKV" status --json --node "$A" | grep -q '"self":true' && fail "status lists the node itself among its members"
sleep 5.5
grep -q "join: no answer from $SILENT in 5 s" "$RUN_DIR/a.log" || fail "a does not log the silent join address"

echo "proc_cli: ok"
