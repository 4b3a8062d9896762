"""test_gossip_probe.py: indirect probes (SWIM's ping-req). Node A cannot reach node B (an
iptables rule in a network namespace rejects A's connections to B's port; A runs with a
group of its own for the rule to match), while C reaches both. A asks C to reach B each
time an exchange with B fails, C does, and A never suspects B (probe_saves > 0). With
--probe-helpers 0 the same setup makes A suspect B. A stranger's PROBE_REQ is refused and
counted; a PING is answered with a PONG signed by the node; a PROBE_ACK nobody asked for is
dropped.

Skips, with the reason, where a namespace cannot be made (not root, no iproute2, no
iptables or setpriv)."""

import atexit
import os
import shutil
import subprocess

import soswire as w
from sosnet import Net, Skip, hold_for_rounds, run, wait_for

PROBE_REQ, PROBE_ACK, PING, PONG = 7, 8, 9, 10
GID = 4242  # node A's group: the iptables owner match tells its packets apart


def sh(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


class Namespace:
    """One network namespace with its loopback up, deleted at the end."""

    def __init__(self):
        if os.geteuid() != 0:
            raise Skip("network namespaces need root (euid %d)" % os.geteuid())
        for tool in ("ip", "iptables", "setpriv"):
            if not shutil.which(tool):
                raise Skip("%s is not installed" % tool)
        self.name = "sosprobe-%d-%s" % (os.getpid(), os.urandom(3).hex())
        p = sh("ip", "netns", "add", self.name, check=False)
        if p.returncode != 0:
            raise Skip("cannot create a network namespace: %s" % p.stderr.strip())
        atexit.register(self.close)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")

    def wrap(self, gid=None):
        cmd = ["ip", "netns", "exec", self.name]
        if gid is not None:  # still root, with another group
            cmd += ["setpriv", "--regid=%d" % gid, "--clear-groups"]
        return cmd

    def reject(self, gid, port):
        """Reject every TCP packet sent by processes of group gid to port."""
        p = sh(*(self.wrap() + ["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", str(port),
                                "-m", "owner", "--gid-owner", str(gid), "-j", "REJECT",
                                "--reject-with", "tcp-reset"]), check=False)
        if p.returncode != 0:
            raise Skip("iptables owner match unavailable: %s" % p.stderr.strip())

    def close(self):
        if self.name:
            for pid in sh("ip", "netns", "pids", self.name, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", self.name, check=False)
            self.name = None


def probe_envelope(frame):
    """(type, sender, receiver, body fields, authentic) of a probe envelope (authentic: see
    soswire.decode_envelope)."""
    _, signed, sig = w.unpack(frame)
    _, msg_type, sender, receiver, _, _, body = w.unpack(signed)
    return msg_type, sender, receiver, w.unpack(body), sig == b"" or w.verify(sender, sig, signed)


def gossip(node):
    return node.status()["gossip"]


def cut_network(net, ns, helpers):
    """C (the genesis), B and A, with A's connections to B rejected from the start."""
    extra = ["--probe-helpers", str(helpers)]
    c = net.add(wrap=ns.wrap())
    c.start()
    b = net.add(genesis=[c.endpoint], wrap=ns.wrap())
    b.start()
    ns.reject(GID, b.port)
    a = net.add(genesis=[c.endpoint], wrap=ns.wrap(GID), extra=extra)
    a.start()
    wait_for("3 nodes to converge", net.converged, timeout=90)
    return a, b, c


def test_helper_saves_cut_peer():
    ns = Namespace()
    with Net(interval=500, extra=("--rate-limit", "off")) as net:
        a, b, c = cut_network(net, ns, 3)
        wait_for("A to fail an exchange with B and C to save it",
                 lambda: gossip(a)["probe_saves"] > 0, timeout=90)
        hold_for_rounds("A listing B, never suspecting it",
                        lambda: b.node_id in a.workers() and gossip(a)["suspicions"] == 0,
                        [a], 15)
        ga, gc = gossip(a), gossip(c)
        assert ga["exchanges_failed"] > 0, ga
        assert ga["probes_sent"] > 0 and ga["probes_answered"] > 0, ga
        assert gc["probes_helped"] > 0 and gc["probes_refused"] == 0, gc
        assert gossip(b)["suspected"] == 0
        assert "another peer reached it: not suspected" in a.log_text()
    ns.close()


def test_no_helpers_suspects_cut_peer():
    ns = Namespace()
    with Net(interval=500, extra=("--rate-limit", "off")) as net:
        a, b, c = cut_network(net, ns, 0)
        wait_for("A to suspect B", lambda: gossip(a)["suspicions"] > 0, timeout=90)
        ga = gossip(a)
        assert ga["probes_sent"] == 0 and ga["probe_saves"] == 0, ga
    ns.close()


def test_stranger_probes():
    """No namespace needed: one node and a client speaking the wire."""
    with Net(interval=500, extra=("--rate-limit", "off")) as net:
        node = net.start(1)[0]
        me = w.Identity()
        target = w.Identity()
        nid = w.node_id_bytes(node.node_id)
        with w.Conn(node.endpoint) as conn:
            # A PROBE_REQ from a node it does not list: refused, counted, not answered.
            conn.send(w.envelope(me, PROBE_REQ, w.pack([77, target.pk, False]),
                                 receiver=node.node_id))
            wait_for("the request refused", lambda: gossip(node)["probes_refused"] >= 1)
            # A PING for it: a PONG bound to us, signed by the node, echoing the req_id.
            conn.send(w.envelope(me, PING, w.pack([5, nid, False]), receiver=node.node_id))
            frame = conn.recv_where(lambda f: probe_envelope(f)[0] == PONG, 30)
            assert frame is not None, "no PONG"
            _, sender, receiver, body, sig_ok = probe_envelope(frame)
            assert sender == nid and receiver == me.pk and sig_ok
            assert body == [5, nid, True], body
            # A PROBE_ACK sent as a request, and a malformed probe body: dropped.
            drops0 = node.drops()
            conn.send(w.envelope(me, PROBE_ACK, w.pack([77, target.pk, True]),
                                 receiver=node.node_id))
            conn.send(w.envelope(me, PROBE_REQ, w.pack([77, b"short", False]),
                                 receiver=node.node_id))
            wait_for("both dropped", lambda: node.drops()["unexpected"] > drops0["unexpected"]
                     and node.drops()["malformed"] > drops0["malformed"])
        st = gossip(node)
        assert st["probes_helped"] == 0 and st["probe_saves"] == 0, st


if __name__ == "__main__":
    run([test_stranger_probes, test_helper_saves_cut_peer, test_no_helpers_suspects_cut_peer])
