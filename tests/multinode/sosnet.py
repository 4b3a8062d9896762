"""sosnet.py: a harness for multi-node tests: starts real sosnode processes on loopback,
talks to them with sosctl --json, waits on conditions, and cleans up every process."""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import soswire

BIN = os.environ.get("SOS_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOSNODE = os.path.join(BIN, "sosnode")
SOSCTL = os.path.join(BIN, "sosctl")

# Every process started by any Net, so that nothing outlives the test run.
_ALL = []


def _cleanup():
    for proc in _ALL:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_cleanup)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=60.0, interval=0.1):
    """Wait until cond() returns a true value and return it; fail with `what` after timeout.
    Deadlines are generous: the tests assert behaviour, never speed."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # a node may be starting or stopping
            last_exc = exc
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s%s" % (
        timeout, what, " (last error: %r)" % last_exc if last_exc else ""))


def hold_for_rounds(what, cond, nodes, rounds, timeout=120.0, interval=0.1):
    """Check that cond() stays true while every node in nodes runs `rounds` more gossip rounds
    (its status gossip.rounds counter), so that "it stays so" is measured in rounds, not in
    seconds. Fails at the first check where cond() is false. Returns the number of checks."""
    start = {n.index: n.status()["gossip"]["rounds"] for n in nodes}
    deadline = time.monotonic() + timeout
    checks = 0
    while True:
        assert cond(), "%s no longer holds (after %d checks)" % (what, checks)
        checks += 1
        if all(n.status()["gossip"]["rounds"] >= start[n.index] + rounds for n in nodes):
            return checks
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %d rounds while checking %s"
                                 % (timeout, rounds, what))
        time.sleep(interval)


class CtlError(Exception):
    def __init__(self, code, message, rc):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.rc = rc


def node_id_of(data_dir):
    """The id (hex) of the node whose data directory is data_dir, made if it has none yet
    (sosnode --print-id): with CURVE a node's id is what others need to reach it."""
    p = subprocess.run([SOSNODE, "--data", data_dir, "--print-id"], capture_output=True,
                       text=True, timeout=60, check=True)
    return p.stdout.strip()


def with_id(endpoint):
    """NODEID@endpoint for a node whose id is registered (soswire.register_node), else
    endpoint as given."""
    if "@" in endpoint:
        return endpoint
    node_id = soswire.node_id_for(endpoint)
    return "%s@%s" % (node_id.hex(), endpoint) if node_id else endpoint


def ctl(endpoint, *args, timeout_ms=5000, check=True, wrap=()):
    """Run sosctl --json against endpoint (given the registered node id; see with_id);
    return the parsed reply. On an error reply raise CtlError with the error code (the first
    word of sosctl's one-line error). wrap is a command prefix, e.g. ("ip", "netns",
    "exec", NS) to run sosctl in a network namespace. sosctl's known-nodes file is
    /dev/null: tests start nodes with new ids on reused ports."""
    cmd = list(wrap) + [SOSCTL, "--node", with_id(endpoint), "--json", "--timeout",
                        str(timeout_ms)] + list(args)
    env = dict(os.environ, SOSCTL_KNOWN_NODES="/dev/null")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_ms / 1000 + 60,
                       env=env)
    if p.returncode != 0:
        err = p.stderr.strip()
        msg = err[len("sosctl: "):] if err.startswith("sosctl: ") else err
        code = msg.split(":", 1)[0] if ":" in msg else "error"
        if check:
            raise CtlError(code, msg, p.returncode)
        return {"_rc": p.returncode, "_stderr": err}
    out = p.stdout.strip()
    return json.loads(out) if out else {}


class Node:
    """One sosnode process. host is the address it listens on; wrap a command prefix for it
    and for sosctl (e.g. ("ip", "netns", "exec", NS) for a node in a network namespace)."""

    def __init__(self, net, index, port=None, genesis=(), extra=(), host="127.0.0.1", wrap=()):
        self.net = net
        self.index = index
        self.port = port or free_port()
        self.host = host
        self.wrap = list(wrap)
        self.endpoint = "tcp://%s:%d" % (host, self.port)
        self.data = os.path.join(net.dir, "node%d" % index)
        self.log = os.path.join(net.dir, "node%d.log" % index)
        self.genesis = list(genesis)
        self.extra = list(extra)
        self.proc = None
        self.node_id = None

    def rss_anon(self):
        """The node's anonymous resident memory in bytes (LMDB's map is file-backed, not
        this)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no RssAnon in /proc/%d/status" % self.proc.pid)

    def ensure_id(self):
        """This node's id (hex), from its data directory (made there if missing), registered
        for its endpoint."""
        self.node_id = node_id_of(self.data)
        args = self.net.extra + self.extra
        null = any(a == "--transport" and b == "null" for a, b in zip(args, args[1:]))
        if not null:
            soswire.register_node(self.endpoint, self.node_id)
        else:  # reached without CURVE, even where an earlier node on this port had an id
            soswire.unregister_node(self.endpoint)
        return self.node_id

    def genesis_arg(self, g):
        """NODEID@ENDPOINT for a genesis given as a bare endpoint of a node of this net or
        of one whose id is registered; as given otherwise."""
        if "@" in g:
            return g
        for n in self.net.nodes:
            if n is not self and n.endpoint == g:
                return "%s@%s" % (n.ensure_id() if n.proc is None else n.node_id, g)
        return with_id(g)

    def args(self):
        a = self.wrap + [SOSNODE, "--data", self.data, "--listen", self.endpoint,
             "--gossip-interval", str(self.net.interval), "--log-level", "info"]
        for g in self.genesis:
            a += ["--genesis", self.genesis_arg(g)]
        return a + self.net.extra + self.extra

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self.ensure_id()
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(self.args(), stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        _ALL.append(self.proc)
        if wait:
            st = wait_for("node %d to answer status" % self.index,
                          lambda: self.ctl("status", timeout_ms=1000), timeout=30)
            self.node_id = st["node_id"]
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop with sig and return the exit code."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("node %d did not stop within %ds" % (self.index, timeout))

    def kill(self):
        return self.stop(signal.SIGKILL)

    def ctl(self, *args, **kw):
        kw.setdefault("wrap", self.wrap)
        return ctl(self.endpoint, *args, **kw)

    def status(self):
        return self.ctl("status")

    def workers(self):
        return {w["node_id"]: w for w in self.ctl("workers")["workers"]}

    def rooms(self):
        return {r["room_hash"]: r for r in self.ctl("rooms")["rooms"]}

    def drops(self):
        return self.status()["drops"]

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


class Net:
    """A set of nodes in one temporary directory; node 0 is the genesis of the others."""

    def __init__(self, interval=200, extra=("--rate-limit", "off")):
        self.dir = tempfile.mkdtemp(prefix="sosnet-")
        self.interval = interval
        self.extra = list(extra)
        self.nodes = []

    def add(self, genesis=None, **kw):
        if genesis is None:
            genesis = [self.nodes[0].endpoint] if self.nodes else []
        node = Node(self, len(self.nodes), genesis=genesis, **kw)
        self.nodes.append(node)
        return node

    def start(self, n, **kw):
        for _ in range(n):
            self.add(**kw).start()
        return self.nodes

    def converged(self, nodes=None, expect=None):
        nodes = nodes or [n for n in self.nodes if n.alive()]
        want = set(expect) if expect is not None else {n.node_id for n in nodes}
        return all(set(n.workers()) == want for n in nodes)

    def close(self, keep_logs_on_failure=False):
        # Under the sanitizers (tests/run_asan.sh sets ASAN_OPTIONS) stop nodes with SIGTERM,
        # so that LeakSanitizer checks each one as it exits; otherwise kill them.
        graceful = "ASAN_OPTIONS" in os.environ
        for n in self.nodes:
            if n.alive() and graceful:
                n.proc.send_signal(signal.SIGTERM)
        for n in self.nodes:
            if n.alive() and graceful:
                try:
                    n.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            if n.alive():
                n.kill()
        reports = self.sanitizer_reports()
        if not keep_logs_on_failure and not reports:
            shutil.rmtree(self.dir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports in node logs (kept in %s):\n%s" % (
                self.dir, "\n".join(reports)))

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def sanitizer_reports(self):
        """The first lines of the first sanitizer report (ASan, LSan, UBSan) in each node's
        log; with a -DSOS_SANITIZE=ON build, close() fails the test if there is any."""
        found = []
        for n in self.nodes:
            try:
                lines = n.log_text().splitlines()
            except OSError:
                continue
            for i, line in enumerate(lines):
                if any(mark in line for mark in self.SANITIZER_MARKS):
                    found.append("--- node %d:\n%s" % (n.index, "\n".join(lines[i:i + 20])))
                    break
        return found

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            # Show the end of every node's log: the test failed, the logs say why.
            for n in self.nodes:
                try:
                    text = n.log_text().splitlines()[-15:]
                    sys.stderr.write("--- node %d (%s) log tail ---\n%s\n" % (
                        n.index, n.endpoint, "\n".join(text)))
                except OSError:
                    pass
        self.close()
        return False


class Skip(Exception):
    """Raised by a test that cannot run here (say why): run() prints "SKIP: <reason>" and
    counts it as skipped, never as passed."""


def run(tests):
    """Run test functions in order; print a summary line; exit non-zero if any failed."""
    passed = failed = skipped = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            passed += 1
            print("PASS %s (%.1fs)" % (t.__name__, time.monotonic() - start), flush=True)
        except Skip as e:
            skipped += 1
            print("SKIP: %s: %s" % (t.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)
