#!/usr/bin/env python3
"""Runs the shell blocks of README.md, in order, against real nodes.

Usage: readme_run.py README MESHKV WORKDIR BASE
WORKDIR is an empty directory: the commands run there, `meshkv`,
`./meshkv` and `build/meshkv` all being MESHKV. The README's ports are
moved to free ones: 7001..7005 to BASE..BASE+4, 7946..7952 to BASE+5..
BASE+11. Its placeholders (A, B, KEY VALUE, PEER..., NODE) name nodes of
the three-node mesh, and new.key is made before it is used.

What is checked, line by line:
  - the exit status: 0, or N when the line's comment ends with "exit N"
    (retried for 10 s when the comment says the outcome comes "within"
    some time);
  - the output, when the comment says "prints: TEXT" (", exit N" ended):
    everything the line printed, blanks collapsed, must match TEXT, where
    "..." stands for anything (and any HLC or dot for any other);
  - a plain block of prompt lines ("meshkv a> CMD", then what it prints) is
    typed at the prompt of node a, a node the README starts without "&" (in
    a terminal: here a pseudo-terminal), and what each command prints must
    be the lines shown ("..." for any lines).
A `meshkv node` line starts the node in the background and waits until it
answers; a node already running on that port (from an earlier section) is
stopped first, as a reader would. A block right after the line
`<!-- readme-test: skip REASON -->` is not run, and REASON is printed.
Exit 0 when every line behaved as shown, else 1 (the first misfit, its
output and the nodes' logs).
"""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time

README, MESHKV, WORK, BASE = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
DEADLINE = time.monotonic() + 100  # the whole run, whatever happens
PORTS = {7001 + i: BASE + i for i in range(5)}
PORTS.update({7946 + i: BASE + 5 + i for i in range(7)})
ENV_FILE = os.path.join(WORK, ".env")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+ )?(DEBUG|INFO|WARN|ERROR)\s")


class Misfit(Exception):
    pass


def adapt(line, section):
    """The README's line, with free ports and its placeholders filled."""
    for old, new in PORTS.items():
        line = re.sub(rf"\b{old}\b", str(new), line)
    if section == "Operator tools":
        a, b = f"127.0.0.1:{PORTS[7001]}", f"127.0.0.1:{PORTS[7002]}"
        line = line.replace("KEY VALUE", "traced 1").replace("PEER...", b).replace("forget NODE", "forget d")
        line = re.sub(r"(--node|diff) A\b", rf"\1 {a}", line)
        line = re.sub(r"(diff \S+) B\b", rf"\1 {b}", line)
        line = re.sub(r"--node B\b", f"--node {b}", line)
    if section == "Tunable consistency":
        line = re.sub(r"--node A\b", f"--node 127.0.0.1:{PORTS[7001]}", line)
    if section == "Durability":
        line = line.replace("/var/lib/meshkv/", os.path.join(WORK, "var") + "/")
    if "cluster up" in line:
        line += f" --base-port {PORTS[7946]}"
    return line


def split_comment(line):
    """(command, comment): the comment starts at the first ' #' outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and i > 0 and line[i - 1] in " \t":
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def blocks():
    """(section, kind, lines, skip reason or None) of every fenced block."""
    section, skip, out, fence, body, kind = "", None, [], None, [], ""
    for raw in open(README, encoding="utf-8"):
        line = raw.rstrip("\n")
        if fence is not None:
            if line.startswith("```"):
                out.append((section, kind, body, skip))
                fence, skip = None, None
            else:
                body.append(line)
            continue
        if line.startswith("```"):
            fence, kind, body = line, line[3:].strip(), []
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
        m = re.match(r"^<!-- readme-test: skip (.*) -->$", line)
        if m:
            skip = m.group(1)
    return out


class Node:
    """A node the README started: in the background, or at a prompt."""

    def __init__(self, cmd, port, prompt):
        self.port, self.prompt, self.out = port, prompt, bytearray()
        self.lock = threading.Lock()
        if prompt:
            self.pid, self.fd = pty.fork()
            if self.pid == 0:
                os.chdir(WORK)
                os.execvpe("bash", ["bash", "-c", f"source {ENV_FILE}; exec {cmd}"], env())
            threading.Thread(target=self.drain, daemon=True).start()
        else:
            self.proc = subprocess.Popen(["bash", "-c", f"source {ENV_FILE}; exec {cmd}"], cwd=WORK, env=env(),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            self.pid = self.proc.pid

    def drain(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.out += data

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)

    def type_line(self, text, secs=10):
        """Types text and Enter; returns what was printed until the next prompt."""
        name = self.prompt
        marker = f"meshkv {name}> ".encode()
        end = min(time.monotonic() + secs, DEADLINE)
        # Typed before the line editor takes the terminal, a line can be
        # flushed unread: wait for the first prompt (bounded) before typing.
        while time.monotonic() < end:
            with self.lock:
                if marker in ANSI.sub(b"", bytes(self.out)):
                    break
            time.sleep(0.05)
        with self.lock:
            start = len(self.out)
        os.write(self.fd, text.encode() + b"\r")
        end = min(time.monotonic() + secs, DEADLINE)
        while time.monotonic() < end:
            with self.lock:
                got = bytes(self.out[start:])
            clean = ANSI.sub(b"", got)
            # The echo of the line, then the answer, then the prompt again.
            i = clean.find(text.encode())
            if i >= 0:
                j = clean.find(marker, i + len(text))
                if j >= 0:
                    return clean[i + len(text):j].decode("utf-8", "replace")
            time.sleep(0.05)
        raise Misfit(f"prompt {name}: no prompt after {text!r}; the terminal showed: {got[-2000:]!r}")


NODES = {}  # port -> Node

# Lines not run where they stand, and why; keep this short.
LINE_SKIPS = {
    "meshkv keys install new.key --node A":
        "the Operator tools mesh is not sealed; the Security block runs keys install on a sealed one",
}


def env():
    e = dict(os.environ)
    e["PATH"] = WORK + ":" + e["PATH"]
    e["HOME"] = WORK
    e["NO_COLOR"] = "1"
    return e


def run(cmd, secs=30):
    """Runs one line in bash with the environment the README's exports made."""
    script = f"source {ENV_FILE}\n{cmd}\nrc=$?\nexport -p >{ENV_FILE}\nexit $rc\n"
    p = subprocess.run(["bash", "-c", script], cwd=WORK, env=env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=max(1, min(secs, DEADLINE - time.monotonic())))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def squash(s):
    # Blanks collapsed; an HLC or a dot differs at every run, so only its
    # shape is compared.
    s = re.sub(r"\b\d{13}\.\d+\b", "HLC", s)
    s = re.sub(r"\b[0-9a-f]{16}:\d+\b", "DOT", s)
    return re.sub(r"[ \t]+", " ", s).strip()


def matches(pattern, text):
    parts = [re.escape(squash(p)) for p in squash(pattern).split("...")]
    return re.fullmatch(".*".join(parts), squash(text), re.S) is not None


def start_node(cmd, comment):
    port = int(re.search(r"--listen \S+:(\d+)", cmd).group(1))
    if port in NODES:
        NODES.pop(port).stop()
        end = time.monotonic() + 10
        while run(f"ss -Htuln 'sport = :{port}' | grep -q .")[0] == 0:
            if time.monotonic() > end:
                raise Misfit(f"port {port} still bound after its node stopped")
            time.sleep(0.1)
    background = cmd.rstrip().endswith("&")
    cmd = cmd.rstrip().rstrip("&").rstrip()
    name = re.search(r"--id (\S+)", cmd).group(1)
    prompt = None
    if not background:
        # Started in a terminal: with a prompt, its log in NAME.out.
        prompt = name
    node = Node(cmd, port, prompt)
    NODES[port] = node
    key = re.search(r"--key-file (\S+)", cmd)
    ask = (f"meshkv status --node 127.0.0.1:{port} --key-file {key.group(1)}" if key
           else f"MESHKV_KEY_FILE= meshkv status --node 127.0.0.1:{port}")
    end = time.monotonic() + 15
    while run(ask)[0] != 0:
        if time.monotonic() > end:
            raise Misfit(f"{cmd}: the node does not answer after 15 s; it printed: {bytes(node.out[-2000:])!r}")
        time.sleep(0.2)


def run_line(section, raw):
    cmd, comment = split_comment(raw)
    if not cmd:
        return
    if cmd in LINE_SKIPS:
        print(f"  skipped: {cmd}: {LINE_SKIPS[cmd]}")
        return
    cmd = adapt(cmd, section)
    if re.search(r"(^|\s)(\S*/)?meshkv node\s", cmd):
        start_node(cmd, comment)
        print(f"  started: {cmd}")
        return
    want_rc = 0
    m = re.search(r"(?:^|[,;]\s*)exit (\d+)\s*$", comment)
    if m:
        want_rc = int(m.group(1))
    streams = re.match(r"^(\S*/)?meshkv watch\s", cmd) is not None
    if streams:
        # It streams until interrupted, as a reader's Ctrl-C would after a
        # second: still streaming then is success.
        cmd = "timeout -s INT 1 " + cmd
    rc, out = run(cmd)
    if streams and rc == 124:
        rc = 0
    # "within a second or two": what converges is given that long (10 s).
    end = time.monotonic() + (10 if "within" in comment else 0)
    while rc != want_rc and time.monotonic() < end:
        time.sleep(0.2)
        rc, out = run(cmd)
    print(f"  ran (exit {rc}): {cmd}")
    if rc != want_rc:
        raise Misfit(f"[{section}] {raw}\n  ran: {cmd}\n  exit {rc}, the README says {want_rc}; output:\n{out}")
    m = re.search(r"(?:^|; )prints: (.*?)(?:, exit \d+)?$", comment)
    if m and not matches(adapt(m.group(1), section), out):
        raise Misfit(f"[{section}] {raw}\n  ran: {cmd}\n  printed:\n{out}\n  the README shows: {m.group(1)}")


def run_transcript(section, lines):
    """Prompt lines ("meshkv a> CMD" and the lines it prints) typed at a's prompt."""
    steps = []
    for ln in lines:
        m = re.match(r"^meshkv (\S+)> (.*)$", ln)
        if m:
            steps.append((m.group(1), m.group(2), []))
        elif steps:
            steps[-1][2].append(ln)
    for name, text, want in steps:
        node = next((n for n in NODES.values() if n.prompt == name), None)
        if node is None:
            raise Misfit(f"[{section}] a transcript at {name}'s prompt, but no node {name} was started with one")
        got = node.type_line(text)
        got_lines = [ln for ln in got.split("\n") if ln.strip() and not LOG_LINE.match(ln)]
        pattern = "\n".join(want)
        if not matches(pattern.replace("\n...\n", "...").replace("\n...", "...").replace("...\n", "..."),
                       "\n".join(got_lines)) and not (not want and not got_lines):
            raise Misfit(f"[{section}] meshkv {name}> {text}\n  printed:\n" + "\n".join(got_lines) +
                         "\n  the README shows:\n" + "\n".join(want))
        print(f"  typed at {name}'s prompt: {text}")


def main():
    os.makedirs(os.path.join(WORK, "build"), exist_ok=True)
    for link in (os.path.join(WORK, "meshkv"), os.path.join(WORK, "build", "meshkv")):
        os.symlink(MESHKV, link)
    os.makedirs(os.path.join(WORK, "var"))  # stands for /var/lib/meshkv, which the package makes
    open(ENV_FILE, "w").close()
    ran = skipped = 0
    try:
        for section, kind, lines, skip in blocks():
            if kind == "sh":
                if skip:
                    print(f"skipped [{section}]: {skip}")
                    skipped += 1
                    continue
                print(f"[{section}]")
                if section == "Operator tools":
                    prepare_operator_tools()
                for ln in lines:
                    if time.monotonic() > DEADLINE:
                        raise Misfit("out of time")
                    run_line(section, ln)
                ran += 1
            elif lines and re.match(r"^meshkv \S+> ", lines[0]):
                print(f"[{section}] (prompt)")
                run_transcript(section, lines)
                ran += 1
    except (Misfit, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        for n in list(NODES.values()):
            n.stop()
        run(f"meshkv cluster down --dir {WORK}/meshkv-cluster >/dev/null 2>&1")
    print(f"readme: {ran} blocks ran as shown, {skipped} skipped")
    return 0


def prepare_operator_tools():
    """What the placeholders of Operator tools need: a dead member d to
    forget and a cluster key new.key to install (on a node that is not
    sealed, keys are refused: those lines run in the Security section's
    sealed mesh instead)."""
    a = PORTS[7001]
    d = PORTS[7005]
    start_node(f"meshkv node --id d --listen 127.0.0.1:{d} --join 127.0.0.1:{a} &", "")
    node = NODES.pop(d)
    os.kill(node.pid, signal.SIGKILL)
    os.waitpid(node.pid, 0)
    end = time.monotonic() + 20
    while True:
        rc, out = run(f"meshkv peers --node 127.0.0.1:{a} --state suspect; meshkv peers --node 127.0.0.1:{a} --state dead")
        if re.search(r"^\s*d\s+(suspect|dead)\s", out, re.M):
            return
        if time.monotonic() > end:
            raise Misfit(f"a never suspected d: {out}")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
