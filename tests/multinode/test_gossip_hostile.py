"""test_gossip_hostile.py: a node facing a hostile peer on its public endpoint. Frames are
built in Python (soswire.py) independently of the C encoders; a valid exchange from a fresh
Python identity comes first and proves the encoder right, so that every rejection after it
is the node refusing a bad frame, not the test speaking a wrong dialect. After each attack
the node still answers, exactly the matching drop counter went up, and the honest directory
(workers, their records, the rooms) is as it was."""

import os
import random

from sosnet import Net, free_port, hold_for_rounds, run, wait_for
import soswire as w
from soswire import Conn, Identity, envelope, gmsg, worker_record

# Drop counters that honest gossip between live nodes never moves: an attack must move only
# the one it is expected to. ("unexpected" also counts late replies of honest exchanges.)
QUIET = ("malformed", "oversized", "bad_signature", "bad_version", "replay_window",
         "nonce_reused", "wrong_sender", "self", "bad_request", "wrong_receiver", "before_start")


def dead_url():
    return "tcp://127.0.0.1:%d" % free_port()


class Hostile:
    """Two honest nodes A (genesis) and B, a room owned by B, and the expected directory.
    --max-failures is high so that the Python workers (whose endpoints are dead) stay in
    the directory for the whole test and the expected set does not move under us."""

    def __init__(self, net):
        self.net = net
        self.a, self.b = net.start(2)
        wait_for("A and B to converge", net.converged)
        created = self.b.ctl("room", "create", "--emojis", "🆘🏠", "--pin", "1234",
                             "--nickname", "bo")
        self.room = created["room_hash"]
        wait_for("B's room in A's directory", lambda: self.room in self.a.rooms())
        self.workers = None
        self.rooms = None
        self.snapshot()

    def records(self, node):
        return {i: (r["url"], r["version"]) for i, r in node.workers().items()}

    def snapshot(self):
        """Take the current directory (equal on A and B) as the expected one."""
        wait_for("A and B to hold the same directory",
                 lambda: self.records(self.a) == self.records(self.b)
                 and set(self.a.rooms()) == set(self.b.rooms()))
        self.workers = self.records(self.a)
        self.rooms = set(self.a.rooms())
        self.removed = {n.index: n.status()["gossip"]["workers_removed"] for n in self.net.nodes}

    def check_intact(self):
        for n in (self.a, self.b):
            assert n.alive(), "node %d exited" % n.index
            st = n.status()
            assert self.records(n) == self.workers, "node %d directory changed: %r != %r" % (
                n.index, self.records(n), self.workers)
            assert set(n.rooms()) == self.rooms, "node %d rooms changed" % n.index
            assert st["gossip"]["workers_removed"] == self.removed[n.index], \
                "node %d removed a worker" % n.index

    def expect_drop(self, node, reason, send, n=1):
        """Run send(); wait until node counts n more drops of reason, and check that no
        other quiet counter moved and the honest directory is intact."""
        before = node.drops()
        send()
        wait_for("%d more %s drops on node %d" % (n, reason, node.index),
                 lambda: node.drops()[reason] >= before[reason] + n, timeout=30)
        after = node.drops()
        assert after[reason] == before[reason] + n, "%s: %d drops, expected %d" % (
            reason, after[reason] - before[reason], n)
        for other in QUIET:
            if other != reason:
                assert after[other] == before[other], "%s moved to %s (%d -> %d)" % (
                    reason, other, before[other], after[other])
        self.check_intact()


def reply_to(req_id, msg_type):
    def pred(frame):
        env = w.decode_envelope(frame)
        return env["type"] == msg_type and env["body"]["req_id"] == req_id
    return pred


def sync_from(ident, req_id, url=None, version=1, receiver=None, **kw):
    rec = worker_record(ident, version, url) if url else None
    return envelope(ident, w.SYNC, gmsg(req_id=req_id, self_rec=rec, **kw), receiver=receiver)


def positive_control(h, conn):
    """A valid SYNC from a fresh identity adds it as a worker; returns that identity."""
    p = Identity()
    conn.send(sync_from(p, 7, dead_url(), receiver=h.a.node_id))
    frame = conn.recv_where(reply_to(7, w.SYNC_ACK), timeout=20)
    assert frame is not None, "no SYNC_ACK to a valid SYNC"
    ack = w.decode_envelope(frame)
    assert ack["authentic"] and ack["sender"].hex() == h.a.node_id
    self_fields, self_ok = w.decode_record(ack["body"]["self"])
    assert self_ok and self_fields[0] == w.REC_WORKER and self_fields[4] == h.a.endpoint
    wait_for("the Python worker on A and B",
             lambda: p.hex in h.a.workers() and p.hex in h.b.workers())
    h.snapshot()
    return p


# ---------------------------------------------------------------------- tests ----

def test_valid_frames_accepted():
    """The positive controls: SYNC (self record taken, SYNC_ACK signed by the node), DELTA
    (want answered with the origin's signed records), RUMOR (a relayed record taken, a newer
    version of a worker replaces the older)."""
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        h = Hostile(net)
        with Conn(h.a.endpoint) as conn:
            p = positive_control(h, conn)
            assert h.a.workers()[p.hex]["version"] == 1

            b_id = bytes.fromhex(h.b.node_id)
            conn.send(envelope(p, w.DELTA, gmsg(req_id=9, want=[(b_id, 0)]), receiver=h.a.node_id))
            frame = conn.recv_where(reply_to(9, w.DELTA_ACK), timeout=20)
            assert frame is not None, "no DELTA_ACK"
            ack = w.decode_envelope(frame)
            assert ack["authentic"]
            recs = [w.decode_record(r) for r in ack["body"]["records"]]
            assert all(ok for _, ok in recs), "a record in DELTA_ACK does not verify"
            assert all(f[1] == b_id for f, _ in recs)
            kinds = {f[0]: f for f, _ in recs}
            assert kinds[w.REC_WORKER][4] == h.b.endpoint
            assert kinds[w.REC_ROOM][5] == h.room

            q = Identity()
            q_url = dead_url()
            conn.send(envelope(p, w.RUMOR, gmsg(records=[worker_record(q, 1, q_url)]), receiver=h.a.node_id))
            wait_for("a relayed worker on A and B",
                     lambda: q.hex in h.a.workers() and q.hex in h.b.workers())
            new_url = dead_url()
            conn.send(envelope(p, w.RUMOR, gmsg(records=[worker_record(p, 2, new_url)]), receiver=h.a.node_id))
            wait_for("P's version 2 on A and B", lambda: all(
                n.workers()[p.hex]["version"] == 2 and n.workers()[p.hex]["url"] == new_url
                for n in (h.a, h.b)))
            h.snapshot()
            h.check_intact()
            assert sum(h.a.drops()[r] for r in QUIET) == 0


def test_garbage_frames():
    """Random bytes, truncated envelopes, an empty frame, multipart messages, a frame over
    the node's ceiling, and one over libzmq's own limit."""
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        h = Hostile(net)
        a = h.a
        rng = random.Random(4711)
        with Conn(a.endpoint) as conn:
            p = positive_control(h, conn)

            # bytes that are not a msgpack array with a known kind first
            junk = [bytes([rng.choice([0x00, 0x7f, 0x80, 0xa5, 0xc1, 0xcc, 0xff])])
                    + os.urandom(rng.randrange(0, 300)) for _ in range(100)]
            junk += [b"", b"\x90", b"\x91\x00", b"\x91\x04", b"\x93\xcc\x07", b"\xdd\xff\xff\xff\xff"]
            h.expect_drop(a, "malformed", lambda: [conn.send(j) for j in junk], n=len(junk))

            # pure random bytes: each is dropped once, for whatever reason
            before = a.drops()
            rand = [os.urandom(rng.randrange(1, 200)) for _ in range(100)]
            for r in rand:
                conn.send(r)
            wait_for("100 random frames dropped", lambda: sum(a.drops().values())
                     >= sum(before.values()) + len(rand), timeout=30)
            h.check_intact()

            # every proper prefix of a valid envelope
            valid = sync_from(p, 21, receiver=h.a.node_id)
            cuts = list(range(1, len(valid), 5)) + [len(valid) - 1]
            h.expect_drop(a, "malformed", lambda: [conn.send(valid[:c]) for c in cuts],
                          n=len(cuts))

            # multipart: dropped whole, its valid first part not acted upon, as the nonce
            # shows: the same envelope sent alone afterwards is accepted
            h.expect_drop(a, "malformed", lambda: (conn.send_multipart([valid, b"tail"]),
                                                   conn.send_multipart([valid, valid, valid])),
                          n=2)
            conn.send(valid)
            assert conn.recv_where(reply_to(21, w.SYNC_ACK), timeout=20) is not None, \
                "the envelope of a dropped multipart message was remembered"

            # over the node's ceiling (1.1 MiB), under libzmq's (twice that)
            big = os.urandom(w.FRAME_MAX + 1)
            h.expect_drop(a, "oversized", lambda: conn.send(big))
            big_env = envelope(p, w.RUMOR, os.urandom(w.FRAME_MAX), receiver=h.a.node_id)
            h.expect_drop(a, "oversized", lambda: conn.send(big_env))

        # over libzmq's limit: the connection is closed under the sender; no counter moves
        with Conn(a.endpoint) as conn:
            before = a.drops()
            conn.send(os.urandom(2 * w.FRAME_MAX + 1024))
            conn.send(sync_from(p, 22, receiver=h.a.node_id))  # lost with the connection, or answered
        with Conn(a.endpoint) as conn:
            conn.send(sync_from(p, 23, receiver=h.a.node_id))
            assert conn.recv_where(reply_to(23, w.SYNC_ACK), timeout=20) is not None, \
                "no answer on a new connection after an over-limit frame"
        after = a.drops()
        assert all(after[r] == before[r] for r in QUIET), (before, after)
        h.check_intact()


def test_bad_envelopes():
    """Signatures, senders, versions, types, the replay window, nonces, our own key, and
    frames in the wrong direction."""
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        h = Hostile(net)
        a = h.a
        with Conn(a.endpoint) as conn:
            p = positive_control(h, conn)
            other = Identity()
            b_id = bytes.fromhex(h.b.node_id)

            def flip(frame, pos):
                return frame[:pos] + bytes([frame[pos] ^ 0x01]) + frame[pos + 1:]

            good = sync_from(p, 31, dead_url(), receiver=h.a.node_id)
            h.expect_drop(a, "bad_signature", lambda: conn.send(flip(good, len(good) - 1)))
            h.expect_drop(a, "bad_signature", lambda: conn.send(flip(good, 20)))  # the sender
            # signed by one key, claiming to be another (a stranger, or honest B)
            h.expect_drop(a, "bad_signature", lambda: (
                conn.send(envelope(p, w.SYNC, gmsg(req_id=32), sender=other.pk, receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=33), sender=b_id, receiver=h.a.node_id)),
                conn.send(envelope(p, w.LEAVE, gmsg(), sender=b_id, receiver=h.a.node_id))), n=3)
            # a signature of the wrong length does not even parse
            kind, signed, sig = w.unpack(good)
            h.expect_drop(a, "malformed", lambda: conn.send(w.pack([kind, signed, sig[:63]])))

            # a node of protocol version 1 is refused, and the log names its version (first: drop
            # lines are rate-limited per reason)
            h.expect_drop(a, "bad_version", lambda: (
                conn.send(w.envelope_v1(p, w.SYNC, gmsg(req_id=34))),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=34), version=1, receiver=h.a.node_id))),
                n=2)
            wait_for("the log to name version 1",
                     lambda: "envelope of protocol version 1 (we speak 2)" in a.log_text())
            h.expect_drop(a, "bad_version", lambda: (
                conn.send(envelope(p, w.SYNC, gmsg(req_id=34), version=3, receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=35), version=0, receiver=h.a.node_id)),
                conn.send(envelope(p, 0, gmsg(req_id=36), receiver=h.a.node_id)),
                conn.send(envelope(p, 13, gmsg(req_id=37), receiver=h.a.node_id)),  # past DIGEST_ACK
                conn.send(envelope(p, 200, gmsg(req_id=38), receiver=h.a.node_id))), n=5)

            # bound to another node (B), or to nobody where only a first SYNC may be
            h.expect_drop(a, "wrong_receiver", lambda: (
                conn.send(sync_from(p, 50, receiver=h.b.node_id)),
                conn.send(envelope(p, w.RUMOR, gmsg(records=[worker_record(other, 1, dead_url())]),
                                   receiver=h.b.node_id)),
                conn.send(envelope(p, w.LEAVE, gmsg(), receiver=os.urandom(32))),
                conn.send(envelope(p, w.DELTA, gmsg(req_id=51, want=[(b_id, 0)]))),
                conn.send(envelope(p, w.RUMOR, gmsg(records=[worker_record(other, 1, dead_url())]))),
                conn.send(envelope(p, w.LEAVE, gmsg()))), n=6)
            assert other.hex not in a.workers() and p.hex in a.workers()
            # signed as a record, or with no domain: not an envelope's signature
            h.expect_drop(a, "bad_signature", lambda: (
                conn.send(envelope(p, w.SYNC, gmsg(req_id=52), receiver=h.a.node_id,
                                   domain=w.DOMAIN_RECORD)),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=53), receiver=h.a.node_id,
                                   domain=None))), n=2)
            # a SYNC bound to nobody is answered (bound to its sender), and does nothing else:
            # its self record is not taken
            z = Identity()
            with Conn(a.endpoint, ident=z) as zconn:  # z's own transport key
                zconn.send(envelope(z, w.SYNC, gmsg(req_id=54, self_rec=worker_record(
                    z, 1, dead_url()), suspects=[(b_id, 1 << 40)])))
                frame = zconn.recv_where(reply_to(54, w.SYNC_ACK), timeout=20)
            assert frame is not None, "no SYNC_ACK to a first SYNC bound to nobody"
            ack = w.decode_envelope(frame)
            assert ack["authentic"] and ack["receiver"] == z.pk and ack["sender"].hex() == a.node_id
            hold_for_rounds("the unbound SYNC's self record not taken",
                            lambda: z.hex not in a.workers(), [a], 5)

            window = w.REPLAY_WINDOW_MS
            h.expect_drop(a, "replay_window", lambda: (
                conn.send(envelope(p, w.SYNC, gmsg(req_id=39), ts=w.now_ms() - window - 60000, receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=40), ts=w.now_ms() + window + 60000, receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=41), ts=0, receiver=h.a.node_id))), n=3)

            # the same envelope twice: the first is answered, the second refused; a new
            # envelope that reuses the nonce is refused too
            nonce = os.urandom(16)
            once = envelope(p, w.SYNC, gmsg(req_id=42), nonce=nonce, receiver=h.a.node_id)
            conn.send(once)
            assert conn.recv_where(reply_to(42, w.SYNC_ACK), timeout=20) is not None
            h.expect_drop(a, "nonce_reused", lambda: (
                conn.send(once),
                conn.send(envelope(p, w.SYNC, gmsg(req_id=43), nonce=nonce, receiver=h.a.node_id))), n=2)

            # signed with the node's own key
            a_ident = Identity.from_data_dir(a.data)
            assert a_ident.hex == a.node_id
            h.expect_drop(a, "self", lambda: conn.send(
                envelope(a_ident, w.RUMOR, gmsg(records=[worker_record(a_ident, 99, dead_url())]), receiver=h.a.node_id)))
            assert a.status()["record_version"] < 99

            # replies sent as requests, and a client reply frame sent to a node
            before = a.drops()["unexpected"]
            conn.send(envelope(p, w.SYNC_ACK, gmsg(req_id=44), receiver=h.a.node_id))
            conn.send(envelope(p, w.DELTA_ACK, gmsg(req_id=45), receiver=h.a.node_id))
            conn.send(w.pack([w.FRAME_REPLY, 46, "ok", {}]))
            wait_for("3 unexpected drops", lambda: a.drops()["unexpected"] >= before + 3)
            h.check_intact()

            # bodies that break the gossip message rules inside a valid envelope
            h.expect_drop(a, "malformed", lambda: (
                conn.send(envelope(p, w.SYNC, b"\xc1", receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, b"", receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, w.pack([1, 0, bytes(16), 0]), receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, w.pack([1, 0, bytes(15), 0, None, [], [], [], []]), receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, w.pack([-1, 0, bytes(16), 0, None, [], [], [], []]), receiver=h.a.node_id)),
                conn.send(envelope(p, w.SYNC, w.pack([1, 0, bytes(16), 0, None, [b"x"], [], [], []]), receiver=h.a.node_id)),
                conn.send(envelope(p, w.RUMOR, gmsg(records=[b"\x92\xc4\x00\xc4\x00"]), receiver=h.a.node_id)),
                conn.send(envelope(p, w.RUMOR, w.pack([0, 0, bytes(16), 0, None, [], [], [], ["x"]]), receiver=h.a.node_id))),
                n=8)
            h.expect_drop(a, "oversized", lambda: (
                conn.send(envelope(p, w.SYNC, gmsg(req_id=47, suspects=[os.urandom(32)] * 17), receiver=h.a.node_id)),
                conn.send(envelope(p, w.DELTA, gmsg(req_id=48, want=[(os.urandom(32), 0)] * 8193), receiver=h.a.node_id)),
                conn.send(envelope(p, w.RUMOR, gmsg(records=[worker_record(other, 1, dead_url())]
                                                    * 513), receiver=h.a.node_id))), n=3)
            assert other.hex not in a.workers()
            # still talking to honest peers: a valid SYNC is answered
            conn.send(sync_from(p, 49, receiver=h.a.node_id))
            assert conn.recv_where(reply_to(49, w.SYNC_ACK), timeout=20) is not None


def test_forged_records():
    """Records whose signature is not their origin's, a self record of another node, forged
    room and worker updates, a forged LEAVE, and suspicion of a live node."""
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        h = Hostile(net)
        a, b = h.a, h.b
        with Conn(a.endpoint) as conn:
            p = positive_control(h, conn)
            f = Identity()  # the forged worker: never signs anything itself
            b_ident = Identity(os.urandom(32))
            b_ident.pk = bytes.fromhex(b.node_id)  # B's id, with a key that is not B's
            forged = worker_record(f, 1, dead_url(), signer=p)
            valid_other = worker_record(f, 1, dead_url())  # F's own, valid record

            h.expect_drop(a, "bad_signature", lambda: conn.send(
                envelope(p, w.SYNC, gmsg(req_id=51, records=[forged]), receiver=h.a.node_id)))
            h.expect_drop(a, "bad_signature", lambda: conn.send(
                envelope(p, w.SYNC, gmsg(req_id=52, self_rec=worker_record(p, 5, dead_url(),
                                                                           signer=f)), receiver=h.a.node_id)))
            h.expect_drop(a, "bad_signature", lambda: conn.send(
                envelope(p, w.DELTA, gmsg(req_id=53, records=[forged]), receiver=h.a.node_id)))
            # one forged record rejects the whole message, the valid ones in it too
            g = Identity()
            h.expect_drop(a, "bad_signature", lambda: conn.send(
                envelope(p, w.RUMOR, gmsg(records=[worker_record(g, 1, dead_url()), forged]), receiver=h.a.node_id)))
            # a takeover of B: a newer B record at another endpoint, not signed by B
            h.expect_drop(a, "bad_signature", lambda: conn.send(envelope(p, w.RUMOR, gmsg(
                records=[worker_record(b_ident, 1000, dead_url(), signer=p,
                                       origin=b_ident.pk)]), receiver=h.a.node_id)))
            # a room of B's, signed by someone else
            h.expect_drop(a, "bad_signature", lambda: conn.send(envelope(p, w.RUMOR, gmsg(
                records=[w.room_record(b_ident, 1000, dead_url(), "0123456789abcdef",
                                       signer=p)]), receiver=h.a.node_id)))
            # a valid record of F presented as the sender's own
            h.expect_drop(a, "wrong_sender", lambda: conn.send(
                envelope(p, w.SYNC, gmsg(req_id=54, self_rec=valid_other), receiver=h.a.node_id)))
            for n in (a, b):
                assert f.hex not in n.workers() and g.hex not in n.workers()
                assert "0123456789abcdef" not in n.rooms()

            # suspicion cannot remove a live node: name B (and A) in many SYNCs
            rounds0 = a.status()["gossip"]["rounds"]
            for i in range(20):
                conn.send(envelope(p, w.SYNC, gmsg(req_id=60 + i, suspects=[
                    bytes.fromhex(b.node_id), bytes.fromhex(a.node_id)]), receiver=h.a.node_id))
            wait_for("10 rounds on A", lambda: a.status()["gossip"]["rounds"] >= rounds0 + 10)
            assert a.workers()[b.node_id]["fail_count"] == 0
            h.check_intact()

            # the positive control for LEAVE: P's own LEAVE removes P from A
            conn.send(envelope(p, w.LEAVE, gmsg(), receiver=h.a.node_id))
            wait_for("P removed from A after its LEAVE", lambda: p.hex not in a.workers())
            assert a.status()["gossip"]["workers_removed"] == h.removed[a.index] + 1
            assert b.node_id in a.workers()


def test_worker_claims_live_endpoint():
    """A worker record, validly signed by its own (the attacker's) key, that names the
    endpoint of a live worker, or of the receiving node itself. Nobody can exchange with such
    a worker, so it could never fail and would stay listed for good: every node refuses it
    at once, and keeps refusing the copies relayed later."""
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        h = Hostile(net)
        a, b = h.a, h.b
        wait_for("A's exchanges with B to succeed",
                 lambda: a.workers()[b.node_id]["last_ok"] > 0)
        ghosts = [Identity(), Identity()]
        removed0 = {n.index: n.status()["gossip"]["workers_removed"] for n in (a, b)}
        with Conn(a.endpoint) as conn:
            conn.send(envelope(ghosts[0], w.RUMOR, gmsg(
                records=[worker_record(ghosts[0], 1, b.endpoint),
                         worker_record(ghosts[1], 1, a.endpoint)]), receiver=h.a.node_id))
            wait_for("both refused on A", lambda: a.status()["gossip"]["workers_removed"]
                     == removed0[a.index] + 2)
            # relayed again, and sent by the ghost itself: refused again, no new removal
            tomb0 = a.status()["gossip"]["merge_tombstoned"]
            conn.send(envelope(ghosts[0], w.SYNC, gmsg(
                req_id=5, self_rec=worker_record(ghosts[0], 1, b.endpoint)), receiver=h.a.node_id))
            assert conn.recv_where(reply_to(5, w.SYNC_ACK), timeout=20) is not None
            with Conn(a.endpoint) as relay:  # another sender, on its own connection
                relay.send(envelope(Identity(), w.RUMOR, gmsg(
                    records=[worker_record(ghosts[1], 1, a.endpoint)]), receiver=h.a.node_id))
            wait_for("the relayed copy refused",
                     lambda: a.status()["gossip"]["merge_tombstoned"] >= tomb0 + 1)
        hold_for_rounds("no ghost listed", lambda: all(
            g.hex not in n.workers() for g in ghosts for n in (a, b)), [a, b], 10)
        assert a.status()["gossip"]["workers_removed"] == removed0[a.index] + 2
        assert b.status()["gossip"]["workers_removed"] == removed0[b.index]
        assert a.workers()[b.node_id]["url"] == b.endpoint
        assert b.workers()[a.node_id]["url"] == a.endpoint
        wait_for("A and B still exchange", lambda: a.workers()[b.node_id]["fail_count"] == 0
                 and b.workers()[a.node_id]["fail_count"] == 0)


def test_client_garbage():
    """Client requests with arguments of the wrong types or values get error replies;
    requests that do not decode are counted as bad_request; the node keeps serving."""
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        h = Hostile(net)
        a, b = h.a, h.b

        def ask(conn, req_id, op, args, flags=0):
            conn.send(w.request(req_id, op, args, flags))
            frame = conn.recv_where(lambda fr: w.unpack(fr)[1] == req_id, timeout=20)
            assert frame is not None, "no reply to request %d (%s)" % (req_id, op)
            kind, rid, status, body = w.unpack(frame)
            assert kind == w.FRAME_REPLY and rid == req_id
            return status, body

        with Conn(b.endpoint) as conn:
            cases = [
                ("join", {"room_hash": [1, 2, 3]}, "invalid_room_hash"),
                ("join", {"room_hash": "0123456789ABCDEF"}, "invalid_room_hash"),
                ("join", {"room_hash": h.room, "nickname": 12}, "bad_request"),
                ("join", {"room_hash": h.room, "nickname": b"\xff\xfe"}, "bad_request"),
                ("join", {"room_hash": h.room, "nickname": "x" * 5000}, "too_large"),
                ("send", {"room_hash": h.room, "member_id": 5, "content": [1]}, "not_member"),
                ("send", {"room_hash": h.room, "member_id": "z" * 32, "content": None},
                 "not_member"),
                ("poll", {"room_hash": h.room, "member_id": {"a": 1}, "since": "x"}, None),
                ("create", {"room_hash": "zz"}, "invalid_room_hash"),
                ("create", {"room_hash": "0123456789abcdef", "emojis": 7}, "bad_request"),
                ("create", {"room_hash": "0123456789abcdef", "emojis": "not emoji"},
                 "bad_request"),
                ("rooms", {"limit": "ten"}, "bad_request"),
                ("rooms", {"limit": 0}, "bad_request"),
                ("rooms", {"after": 5}, "invalid_room_hash"),
                ("nosuchop", {}, "bad_request"),
                ("", {}, "bad_request"),
            ]
            for i, (op, args, want) in enumerate(cases):
                status, body = ask(conn, 100 + i, op, args)
                assert status != "ok", "%s %r succeeded" % (op, args)
                if want:
                    assert status == want, "%s %r: %s, expected %s" % (op, args, status, want)
                assert isinstance(body.get("error"), str)
            status, body = ask(conn, 200, "status", {"junk": {"x": [None, 1.5, b"\x00"]}})
            assert status == "ok" and body["node_id"] == b.node_id
            status, body = ask(conn, 201, "workers", {"after": [1], "limit": -1})
            assert status == "ok" and {x["node_id"] for x in body["workers"]} == set(h.workers)

            # frames of kind "request" that do not decode as one
            bad = [
                w.pack([2, 300, "status", [1, 2], 0]),       # args not a map
                w.pack([2, 301, "status", {}, -1]),          # flags negative
                w.pack([2, 302, "status", {}, 1 << 40]),     # flags over 32 bits
                w.pack([2, 303, "x" * 17, {}, 0]),           # op too long
                w.pack([2, 304, "status", {}]),              # a field missing
                w.pack([2, -5, "status", {}, 0]),            # req_id negative
                w.pack([2, 306, b"status", {}, 0]),          # op as bin
            ]
            h.expect_drop(b, "bad_request", lambda: [conn.send(x) for x in bad], n=len(bad))
            # each one whose request id can be read is answered, so no client waits in vain
            answered = {}
            for _ in range(len(bad) - 1):
                frame = conn.recv(timeout=20)
                assert frame is not None, "a bad request with a readable id got no answer"
                kind, rid, status, body = w.unpack(frame)
                answered[rid] = status
            assert answered == {rid: "bad_request" for rid in (300, 301, 302, 303, 304, 306)}
        # still serving clients: the room works end to end through A
        joined = a.ctl("room", "join", h.room, "--nickname", "cy")
        sent = a.ctl("room", "send", h.room, "--member", joined["member_id"], "--emojis",
                     "🆘🏠", "--pin", "1234", "still here")
        assert sent["seq"] == 1
        polled = b.ctl("room", "poll", h.room, "--member", joined["member_id"], "--emojis",
                       "🆘🏠", "--pin", "1234")
        assert [m["text"] for m in polled["messages"]] == ["still here"]
        h.check_intact()


if __name__ == "__main__":
    run([test_valid_frames_accepted, test_garbage_frames, test_bad_envelopes,
         test_forged_records, test_worker_claims_live_endpoint, test_client_garbage])
