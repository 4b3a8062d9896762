"""test_transport.py: every connection is CURVE, keyed by the node id (PROTOCOL.md,
"Transport"): what crosses loopback during a room send through a non-owner is encrypted, a
connection whose key is not its sender's is refused and counted, a man in the middle on a
pinned genesis endpoint gets nothing, the NULL mechanism of version 2 is refused with a log
line naming the versions, and a flood of handshakes from one address is cut and counted
while the node keeps serving, a node whose handshake a peer refused dials it again, and
envelopes go unsigned on CURVE, taken only on the word of the connection."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import zmq
import zmq.utils.monitor

import soswire as w
from sosclient import Client, NoReply
from sosnet import SOSCTL, SOSNODE, Net, Skip, free_port, run, wait_for

NICK = "nick-%s" % os.urandom(6).hex()
EMOJIS = "🔥🌊🦊"
NULL_ENV = "SOS_ALLOW_NULL_TRANSPORT"


# ------------------------------------------------------------------- helpers ----

def zmtp_mechanism(port):
    """The mechanism a node names in its ZMTP greeting (read from a raw TCP connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # Only the signature and the major version of ours: libzmq then sends the rest of
        # its greeting, and closes once it reads a mechanism that is not its own.
        s.sendall(b"\xff" + bytes(8) + b"\x7f" + b"\x03")
        got = b""
        while len(got) < 64:
            chunk = s.recv(64 - len(got))
            if not chunk:
                break
            got += chunk
    assert len(got) >= 32 and got[0] == 0xff and got[9] == 0x7f, "not a ZMTP greeting"
    assert got[10] == 3, "ZMTP major version %d" % got[10]
    return got[12:32].rstrip(b"\0").decode()


class Capture:
    """tcpdump on loopback for the given TCP ports, into a file."""

    def __init__(self, ports):
        self.path = tempfile.mktemp(prefix="sos-capture-", suffix=".pcap")
        flt = " or ".join("tcp port %d" % p for p in ports)
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-Z", "root", "--immediate-mode", "-U", "-s", "0", "-w", self.path,
                                      flt], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # tcpdump says "listening on lo" once it captures
        line = self.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            self.proc.kill()
            raise Skip("tcpdump cannot capture on lo: %s" % line.strip())

    def stop(self):
        time.sleep(0.5)  # what is in flight reaches the file (-U: written per packet)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        with open(self.path, "rb") as f:
            data = f.read()
        os.unlink(self.path)
        return data


def room_send_through_non_owner(a, b, text):
    """Create a room on a, join and send through b (which forwards to a): the member id, the
    nickname and the plaintext request arguments all cross a and b's connection."""
    room = a.ctl("room", "create", "--emojis", EMOJIS, "--pin", "4711", "--nickname", "owner")
    room = room["room_hash"]
    wait_for("the room in b's directory", lambda: room in b.rooms())
    member = b.ctl("room", "join", room, "--nickname", NICK)["member_id"]
    sent = b.ctl("room", "send", room, "--member", member, "--emojis", EMOJIS, "--pin", "4711",
                 text)
    assert sent["seq"] >= 1
    return member


def _captured_net(extra=()):
    net = Net(extra=("--rate-limit", "off") + tuple(extra))
    a = net.add().start()
    b = net.add().start()
    return net, a, b


# --------------------------------------------------------------------- tests ----

def test_curve_on_the_wire():
    """The greeting names CURVE, and a capture of a room send through a non-owner holds no
    member id, nickname or op name in clear. The same run over the test-only NULL transport
    shows them: the capture would catch a transport that leaks."""
    if shutil.which("tcpdump") is None:
        raise Skip("tcpdump is not installed (tools/deps.sh --test installs it)")
    if os.geteuid() != 0:
        raise Skip("capturing on lo needs root")
    for transport in ("curve", "null"):
        if transport == "null":
            os.environ[NULL_ENV] = "1"  # for the nodes and sosctl of the control run
        try:
            net, a, b = _captured_net(("--transport", transport))
            with net:
                wait_for("convergence", net.converged)
                mech = zmtp_mechanism(a.port)
                assert mech == ("CURVE" if transport == "curve" else "NULL"), mech
                st = a.ctl("status")
                assert st["transport"] == transport and st["protocol"] == 2, st
                cap = Capture([a.port, b.port])
                member = room_send_through_non_owner(a, b, "hello")
                data = cap.stop()
                wrong_key = a.drops()["wrong_transport_key"] + b.drops()["wrong_transport_key"]
        finally:
            os.environ.pop(NULL_ENV, None)
        print("captured %d bytes over %s" % (len(data), transport), flush=True)
        leaks = [s for s in (member.encode(), NICK.encode(), b"join") if s in data]
        if transport == "curve":
            assert b"CURVE" in data, "no CURVE greeting captured"
            assert not leaks, "in clear on the wire: %r" % leaks
            assert wrong_key == 0
        else:
            assert member.encode() in data and NICK.encode() in data, \
                "the NULL control run shows no clear text: the capture sees nothing"


def test_wrong_transport_key_refused():
    """An envelope signed by one identity on a connection keyed by another is refused and
    counted; the same envelope on a connection with its sender's key is taken."""
    with Net() as net:
        node = net.add().start()
        signer, other = w.Identity(), w.Identity()
        rec = w.worker_record(signer, 1, "tcp://127.0.0.1:%d" % free_port())

        def sync():
            return w.envelope(signer, w.SYNC, w.gmsg(req_id=7, self_rec=rec),
                              receiver=w.node_id_bytes(node.node_id))

        before = node.drops()["wrong_transport_key"]
        with w.Conn(node.endpoint, ident=other) as conn:
            conn.send(sync())
            wait_for("a wrong_transport_key drop",
                     lambda: node.drops()["wrong_transport_key"] >= before + 1, timeout=30)
            assert conn.recv(timeout=1.0) is None, "answered a SYNC on another node's key"
        assert "dropped wrong_transport_key" in node.log_text()
        with w.Conn(node.endpoint, ident=signer) as conn:
            conn.send(sync())
            reply = conn.recv(timeout=30)
            assert reply is not None, "no SYNC_ACK on the sender's own key"
            assert w.decode_envelope(reply)["type"] == w.SYNC_ACK
        assert node.drops()["wrong_transport_key"] == before + 1


def test_man_in_the_middle_on_pinned_genesis():
    """A node given NODEID@ENDPOINT for its genesis speaks only to the holder of that id: a
    server at that endpoint with another key (a man in the middle that knows the id but not
    its secret) receives no frame, and the node never lists it."""
    real = w.Identity()
    mitm = w.Identity()
    port = free_port()
    url = "tcp://127.0.0.1:%d" % port
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    w.curve_server(sock, mitm)
    events = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                     zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                     zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                                     zmq.EVENT_HANDSHAKE_SUCCEEDED)
    sock.bind(url)
    try:
        with Net() as net:
            node = net.add(genesis=["%s@%s" % (real.hex, url)]).start()
            seen = {"failed": 0, "ok": 0}

            def handshakes():
                while events.poll(100):
                    ev = zmq.utils.monitor.recv_monitor_message(events)
                    if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        seen["ok"] += 1
                    else:
                        seen["failed"] += 1
                return seen["failed"] >= 2

            wait_for("the node's handshakes to fail at the man in the middle", handshakes,
                     timeout=60)
            assert seen["ok"] == 0, "a handshake with the wrong key succeeded"
            assert not sock.poll(500), "the man in the middle received a frame"
            assert mitm.hex not in node.workers()
            assert node.status()["node_id"] == node.node_id  # still serving
    finally:
        events.close(0)
        sock.close(0)


def test_null_transport_refused():
    """A client or peer speaking NULL (protocol version 2) gets nothing; the node counts it
    and says why in its log, naming the versions. --transport null itself is refused unless
    the environment allows it."""
    with Net() as net:
        node = net.add().start()
        before = node.drops()["null_transport"]

        def null_client_refused():
            # libzmq reports the mismatch when it reads the client's greeting before the
            # client, which sees the mismatch too, resets the connection: try until it does.
            with Client(node.endpoint, timeout=1.0, null=True) as c:
                try:
                    c.request("status")
                    raise AssertionError("a NULL client was answered")
                except NoReply:
                    pass
            return node.drops()["null_transport"] > before

        wait_for("a null_transport drop", null_client_refused, timeout=60)
        wait_for("the log line", lambda: "protocol version 2, CURVE only" in node.log_text(),
                 timeout=30)
        env = dict(os.environ)
        env.pop(NULL_ENV, None)
        p = subprocess.run([SOSNODE,
                            "--data", os.path.join(net.dir, "x"), "--listen",
                            "tcp://127.0.0.1:%d" % free_port(), "--transport", "null"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and NULL_ENV in p.stderr, p.stderr
        p = subprocess.run([SOSNODE,
                            "--data", os.path.join(net.dir, "y"), "--listen",
                            "tcp://127.0.0.1:%d" % free_port(), "--genesis", node.endpoint],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "--print-id" in p.stderr, p.stderr


def test_sosctl_known_nodes():
    """sosctl refuses a bare endpoint it does not know (saying how to get the id), remembers
    the id of a node that answered, takes the bare endpoint then, and refuses that endpoint
    given with another id; a node whose key is not the id given never answers."""
    with Net() as net:
        node = net.add().start()
        known = os.path.join(net.dir, "known_nodes")
        env = dict(os.environ, SOSCTL_KNOWN_NODES=known)
        env.pop(NULL_ENV, None)

        def sosctl(target, timeout_ms=3000):
            return subprocess.run([SOSCTL, "--node", target, "--timeout", str(timeout_ms),
                                   "status"], env=env, capture_output=True, text=True,
                                  timeout=60)

        p = sosctl(node.endpoint)
        assert p.returncode != 0 and "--print-id" in p.stderr, p.stderr
        p = sosctl("%s@%s" % (node.node_id, node.endpoint))
        assert p.returncode == 0, p.stderr
        with open(known) as f:
            assert f.read().split() == [node.endpoint, node.node_id]
        p = sosctl(node.endpoint)
        assert p.returncode == 0 and node.node_id in p.stdout, p.stderr
        other = w.Identity()
        p = sosctl("%s@%s" % (other.hex, node.endpoint))
        assert p.returncode != 0 and "refusing a changed id" in p.stderr and known in p.stderr, \
            p.stderr
        # Not known, and the node there does not hold that id: no answer
        env["SOSCTL_KNOWN_NODES"] = os.path.join(net.dir, "other_known")
        p = sosctl("%s@%s" % (other.hex, node.endpoint), timeout_ms=1500)
        assert p.returncode != 0 and "does not hold id" in p.stderr, p.stderr
        assert not os.path.exists(env["SOSCTL_KNOWN_NODES"])


def test_handshake_flood():
    """Many CURVE handshakes from one address in a burst: those past the rate are refused
    and counted (handshakes_refused), and the node keeps answering."""
    with Net() as net:
        # --rate-limit on: off (the harness's default) lifts the rate per address
        node = net.add(extra=["--rate-limit", "on", "--max-handshakes", "20"]).start()
        ctx = zmq.Context.instance()
        total = 0
        for _ in range(8):
            socks = []
            for _ in range(100):
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                w.curve_client(s, node.node_id)
                s.connect(node.endpoint)
                s.send(w.request(1, "status", {}))
                socks.append(s)
            total += len(socks)
            time.sleep(0.5)
            for s in socks:
                s.close(0)
            if node.drops()["handshakes_refused"] > 0:
                break
        refused = wait_for("handshakes refused", lambda: node.drops()["handshakes_refused"],
                           timeout=30)
        assert 0 < refused < total, (refused, total)
        assert "past the handshake rate" in node.log_text()
        # Still serving, once the address's bucket refills
        wait_for("the node to answer again", lambda: node.ctl("status", timeout_ms=2000),
                 timeout=60)


def test_gossip_redials_after_refused_handshake():
    """A peer that refused our handshake (its connections from our address were at their
    cap) is dialled again: libzmq itself never retries a refused handshake, and without a
    new connection the two nodes would never meet."""
    with Net() as net:
        b = net.add(extra=["--rate-limit", "on", "--max-connections-per-address", "3"]).start()
        ctx = zmq.Context.instance()
        held = []
        for _ in range(3):  # the address's three connections, handshakes done
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            w.curve_client(s, b.node_id)
            s.connect(b.endpoint)
            s.send(w.request(1, "status", {}))
            assert s.poll(10000), "no answer on a held connection"
            s.recv()
            held.append(s)
        a = net.add().start()
        wait_for("a's exchanges with b to fail",
                 lambda: a.status()["gossip"]["exchanges_failed"] >= 2, timeout=60)
        for s in held:
            s.close(0)
        wait_for("a to exchange with b", lambda: a.status()["gossip"]["exchanges_ok"] >= 3,
                 timeout=60)
        wait_for("b to list a", lambda: a.node_id in b.workers(), timeout=60)

class ImpostorPeer(w.Worker):
    """A worker that answers every SYNC with an unsigned SYNC_ACK naming another sender: on
    the node's DEALER, keyed with this worker's id, that claim is a lie."""

    def __init__(self):
        super().__init__()
        self.other = w.Identity()
        self.answered = 0

    def answer(self, frame, env):
        if env["type"] != w.SYNC:
            return None
        self.answered += 1
        return w.envelope(self.other, w.SYNC_ACK, w.gmsg(req_id=env["body"]["req_id"]),
                          receiver=env["sender"], unsigned=True)


def test_unsigned_envelopes():
    """Nodes on CURVE send envelopes unsigned, and take an unsigned one only on the word of
    the connection: on their ROUTER from the sender's own key (another key is
    wrong_transport_key), on a DEALER from the id it was keyed with (another sender is
    wrong_sender). A signed envelope is still verified there. A node on the NULL transport
    signs, and refuses an unsigned envelope (bad_signature)."""
    with Net(extra=("--rate-limit", "off")) as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        st = a.status()["gossip"]
        assert st["envelopes_unsigned"] > 0, "a took no unsigned envelope from b"
        signer, other = w.Identity(), w.Identity()
        rec = w.worker_record(signer, 1, "tcp://127.0.0.1:%d" % free_port())

        def sync(req_id, **kw):
            return w.envelope(signer, w.SYNC, w.gmsg(req_id=req_id, self_rec=rec),
                              receiver=w.node_id_bytes(a.node_id), **kw)

        with w.Conn(a.endpoint, ident=signer) as conn:
            conn.send(sync(1, unsigned=True))
            reply = conn.recv(timeout=30)
            assert reply is not None, "no answer to an unsigned SYNC on the sender's key"
            ack = w.decode_envelope(reply)
            assert ack["type"] == w.SYNC_ACK and ack["unsigned"], "a signed its reply on CURVE"
            before = a.drops()
            conn.send(sync(2, signer=other))
            wait_for("a bad_signature drop",
                     lambda: a.drops()["bad_signature"] > before["bad_signature"], timeout=30)
            assert conn.recv(timeout=1.0) is None, "answered a signed SYNC that does not verify"
        before = a.drops()
        with w.Conn(a.endpoint, ident=other) as conn:
            conn.send(sync(3, unsigned=True))
            wait_for("a wrong_transport_key drop",
                     lambda: a.drops()["wrong_transport_key"] > before["wrong_transport_key"],
                     timeout=30)
            assert conn.recv(timeout=1.0) is None, "answered an unsigned SYNC on another key"

        with ImpostorPeer() as imp:
            before = a.drops()["wrong_sender"]
            imp.introduce(a)
            wait_for("a wrong_sender drop on a's DEALER to the impostor",
                     lambda: a.drops()["wrong_sender"] > before, timeout=60)
            assert imp.other.hex not in a.workers()
        assert a.alive() and b.alive()

    os.environ[NULL_ENV] = "1"
    try:
        with Net(extra=("--transport", "null", "--rate-limit", "off")) as net:
            node = net.add().start()
            me = w.Identity()

            def sync(req_id, unsigned):
                return w.envelope(me, w.SYNC, w.gmsg(req_id=req_id),
                                  receiver=w.node_id_bytes(node.node_id), unsigned=unsigned)

            with w.Conn(node.endpoint, null=True) as conn:
                before = node.drops()["bad_signature"]
                conn.send(sync(1, True))
                wait_for("a bad_signature drop on the NULL transport",
                         lambda: node.drops()["bad_signature"] > before, timeout=30)
                assert conn.recv(timeout=1.0) is None, "answered an unsigned SYNC over NULL"
                conn.send(sync(2, False))
                reply = conn.recv(timeout=30)
                assert reply is not None, "no answer to a signed SYNC over NULL"
                ack = w.decode_envelope(reply)
                assert ack["sig_ok"], "a node on NULL sent an envelope that does not verify"
    finally:
        os.environ.pop(NULL_ENV, None)

if __name__ == "__main__":
    run([test_curve_on_the_wire, test_wrong_transport_key_refused,
         test_man_in_the_middle_on_pinned_genesis, test_null_transport_refused,
         test_sosctl_known_nodes, test_handshake_flood,
         test_gossip_redials_after_refused_handshake, test_unsigned_envelopes])
