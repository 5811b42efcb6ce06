#!/usr/bin/env bash
# The node's log formats. --log-format json: every line a node writes to
# stderr (its start banner, its log at debug level while it joins, takes
# writes and leaves, and a start-up error) is one JSON object with time,
# level, event, message and node. Text: a timestamp, the level, the message,
# and no colour escape when stderr is not a terminal; under journald
# ($JOURNAL_STREAM naming stderr's device and inode) no timestamp but a
# "<N>" syslog priority, as journald reads it, and still no colour.
# Usage: tests/proc_logs.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
BASE=$(free_base_port 4)
A="127.0.0.1:$BASE"
T0=$SECONDS

# json_lines FILE: every line parses as a JSON object with the five fields.
json_lines() {
  python3 - "$1" <<'PY'
import json, sys
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        sys.exit(f"line {i} is not JSON ({e}): {line!r}")
    if not isinstance(o, dict):
        sys.exit(f"line {i} is not an object: {line!r}")
    for f in ("time", "level", "event", "message", "node"):
        if not isinstance(o.get(f), str):
            sys.exit(f"line {i} has no string {f!r}: {line!r}")
    if o["level"] not in ("debug", "info", "warn", "error"):
        sys.exit(f"line {i}: level {o['level']!r}")
    n += 1
if n == 0:
    sys.exit("no lines")
print(f"{n} lines, each a JSON object with time, level, event, message and node")
PY
}

# ---- json ------------------------------------------------------------------------
start_node a "$BASE" --log-format json --log-level debug
start_node b $((BASE + 1)) --join "$A" --log-format json --log-level debug
wait_for 20 "a sees b alive" member_is "$BASE" b alive
"$MESHKV" set "$(printf 'bad\377key\001')" v --node "$A" >/dev/null || fail "set on a"
"$MESHKV" set k v --node "$A" >/dev/null || fail "set on a"
wait_for 10 "b gets k" value_is k "127.0.0.1:$((BASE + 1))" v
kill_node b TERM
grep -q '"event":"start"' "$RUN_DIR/b.log" || fail "b's banner is not in its JSON log"
grep -q 'leaving the mesh' "$RUN_DIR/b.log" || fail "b's leave is not in its JSON log"
out=$(json_lines "$RUN_DIR/b.log") || fail "b's log (stdout and stderr): $out"
echo "ok: b: $out"
# A start-up error (a's port is taken) is JSON too.
"$MESHKV" node --id c --listen "$A" --log-format json </dev/null >"$RUN_DIR/c.log" 2>&1 && fail "c started on a's port"
out=$(json_lines "$RUN_DIR/c.log") || fail "c's start-up error: $out"
grep -q '"level":"error"' "$RUN_DIR/c.log" || fail "c's start-up error is not level error"
echo "ok: a start-up error is one JSON line"
kill_node a TERM
out=$(json_lines "$RUN_DIR/a.log") || fail "a's log: $out"
echo "ok: a: $out"

# ---- text --------------------------------------------------------------------------
start_node t $((BASE + 2))
wait_for 10 "t answers" "$MESHKV" status --node "127.0.0.1:$((BASE + 2))"
"$MESHKV" set k v --node "127.0.0.1:$((BASE + 2))" >/dev/null || fail "set on t"
kill_node t TERM
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (INFO |WARN ) ' "$RUN_DIR/t.log" || fail "text log lines lack a timestamp"
grep -q $'\033' "$RUN_DIR/t.log" && fail "colour escapes in a log that is no terminal"
echo "ok: text: timestamps, no colour"

# ---- text under journald -------------------------------------------------------------
: >"$RUN_DIR/j.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$RUN_DIR/j.log") start_node j $((BASE + 3))
wait_for 10 "j answers" "$MESHKV" status --node "127.0.0.1:$((BASE + 3))"
"$MESHKV" set k v --node "127.0.0.1:$((BASE + 3))" >/dev/null || fail "set on j"
kill_node j TERM
grep -qE '^<4>WARN  clock: ' "$RUN_DIR/j.log" || fail "journald: no '<4>WARN  clock: ...' line"
grep -qE '^<6>INFO  .*leaving the mesh' "$RUN_DIR/j.log" || fail "journald: no '<6>INFO  ...leaving' line"
grep -qE '^<[0-9]>[0-9]{4}-' "$RUN_DIR/j.log" && fail "journald: a timestamp journald would duplicate"
grep -q $'\033' "$RUN_DIR/j.log" && fail "journald: colour escapes"
echo "ok: journald: priorities, no timestamps, no colour"
echo "PASS ($((SECONDS - T0)) s)"
