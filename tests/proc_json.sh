#!/usr/bin/env bash
# --json is always valid JSON, whatever the bytes of a value: random byte
# strings (NUL, control characters, stray UTF-8 bytes, valid multi-byte
# text) go in through `set --value-file`, and every line of `get --json`,
# `list --json` and `watch --json` must parse with Python's json module and
# give the bytes back exactly: as "value" when they are UTF-8 text, as
# "value_base64" when they are not. Seeded: MESHKV_JSON_SEED=N replays one.
# Usage: tests/proc_json.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 1)
A=127.0.0.1:$BASE
SEED=${MESHKV_JSON_SEED:-$RANDOM}
COUNT=150

start_node a "$BASE"
wait_for 10 "a answers" "$MESHKV" status --node "$A"

"$MESHKV" watch --node "$A" --json --prefix j/ >"$RUN_DIR/watch" 2>"$RUN_DIR/watch.err" &
WATCH=$!
PIDS+=("$WATCH")
sleep 0.5

# The values, one file each, and their hex for the checker.
python3 - "$RUN_DIR" "$SEED" "$COUNT" <<'EOF' || fail "cannot generate values"
import os, random, sys
run, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
pieces = [b"\x00", b"\x01", b"\x1f", b"\x7f", b"\x80", b"\xbf", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
          b"\xff", b"\xfe", "é".encode(), "✓".encode(), "日本".encode(), "🚀".encode(), b'"', b"\\", b"\n", b"abc"]
with open(os.path.join(run, "expected"), "w") as out:
    for i in range(count):
        if i % 3 == 0:
            v = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        else:
            v = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12)))
        with open(os.path.join(run, f"v{i}"), "wb") as f:
            f.write(v)
        out.write(f"j/{i} {v.hex()}\n")
EOF
for i in $(seq 0 $((COUNT - 1))); do
  "$MESHKV" set "j/$i" --value-file "$RUN_DIR/v$i" --node "$A" >/dev/null || fail "set j/$i (seed $SEED)"
  "$MESHKV" get "j/$i" --json --node "$A" >"$RUN_DIR/get.$i" || fail "get j/$i (seed $SEED)"
done
"$MESHKV" list j/ --json --node "$A" >"$RUN_DIR/list" || fail "list (seed $SEED)"
sleep 0.5
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null

python3 - "$RUN_DIR" "$COUNT" <<'EOF' || fail "JSON check failed (seed $SEED; MESHKV_JSON_SEED=$SEED replays it)"
import base64, json, os, sys
run, count = sys.argv[1], int(sys.argv[2])
want = {}
for line in open(os.path.join(run, "expected")):
    k, _, h = line.rstrip("\n").partition(" ")
    want[k] = bytes.fromhex(h)

def value_of(obj, where):
    if "value" in obj:
        assert "value_base64" not in obj, where
        return obj["value"].encode("utf-8")
    return base64.b64decode(obj["value_base64"], validate=True)

def check(obj, where):
    got = value_of(obj, where)
    assert got == want[obj["key"]], f"{where}: {obj['key']}: {got!r} != {want[obj['key']]!r}"
    text = True
    try:
        want[obj["key"]].decode("utf-8")
    except UnicodeDecodeError:
        text = False
    assert ("value" in obj) == text, f"{where}: {obj['key']}: text values as value, others as value_base64"

for i in range(count):
    raw = open(os.path.join(run, f"get.{i}"), "rb").read()
    check(json.loads(raw.decode("utf-8")), f"get j/{i}")
raw = open(os.path.join(run, "list"), "rb").read().decode("utf-8")
rows = json.loads(raw)
rows = rows["entries"] if isinstance(rows, dict) else rows
assert len(rows) == count, f"list: {len(rows)} rows"
for r in rows:
    check(r, "list")
seen = 0
for line in open(os.path.join(run, "watch"), "rb").read().decode("utf-8").splitlines():
    obj = json.loads(line)
    if obj.get("key", "").startswith("j/"):
        check(obj, "watch")
        seen += 1
assert seen >= count, f"watch: {seen} changes of {count}"
print(f"proc_json: {count} random values through get, list and watch --json all parse and round-trip")
EOF
echo "proc_json: ok (seed $SEED)"
