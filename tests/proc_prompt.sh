#!/usr/bin/env bash
# The prompt of `meshkv node` driven through a real pseudo-terminal, as a
# person (or tmux) would: a 1 MiB paste, a paste over the limit, UTF-8, Ctrl-C
# in the middle of a line, Ctrl-R, the command niceties (case, aliases, help,
# suggestions, log level, forget's refusals), Ctrl-D, the history file across restarts and
# --no-history. Values are checked byte for byte from another process
# (`meshkv get`), and a second, headless node checks that the prompt's node
# never stopped answering the mesh.
# Usage: tests/proc_prompt.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"

BASE=$(free_base_port 2)
P=$BASE
B=$((BASE + 1))
HOME_DIR=$RUN_DIR/home
mkdir -p "$HOME_DIR"

start_node b "$B" --join "127.0.0.1:$P"

cat >"$RUN_DIR/drive.py" <<'EOF'
import fcntl, os, pty, re, select, signal, struct, subprocess, sys, tempfile, termios, time

MESHKV, P, B, HOME, RUN = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
NODE = "127.0.0.1:" + P
PROMPT = b"meshkv p> "
END = time.monotonic() + 55  # the whole script, whatever happens


class Failed(Exception):
    pass


def left(secs):
    return max(0.0, min(secs, END - time.monotonic()))


ACTIVE = []  # the prompt being driven: read while waiting, as a terminal would


def meshkv(*args, node=NODE):
    """Runs a client; the prompt's output is read meanwhile, so that the node
    never waits on a full terminal while the client waits on the node."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([MESHKV, *args, "--node", node], stdout=out,
                                stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while proc.poll() is None:
            if time.monotonic() > end:
                proc.kill()
                proc.wait()
                raise Failed("meshkv %s did not finish within 10 s" % " ".join(args))
            if ACTIVE:
                ACTIVE[0].pump(0.01)
            else:
                time.sleep(0.01)
        out.seek(0)
        return proc.returncode, out.read()


class Prompt:
    """One `meshkv node` on a pseudo-terminal of 24 rows and 80 columns."""

    def __init__(self, name, *extra, **more_env):
        env = dict(os.environ, HOME=HOME, LANG="C.UTF-8", TERM="xterm")
        env.pop("LC_ALL", None)
        env.pop("MESHKV_HISTORY", None)
        env.update(more_env)
        argv = [MESHKV, "node", "--id", "p", "--listen", NODE, *extra]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(MESHKV, argv, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.set_blocking(self.fd, False)  # a stuck node must not hang the test
        self.out = bytearray()
        self.log = open(os.path.join(RUN, name + ".log"), "wb", buffering=0)
        self.status = None
        ACTIVE[:] = [self]

    def pump(self, timeout):
        """Reads what the node printed, waiting at most `timeout` seconds."""
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return
        try:
            data = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.reap(5)
            raise Failed("the node's terminal closed: " + self.why())
        self.out += data
        self.log.write(data)

    def send(self, data, secs=20):
        """Writes `data` as typed or pasted, reading the echo meanwhile."""
        end = time.monotonic() + left(secs)
        while data:
            if time.monotonic() > end:
                raise Failed("could not write to the prompt within %ss: %s" % (secs, self.why()))
            r, w, _ = select.select([self.fd], [self.fd], [], 0.5)
            if w:
                try:
                    data = data[os.write(self.fd, data[:65536]):]
                except BlockingIOError:
                    pass
            if r:
                self.pump(0)

    def expect(self, what, since, secs=10):
        """Waits until `what` appears in the output after offset `since`."""
        end = time.monotonic() + left(secs)
        while self.out.find(what, since) < 0:
            if time.monotonic() > end:
                tail = bytes(self.out[since:][-400:])
                raise Failed("no %r within %ss; got: %r" % (what, secs, tail))
            self.pump(0.05)
        return self.out.find(what, since) + len(what)

    def command(self, line, secs=10):
        """Types `line` and Enter; returns what was printed before the next prompt."""
        mark = len(self.out)
        self.send(line + b"\r")
        echo = self.expect(b"\n", mark, secs)
        return bytes(self.out[echo:self.expect(PROMPT, echo, secs) - len(PROMPT)])

    def reap(self, secs):
        """Waits for the node to exit, reading what it prints meanwhile."""
        end = time.monotonic() + left(secs)
        while self.status is None and time.monotonic() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = st
                break
            r, _, _ = select.select([self.fd], [], [], 0.05)
            try:
                data = os.read(self.fd, 1 << 20) if r else b""
            except OSError:
                data = b""
            if r and not data:
                time.sleep(0.05)  # the terminal closed; the process is exiting
            self.out += data
            self.log.write(data)
        return self.status

    def why(self):
        if self.status is None:
            return "still running"
        if os.WIFSIGNALED(self.status):
            return "killed by signal %d" % os.WTERMSIG(self.status)
        return "exited %d" % os.WEXITSTATUS(self.status)

    def alive(self):
        return os.waitpid(self.pid, os.WNOHANG)[0] == 0

    def kill(self):
        ACTIVE[:] = []
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            self.reap(5)


def wait_value(key, want, secs, p):
    """Polls `meshkv get KEY` until it prints `want` (bytes, or None: missing)."""
    end = time.monotonic() + left(secs)
    while True:
        rc, out = meshkv("get", key)
        if (want is None and rc == 1) or (want is not None and rc == 0 and out == want + b"\n"):
            return
        if time.monotonic() > end:
            got = "missing" if rc == 1 else "exit %d, %d bytes %r" % (rc, len(out), out[:60])
            raise Failed("get %s: %s after %ss (node %s)" % (key, got, secs, p.why()))
        p.pump(0.05)


def cpu_seconds(pid):
    """User and system CPU time of process `pid` so far."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def columns(line):
    """Terminal columns of one line of output, escapes removed."""
    text = re.sub(rb"\x1b\[[0-9;]*[A-Za-z]", b"", line).decode("utf-8", "replace")
    return len(text.rstrip("\r"))


def session_one():
    p = Prompt("prompt1")
    try:
        p.expect(PROMPT, 0)
        # The terminal stays blocking: otherwise output is lost whenever the
        # terminal lags (EAGAIN), and the shell gets it back non-blocking.
        flags = open("/proc/%d/fdinfo/1" % p.pid).read().split("flags:")[1].split()[0]
        if int(flags, 8) & os.O_NONBLOCK:
            raise Failed("the prompt's terminal was made non-blocking (flags %s)" % flags)
        uni = "héllo wörld ✓ 日本語 🚀".encode()
        p.command(b'set uni "' + uni + b'"')
        wait_value("uni", uni, 5, p)
        print("ok: a UTF-8 value round-trips")

        big = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:" * 20000)[:1 << 20]
        mark = len(p.out)
        cpu0 = cpu_seconds(p.pid)
        t0 = time.monotonic()
        p.send(b"set big " + big + b"\r", secs=30)
        # The next prompt is drawn once the set has been acknowledged (or
        # again above a log line: then the value is not there yet).
        pos = mark
        for _ in range(20):
            pos = p.expect(PROMPT, pos, 30)
            t1 = time.monotonic()
            cpu = cpu_seconds(p.pid) - cpu0
            if meshkv("get", "big") == (0, big + b"\n"):
                break
        wait_value("big", big, 5, p)
        print("ok: a 1 MiB paste is stored, %.2f s from its first byte to the next prompt; "
              "the node used %.2f s of CPU for it" % (t1 - t0, cpu))
        if t1 - t0 > 15:
            raise Failed("the 1 MiB paste took %.1f s" % (t1 - t0))

        mark = len(p.out)
        p.send(b"set toolong " + big + big[:70000] + b"\r", secs=30)
        p.expect(PROMPT, p.expect(b"too long", mark, 30))
        rc, _ = meshkv("get", "toolong")
        if rc != 1 or not p.alive():
            raise Failed("a line over the limit: get exit %d, node %s" % (rc, p.why()))
        print("ok: a paste over the limit is refused and the node lives on")

        mark = len(p.out)
        p.send(b"set cancelled yes")
        p.expect(b"yes", mark)
        p.send(b"\x03")
        p.expect(PROMPT, p.expect(b"^C", mark))
        p.command(b"set after-cancel 1")
        wait_value("after-cancel", b"1", 5, p)
        rc, _ = meshkv("get", "cancelled")
        if rc != 1:
            raise Failed("the line cancelled with Ctrl-C was run")
        if b"leaving the mesh" in p.out:
            raise Failed("Ctrl-C made the node leave")
        print("ok: Ctrl-C cancels the line being typed, the node stays")

        p.command(b"set r1 abc")
        wait_value("r1", b"abc", 5, p)
        out = p.command(b"del r1")
        if b"deleted" not in out or b"not found" in out:
            raise Failed("del r1: %r" % out)
        wait_value("r1", None, 5, p)
        out = p.command(b"del r1")
        if b"not found: r1 (nothing deleted; --force writes a tombstone anyway)" not in out:
            raise Failed("del of a deleted key: %r" % out)
        out = p.command(b"del --force r1")
        if b"deleted" not in out or b"not found" in out:
            raise Failed("del --force r1: %r" % out)
        print("ok: del says deleted or not found; del --force writes the tombstone anyway")

        out = p.command(b"sadd team alice bob alice")
        if out.strip() != b"2":
            raise Failed("sadd team alice bob alice: %r" % out)
        out = p.command(b"srem team bob zed")
        if out.strip() != b"1":
            raise Failed("srem team bob zed: %r" % out)
        out = p.command(b"smembers team")
        if out.strip() != b"alice":
            raise Failed("smembers team: %r" % out)
        out = p.command(b"sismember team bob")
        if out.strip() != b"false":
            raise Failed("sismember team bob: %r" % out)
        out = p.command(b"incr team")
        if b"is a set, not a counter" not in out:
            raise Failed("incr of a set: %r" % out)
        print("ok: sadd, srem, smembers and sismember at the prompt")
        mark = len(p.out)
        p.send(b"set r1\x12")
        p.pump(0.3)
        p.send(b"\r")
        wait_value("r1", b"abc", 5, p)
        p.expect(PROMPT, mark)
        if b"bck:" in p.out[mark:] or b"unknown command" in p.out[mark:]:
            raise Failed("Ctrl-R: %r" % bytes(p.out[mark:][-300:]))
        print("ok: Ctrl-R finds the latest history line with the typed text")

        out = p.command(b"GET uni")
        if uni not in out:
            raise Failed("GET uni printed %r" % out)
        p.command(b"delete after-cancel")
        wait_value("after-cancel", None, 5, p)
        out = p.command(b"gte uni")
        if b"did you mean" not in out or b"get" not in out:
            raise Failed("gte: %r" % out)
        out = p.command(b"help set")
        if b"set KEY VALUE" not in out or b"example" not in out.lower() or b"peers" in out:
            raise Failed("help set: %r" % out)
        out = p.command(b"help")
        wide = [l for l in out.split(b"\n") if columns(l) > 80]
        if b"peers" not in out or wide:
            raise Failed("help: lines over 80 columns: %r" % wide)
        out = p.command(b"loss drop")
        wide = [l for l in out.split(b"\n") if columns(l) > 80]
        if b"usage: loss" not in out or wide:
            raise Failed("loss usage: lines over 80 columns: %r" % (wide or out))
        # A write that waits answers when the members have it, above the
        # prompt; one that cannot be met says so after its --timeout.
        mark = len(p.out)
        p.send(b"set w1 x --wait all\r")
        p.expect(b"acked by p, b", mark, 10)
        mark = len(p.out)
        p.send(b"set w2 y --wait 5 --timeout 300\r")
        p.expect(b"(5 needed)", mark, 10)
        p.expect(b"not undone", mark, 10)
        mark = len(p.out)
        out = p.command(b"get w2 --read all")
        if b"y" not in out:
            # Printed above the line: wait for the prompt redrawn after it,
            # or the next command would read that as its own output.
            p.expect(PROMPT, p.expect(b"[Jy\r", mark, 10), 10)
        print("ok: --wait and --read at the prompt answer above the line")
        out = p.command(b"forget b")
        if b"alive" not in out:
            raise Failed("forget of a live member: %r" % out)
        out = p.command(b"forget nobody")
        if b"no member named nobody" not in out:
            raise Failed("forget of an unknown name: %r" % out)
        out = p.command(b"help forget")
        if b"forget NODE" not in out or b"example" not in out.lower():
            raise Failed("help forget: %r" % out)
        out = p.command(b"log warn")
        if b"warn" not in out.lower():
            raise Failed("log warn: %r" % out)
        print("ok: case-insensitive commands, delete, did you mean, help CMD, help in 80 columns, log, forget refusals")

        rc, out = meshkv("peers", "--json", node="127.0.0.1:" + B)
        if not re.search(rb'"name":"p","state":"alive"', out):
            raise Failed("node b does not see p alive after the pastes: %r" % out[:300])
        print("ok: the other node saw p alive throughout")

        p.command(b"set hist-check 1")
        mark = len(p.out)
        p.send(b"\x04")
        if p.reap(10) != 0:
            raise Failed("Ctrl-D: %s" % p.why())
        print("ok: Ctrl-D leaves and exits 0")
    finally:
        p.kill()


def session_two():
    p = Prompt("prompt2", "--join", "127.0.0.1:" + B)
    try:
        p.expect(PROMPT, 0)
        mark = len(p.out)
        p.send(b"\x1b[A")
        p.expect(b"hist-check", mark)
        p.send(b"\x03")
        p.expect(PROMPT, p.expect(b"^C", mark))
        p.pump(1.0)
        if b"refuted a rumour" in p.out:
            raise Failed("a normal restart logged a refuted rumour")
        print("ok: history is kept across restarts in $HOME/.meshkv_history")
        os.kill(p.pid, signal.SIGTERM)
        if p.reap(10) != 0:
            raise Failed("SIGTERM at the prompt: %s" % p.why())
        print("ok: SIGTERM leaves gracefully and exits 0")
    finally:
        p.kill()


def session_three():
    before = open(os.path.join(HOME, ".meshkv_history"), "rb").read()
    p = Prompt("prompt3", "--no-history")
    try:
        p.expect(PROMPT, 0)
        mark = len(p.out)
        p.send(b"\x1b[A")
        p.pump(0.3)
        if b"hist-check" in p.out[mark:]:
            raise Failed("--no-history still recalled the history file")
        p.send(b"\x03")
        p.command(b"set no-history 1")
        p.send(b"quit\r")
        if p.reap(10) != 0:
            raise Failed("quit: %s" % p.why())
    finally:
        p.kill()
    if open(os.path.join(HOME, ".meshkv_history"), "rb").read() != before:
        raise Failed("--no-history wrote the history file")
    print("ok: --no-history neither reads nor writes the file; quit exits 0")


def session_four():
    alt = os.path.join(RUN, "alt_history")
    before = open(os.path.join(HOME, ".meshkv_history"), "rb").read()
    p = Prompt("prompt4", MESHKV_HISTORY=alt)
    try:
        p.expect(PROMPT, 0)
        p.command(b"set alt-history 1")
        p.send(b"quit\r")
        if p.reap(10) != 0:
            raise Failed("quit: %s" % p.why())
    finally:
        p.kill()
    if b"alt-history" not in open(alt, "rb").read() or os.stat(alt).st_mode & 0o777 != 0o600:
        raise Failed("$MESHKV_HISTORY: the line is not in %s, or its mode is not 600" % alt)
    if open(os.path.join(HOME, ".meshkv_history"), "rb").read() != before:
        raise Failed("with $MESHKV_HISTORY set, ~/.meshkv_history was written")
    print("ok: $MESHKV_HISTORY names the history file, written with mode 600")


try:
    session_one()
    hist = open(os.path.join(HOME, ".meshkv_history"), "rb").read()
    if b"uni" not in hist or b"cancelled" in hist:
        raise Failed("history file: %r" % hist[:300])
    mode = os.stat(os.path.join(HOME, ".meshkv_history")).st_mode & 0o777
    if mode != 0o600:
        raise Failed("the history file has mode %o, not 600" % mode)
    session_two()
    session_three()
    session_four()
except (Failed, OSError, subprocess.TimeoutExpired) as e:
    print("FAIL:", e)
    sys.exit(1)
EOF

timeout 70 python3 "$RUN_DIR/drive.py" "$MESHKV" "$P" "$B" "$HOME_DIR" "$RUN_DIR" ||
  fail "the prompt test failed (terminal output in $RUN_DIR/prompt*.log)"

if grep -q "WARN .*member p .* is left" "$RUN_DIR/b.log"; then
  fail "node b logged p's graceful leave as a warning"
fi
grep -q "INFO .*member p .* is left" "$RUN_DIR/b.log" || fail "node b did not log p's leave"
echo "ok: a graceful leave is logged as INFO"

# shellcheck disable=SC2154 # set by start_node
kill -INT "$PID_b"
for _ in $(seq 1 100); do kill -0 "$PID_b" 2>/dev/null || break; sleep 0.1; done
wait "$PID_b"
rc=$?
[ "$rc" = 0 ] || fail "a headless node on SIGINT: exit $rc"
grep -q "received SIGINT; leaving the mesh" "$RUN_DIR/b.log" || fail "headless node b did not leave on SIGINT"
echo "ok: a headless node still leaves gracefully on SIGINT"
echo "PASS"
