"""test_faults_partition.py: a network partition and packet loss between two groups of nodes.

Two network namespaces, A and B, are joined by a veth pair (10.200.0.1 in A, 10.200.0.2 in
B); three nodes listen on each address, node 0 of A is the genesis of all. Every node and
every sosctl runs inside its namespace (`ip netns exec`).

- test_partition_heals: cut the link (the veth goes down; connections across it stay
  half-open, so failures are found by the exchange timeout), each side removes the other's
  nodes, rooms are created on both sides, the link comes back, and every node converges to
  the same directory: the same six workers at the same versions and the same rooms, whose
  messages are readable through a node of the other side.
- test_loss_converges: 20% of the packets on the veth are dropped in each direction
  (iptables statistic match: the kernel has no tc netem); rooms created on both sides still
  reach every node and the directories converge.

Skips, with the reason, where namespaces cannot be made (not root, no iproute2, no
permission) or, for the loss test, where iptables or its statistic match is missing. Every
namespace and process is removed in finally and at exit, also on failure; namespaces left
by an earlier run that was killed are removed at the start."""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from sosnet import Net, Skip, run, wait_for, with_id

INTERVAL = 200
MAX_FAILURES = 3
PER_SIDE = 3
EXTRA = ["--rate-limit", "off", "--max-failures", str(MAX_FAILURES)]
NS_RE = re.compile(r"^sosfault-(\d+)-[0-9a-f]+-[ab]$")
PIN = "4711"


def sh(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale_namespaces():
    """Namespaces of this test whose creating process is gone (a run killed before its
    clean-up): stop the nodes left inside and delete them."""
    p = sh("ip", "netns", "list", check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            # Its nodes outlived it (it was killed before it could stop them).
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", name, check=False)


class Partition:
    """Namespaces A and B joined by one veth pair, made with unique names."""

    def __init__(self):
        if os.geteuid() != 0:
            raise Skip("network namespaces need root (euid %d)" % os.geteuid())
        if not shutil.which("ip"):
            raise Skip("iproute2's ip is not installed")
        remove_stale_namespaces()
        suffix = os.urandom(3).hex()
        self.ns = {side: "sosfault-%d-%s-%s" % (os.getpid(), suffix, side) for side in "ab"}
        self.veth = {side: "sf%s%s" % (side, suffix) for side in "ab"}
        self.addr = {"a": "10.200.0.1", "b": "10.200.0.2"}
        self.made = []
        self.nets = []
        atexit.register(self.close)
        p = sh("ip", "netns", "add", self.ns["a"], check=False)
        if p.returncode != 0:
            raise Skip("cannot create a network namespace: %s" % p.stderr.strip())
        self.made.append(self.ns["a"])
        try:
            sh("ip", "netns", "add", self.ns["b"])
            self.made.append(self.ns["b"])
            sh("ip", "link", "add", self.veth["a"], "type", "veth", "peer", "name",
               self.veth["b"])
            for side in "ab":
                ns, dev = self.ns[side], self.veth[side]
                sh("ip", "link", "set", dev, "netns", ns)
                sh("ip", "-n", ns, "addr", "add", self.addr[side] + "/24", "dev", dev)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "link", "set", dev, "up")
        except Exception:
            self.close()
            raise

    def wrap(self, side):
        return ["ip", "netns", "exec", self.ns[side]]

    def cut(self, how):
        """Cut the link: "down" takes the veth down (connections across stay half-open);
        "reset" makes A answer every packet across with a TCP reset or refuse it, so that
        connections break at once and nothing sent before the cut arrives after it."""
        if how == "down":
            sh("ip", "-n", self.ns["a"], "link", "set", self.veth["a"], "down")
        else:
            for chain, way in (("INPUT", "-i"), ("OUTPUT", "-o")):
                self.iptables("a", "-A", chain, way, self.veth["a"], "-p", "tcp", "-j", "REJECT",
                              "--reject-with", "tcp-reset")

    def heal(self, how):
        if how == "down":
            sh("ip", "-n", self.ns["a"], "link", "set", self.veth["a"], "up")
        else:
            for chain, way in (("INPUT", "-i"), ("OUTPUT", "-o")):
                self.iptables("a", "-D", chain, way, self.veth["a"], "-p", "tcp", "-j", "REJECT",
                              "--reject-with", "tcp-reset")

    def iptables(self, side, *rule):
        return sh(*(self.wrap(side) + ["iptables"] + list(rule)))

    def close(self):
        # The processes first: a namespace lives on while a process is inside it.
        try:
            for net in self.nets:
                net.close()
        finally:
            self.nets = []
            for ns in self.made:
                sh("ip", "netns", "del", ns, check=False)
            if self.made:
                # A veth end still in this namespace (set-up failed half way) goes too.
                sh("ip", "link", "del", self.veth["a"], check=False)
            self.made = []


def make_net(part):
    """Three nodes in A (the first is the genesis of all), three in B."""
    net = Net(interval=INTERVAL, extra=EXTRA)
    part.nets.append(net)
    for side in "ab":
        for i in range(PER_SIDE):
            net.add(genesis=[net.nodes[0].endpoint] if net.nodes else [],
                    host=part.addr[side], port=7700 + i, wrap=part.wrap(side))
            net.nodes[-1].side = side
    for n in net.nodes:
        n.start()
    return net


def directory(node):
    """A node's view of the directory: workers with their record versions, rooms with their
    owner and times."""
    workers = {w["node_id"]: w["version"] for w in node.ctl("workers")["workers"]}
    rooms = {r["room_hash"]: (r["owner"], r["worker"], r["created_at"], r["expires_at"])
             for r in node.ctl("rooms")["rooms"]}
    return workers, rooms


def same_directory(nodes, want_workers, want_rooms):
    """True when every node holds exactly want_workers and want_rooms, all alike."""
    views = [directory(n) for n in nodes]
    first = views[0]
    return all(set(w) == want_workers and set(r) == want_rooms and (w, r) == first
               for w, r in views)


def create_room(node, emojis, text):
    """Create a room through sosctl (client-side crypto) and send one message; return
    (room_hash, member_id)."""
    created = node.ctl("room", "create", "--emojis", emojis, "--pin", PIN, "--nickname",
                       "n%d" % node.index, timeout_ms=15000)
    room = created["room_hash"]
    node.ctl("room", "send", room, "--member", created["member_id"], "--emojis", emojis,
             "--pin", PIN, text, timeout_ms=15000)
    return room


def raw_call(node, op, **args):
    """One request through the raw client, run inside the node's namespace; (status, body)."""
    script = ("import json, sys\n"
              "from sosclient import Client\n"
              "with Client(sys.argv[1]) as c:\n"
              "    print(json.dumps(c.call(sys.argv[2], json.loads(sys.argv[3]), timeout=20)))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run(node.wrap + [sys.executable, "-c", script, with_id(node.endpoint), op,
                                    json.dumps(args)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    return tuple(json.loads(p.stdout))


def read_room(node, room, emojis):
    """Join a room through node and return the texts of its messages. The room may live on
    a node across the link: a forward that finds no connection yet, or times out on a lossy
    link, answers owner_unreachable, so try until it works."""
    def read():
        joined = node.ctl("room", "join", room, "--nickname", "reader", timeout_ms=15000)
        polled = node.ctl("room", "poll", room, "--member", joined["member_id"], "--emojis",
                          emojis, "--pin", PIN, timeout_ms=15000)
        return [m["text"] for m in polled["messages"]]
    return wait_for("room %s readable through node %d" % (room, node.index), read,
                    timeout=120, interval=1.0)


def partition_heals(how):
    part = Partition()
    try:
        if how == "reset" and not shutil.which("iptables"):
            raise Skip("iptables is not installed")
        with make_net(part) as net:
            partition_scenario(part, net, how)
    finally:
        part.close()


def partition_scenario(part, net, how):
    side = {s: [n for n in net.nodes if n.side == s] for s in "ab"}
    ids = {s: {n.node_id for n in side[s]} for s in "ab"}
    everyone = ids["a"] | ids["b"]
    genesis = net.nodes[0]
    wait_for("six nodes across the link to list all six",
             lambda: net.converged(expect=everyone), timeout=120)
    before = create_room(side["a"][1], "🌉🌊", "before the cut")

    part.cut(how)
    # Each side removes the other's nodes; B keeps listing the genesis node (never removed).
    wait_for("each side to remove the other",
             lambda: all(set(n.workers()) == ids["a"] for n in side["a"]) and
             all(set(n.workers()) == ids["b"] | {genesis.node_id} for n in side["b"]),
             timeout=180)
    # A room whose owner is across the cut: owner_unreachable, naming the owner.
    for op in ("join", "info"):
        status, body = raw_call(side["b"][0], op, room_hash=before)
        assert status == "owner_unreachable", (op, status, body)
        assert body["owner"] == side["a"][1].node_id, body
    made = {}
    for s, emoji in (("a", "🍎"), ("b", "🍌")):
        for i, n in enumerate(side[s][1:]):
            emojis = emoji + ["🔥", "💧"][i]
            made[create_room(n, emojis, "made on side %s during the cut" % s)] = (s, emojis)
    for s in "ab":
        mine = {r for r, (rs, _) in made.items() if rs == s}
        wait_for("side %s's rooms on every node of side %s" % (s, s),
                 lambda: all(mine <= set(n.rooms()) for n in side[s]), timeout=120)
    for n in side["a"]:
        assert not {r for r, (rs, _) in made.items() if rs == "b"} & set(n.rooms()), \
            "a room made in B reached A through a cut link"

    part.heal(how)
    want_rooms = set(made) | {before}
    wait_for("every node to hold the same directory: six workers, %d rooms" % len(want_rooms),
             lambda: same_directory(net.nodes, everyone, want_rooms), timeout=300,
             interval=1.0)
    # The rooms work across the healed link, with their messages.
    for room, (s, emojis) in made.items():
        other = side["b" if s == "a" else "a"][2]
        assert read_room(other, room, emojis) == ["made on side %s during the cut" % s]
    assert read_room(side["b"][0], before, "🌉🌊") == ["before the cut"]
    for n in net.nodes:
        assert n.alive(), "node %d died" % n.index


def test_partition_link_down_heals():
    partition_heals("down")


def test_partition_reset_heals():
    partition_heals("reset")


def test_loss_converges():
    part = Partition()
    try:
        if not shutil.which("iptables"):
            raise Skip("iptables is not installed")
        dev = part.veth["a"]
        for chain, way in (("INPUT", "-i"), ("OUTPUT", "-o")):
            p = sh(*(part.wrap("a") + ["iptables", "-A", chain, way, dev, "-m", "statistic",
                                       "--mode", "random", "--probability", "0.2", "-j",
                                       "DROP"]), check=False)
            if p.returncode != 0:
                raise Skip("iptables statistic match unavailable: %s" % p.stderr.strip())
        with make_net(part) as net:
            loss_scenario(part, net)
    finally:
        part.close()


def loss_scenario(part, net):
    side = {s: [n for n in net.nodes if n.side == s] for s in "ab"}
    everyone = {n.node_id for n in net.nodes}
    wait_for("six nodes to converge over a lossy link",
             lambda: net.converged(expect=everyone), timeout=180, interval=0.5)
    made = {}
    for s, emoji in (("a", "🍇"), ("b", "🍉")):
        for i, n in enumerate(side[s]):
            emojis = emoji + ["🔥", "💧", "🌱"][i]
            text = "lossy %s%d" % (s, i)
            made[create_room(n, emojis, text)] = (s, emojis, text)
    wait_for("every node to hold the same directory over the lossy link",
             lambda: same_directory(net.nodes, everyone, set(made)), timeout=300,
             interval=1.0)
    # Rooms work across the lossy link.
    for room, (s, emojis, text) in made.items():
        other = side["b" if s == "a" else "a"][0]
        assert read_room(other, room, emojis) == [text]
    dropped = 0
    for line in part.iptables("a", "-L", "-v", "-n", "-x").stdout.splitlines():
        f = line.split()
        if len(f) > 2 and f[2] == "DROP":
            dropped += int(f[0])
    assert dropped > 0, "the loss rules dropped nothing"
    print("loss: %d packets dropped on the link" % dropped, flush=True)
    for n in net.nodes:
        assert n.alive(), "node %d died" % n.index


if __name__ == "__main__":
    run([test_partition_link_down_heals, test_partition_reset_heals, test_loss_converges])
