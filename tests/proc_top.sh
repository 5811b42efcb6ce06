#!/usr/bin/env bash
# meshkv top against three real nodes. --once prints one frame with every
# member in the members view and in the lag matrix, and exits 0 (3 when the
# node does not answer). On a pseudo-terminal it renders the members view,
# switches to the lag matrix and traffic views on 'l' and 't', quits on 'q'
# within a second with exit 0, and leaves the terminal as it found it (echo
# and line mode back, the alternate screen left). Against a sealed cluster
# (meshkv cluster up --key) it needs the key and works with it.
# Usage: tests/proc_top.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
BASE=$(free_base_port 6)
A="127.0.0.1:$BASE"
T0=$SECONDS
start_node a "$BASE"
start_node b $((BASE + 1)) --join "$A"
start_node c $((BASE + 2)) --join "$A"
wait_for 20 "a sees b and c alive" eval '[ "$(state_of '"$BASE"' b)" = alive ] && [ "$(state_of '"$BASE"' c)" = alive ]'
"$MESHKV" set k v --node "127.0.0.1:$((BASE + 1))" >/dev/null || fail "set on b"

# ---- --once --------------------------------------------------------------------
out=$("$MESHKV" top --once --node "$A") || fail "top --once: exit $?"
echo "$out" | head -n 8
for m in a b c; do
  [ "$(grep -cE "^$m +" <<<"$out")" = 2 ] || fail "top --once: member $m not in both the members view and the lag matrix"
done
grep -qE '^b +alive ' <<<"$out" || fail "top --once: b is not shown alive"
grep -q '^traffic ' <<<"$out" || fail "top --once: no traffic view"
"$MESHKV" top --once --node "127.0.0.1:$((BASE + 3))" --timeout 500 >/dev/null 2>&1
rc=$?
[ $rc = 3 ] || fail "top --once on nothing: exit $rc, expected 3"
echo "ok: --once prints every member; exit 3 when unreachable"

# ---- on a pty ---------------------------------------------------------------------
python3 - "$MESHKV" "$A" <<'PY' || fail "top on a pty (above)"
import os, select, subprocess, sys, termios, time
meshkv, node = sys.argv[1], sys.argv[2]
master, slave = os.openpty()
before = termios.tcgetattr(slave)
p = subprocess.Popen([meshkv, "top", "--node", node, "--interval", "200"],
                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
buf = b""
def wait_for(what, secs=10):
    global buf
    end = time.monotonic() + secs
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                buf += os.read(master, 65536)
            except OSError:
                break
        if what in buf:
            return
    p.kill()
    sys.exit("did not see %r within %s s; last output: %r" % (what, secs, buf[-600:]))
try:
    wait_for(b"\x1b[?1049h")
    wait_for(b"MEMBER ")
    for m in (b"\nb ", b"\nc "):
        wait_for(m)
    print("renders the members view")
    buf = b""
    os.write(master, b"l")
    wait_for(b"lag matrix")
    buf = b""
    os.write(master, b"t")
    wait_for(b"anti_entropy_rounds")
    print("switches to the lag matrix and traffic views")
    buf = b""
    os.write(master, b"q")
    t = time.monotonic()
    rc = p.wait(timeout=3)
    took = time.monotonic() - t
    wait_for(b"\x1b[?1049l", 2)
finally:
    if p.poll() is None:
        p.kill()
if rc != 0:
    sys.exit("exit %d after q" % rc)
if took > 1.0:
    sys.exit("took %.2f s to quit" % took)
after = termios.tcgetattr(slave)
if after[3] != before[3]:
    sys.exit("terminal modes not restored: lflag %#x, was %#x" % (after[3], before[3]))
print("q quits in %.0f ms, exit 0, terminal restored" % (took * 1000))
PY
echo "ok: the live view on a pty"

# ---- a sealed mesh (meshkv cluster up --key): top needs the key ------------------
SEALED=$RUN_DIR/sealed
trap '"$MESHKV" cluster down --dir "$SEALED" >/dev/null 2>&1; cleanup' EXIT
out=$("$MESHKV" cluster up 2 --key --dir "$SEALED" --base-port $((BASE + 4)) 2>&1) || fail "cluster up 2 --key: $out"
grep -q "^export MESHKV_KEY_FILE=$SEALED/cluster.key$" <<<"$out" || fail "up --key prints no MESHKV_KEY_FILE hint: $out"
S1="127.0.0.1:$((BASE + 4))"
"$MESHKV" top --once --node "$S1" --timeout 500 >/dev/null 2>&1
rc=$?
[ $rc = 3 ] || fail "top --once on a sealed node without the key: exit $rc, expected 3"
out=$(MESHKV_KEY_FILE=$SEALED/cluster.key "$MESHKV" top --once --node "$S1") || fail "top --once with the key: exit $?"
for m in n1 n2; do
  [ "$(grep -cE "^$m +" <<<"$out")" = 2 ] || fail "sealed top --once: $m missing"
done
"$MESHKV" cluster down --dir "$SEALED" >/dev/null || fail "cluster down of the sealed cluster"
echo "ok: top over a sealed control connection"
echo "PASS ($((SECONDS - T0)) s)"
