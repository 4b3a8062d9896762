"""test_gossip_buckets.py: the exchange by bucket between real nodes. Past 256 origins a
node answers a SYNC that does not match with a hash per bucket, not its whole digest; the
initiator asks for the entries of the buckets that differ (DIGEST) and diffs over those the
answer covers (DIGEST_ACK).

  convergence  two nodes that each hold 400 origins the other lacks (rooms of fresh
               identities, which only anti-entropy carries between them: they were taken
               before the two met) end with the same directory, by the bucket path
               (digests_by_bucket on one, digests_answered on the other);
  past 8192    a node that joins one holding more origins than one message can name
               (SOS_DIGEST_MAX) ends up holding every one of them;
  hostile      a peer that answers with broken bucket sums, or with entries outside the
               buckets asked, and a stranger that sends DIGESTs out of the blue: the bad
               ones are dropped and counted (digests_refused, drop_malformed,
               drop_oversized), good ones are answered within their bounds, and the node
               keeps converging with its honest peer.
"""

import os

import soswire as w
from sosclient import new_room_hash
from sosnet import Net, free_port, run, wait_for

FLOOD = 400  # above the whole-digest threshold (256 origins)


def counters(node):
    st = node.status()
    out = dict(st["gossip"])
    out.update({"drop_" + k: v for k, v in st["drops"].items()})
    return out


def dead_url():
    return "tcp://127.0.0.1:%d" % free_port()


def flood(node, n, batch=200):
    """Give node n rooms of n fresh identities by RUMOR; returns their origins."""
    url = dead_url()
    idents = [w.Identity() for _ in range(n)]
    recs = [w.room_record(i, 1, url, new_room_hash()) for i in idents]
    relay = w.Identity()
    before = counters(node)["rumors_in"]
    with w.Conn(node.endpoint) as conn:
        for i in range(0, len(recs), batch):
            conn.send(w.envelope(relay, w.RUMOR, w.gmsg(records=recs[i:i + batch]),
                                 receiver=node.node_id))
        wait_for("node %d to take the rumors" % node.index,
                 lambda: counters(node)["rumors_in"] >= before + (n + batch - 1) // batch)
    return {i.pk.hex() for i in idents}


def origins(node):
    return node.status()["origins"]


def test_two_large_directories_converge_by_bucket():
    with Net(interval=200) as net:
        a = net.add().start()
        b = net.add(genesis=[]).start()  # alone until it is restarted with a as genesis
        flood(a, FLOOD)
        flood(b, FLOOD)
        assert origins(a) > 256 and origins(b) > 256
        b.stop()
        b.genesis = [a.endpoint]
        b.start()
        total = 2 * FLOOD + 2
        wait_for("both nodes to hold every origin",
                 lambda: origins(a) == total and origins(b) == total, timeout=90)
        wait_for("both nodes to agree", lambda: net.converged([a, b]), timeout=60)
        # One exchange by bucket carries both ways (the DELTA gives what the answerer
        # lacks and asks for what it has), so the other side may find them in sync.
        ca, cb = counters(a), counters(b)
        assert ca["digests_by_bucket"] + cb["digests_by_bucket"] >= 1, (ca, cb)
        if ca["digests_by_bucket"]:
            assert cb["digests_answered"] >= 1
        if cb["digests_by_bucket"]:
            assert ca["digests_answered"] >= 1
        assert ca["digests_refused"] == 0 and cb["digests_refused"] == 0


def test_directory_past_one_message():
    """More origins than one digest message can name (8192): before, a SYNC_ACK carried the
    first 8192 and a node that joined never learned the rest by anti-entropy."""
    with Net(interval=200) as net:
        a = net.add().start()
        flood(a, 8300, batch=500)
        wait_for("a to hold them all", lambda: origins(a) == 8301)
        b = net.add().start()
        wait_for("the new node to hold every origin", lambda: origins(b) == origins(a),
                 timeout=180)
        assert counters(b)["digests_by_bucket"] >= 1
        assert counters(a)["digests_answered"] >= 1


# The origins the hostile peer claims: 2048 a bucket of 64, so that a node asks for only a
# few buckets at a time (its answer may hold 8192 entries) and some are left unasked.
N_CLAIMED = 64 * 2048


class BadBuckets(w.Worker):
    """A worker that answers every SYNC with bucket sums, broken in the way mode says, and
    every DIGEST with entries that are not of the buckets asked."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.digests = 0

    def answer(self, frame, env):
        body = env["body"]
        to = env["sender"]
        if env["type"] == w.SYNC:
            nb = 64
            sums = os.urandom(16 * nb)  # differs from anyone's
            if self.mode == "sums_and_digest":  # sums, and a digest beside them
                b = w.gmsg(req_id=body["req_id"], n_origins=N_CLAIMED, self_rec=self.record,
                           digest=[(os.urandom(32), 1)], buckets=(nb, [], sums))
            elif self.mode == "short_sums":  # fewer sums than buckets: does not decode
                b = w.gmsg(req_id=body["req_id"], n_origins=N_CLAIMED, self_rec=self.record,
                           buckets=(nb, [], sums[:-16]))
            elif self.mode == "huge_nb":  # 2048 buckets: over the cap
                b = w.gmsg(req_id=body["req_id"], n_origins=N_CLAIMED, self_rec=self.record,
                           buckets=(2048, [], os.urandom(16 * 2048)))
            else:  # good sums: the node sends a DIGEST
                b = w.gmsg(req_id=body["req_id"], n_origins=N_CLAIMED, self_rec=self.record,
                           buckets=(nb, [], sums))
            return w.envelope(self.ident, w.SYNC_ACK, b, receiver=to)
        if env["type"] == w.DIGEST:
            self.digests += 1
            nb, asked, _ = body["buckets"]
            if self.mode == "uncovered":  # covers a bucket it was not asked
                missing = [x for x in range(nb) if x not in asked]
                covered = sorted(asked[:1] + missing[:1])
                entries = []
            else:  # entries outside the buckets it says it covers
                covered = asked[:1]
                entries = []
                while len(entries) < 3:
                    o = os.urandom(32)
                    if w.bucket_of(o, nb) not in covered:
                        entries.append((o, 1))
                entries.sort()
            b = w.gmsg(req_id=body["req_id"], digest=entries, buckets=(nb, covered, b""))
            return w.envelope(self.ident, w.DIGEST_ACK, b, receiver=to)
        return None


def test_hostile_bucket_answers_are_counted():
    with Net(interval=200) as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        for mode, counter in (("sums_and_digest", "digests_refused"),
                              ("short_sums", "drop_malformed"),
                              ("huge_nb", "drop_oversized"),
                              ("outside", "digests_refused"),
                              ("uncovered", "digests_refused")):
            before = counters(a)
            with BadBuckets(mode) as bad:
                bad.introduce(a)
                wait_for("node a to count the %s answer" % mode,
                         lambda: counters(a)[counter] > before[counter], timeout=60)
                if mode in ("outside", "uncovered"):
                    assert bad.digests >= 1
            assert a.alive()
        # Still converging: a room made on b reaches a, and a's directory matches b's.
        room = b.ctl("room", "create", "--emojis", "🔥🌊", "--pin", "4711",
                     "--nickname", "owner")["room_hash"]
        wait_for("the room to reach a", lambda: room in a.rooms(), timeout=60)


def test_unsolicited_digests():
    """A stranger's DIGEST is answered like a SYNC is, with at most the node's entries of
    the buckets asked; one that names no bucket, or carries more, is refused."""
    with Net(interval=200) as net:
        a = net.add().start()
        flood(a, FLOOD)
        nb = 16
        stranger = w.Identity()
        with w.Conn(a.endpoint) as conn:
            conn.send(w.envelope(stranger, w.DIGEST, w.gmsg(req_id=5, buckets=(nb, [3, 9], b"")),
                                 receiver=a.node_id))
            got = conn.recv(15)
            assert got is not None, "no answer to a DIGEST"
            ack = w.decode_envelope(got)
            assert ack["sig_ok"] and ack["type"] == w.DIGEST_ACK and ack["body"]["req_id"] == 5
            bnb, covered, sums = ack["body"]["buckets"]
            assert bnb == nb and covered == [3, 9] and sums == b""
            entries = ack["body"]["digest"]
            assert entries and all(w.bucket_of(e[0], nb) in (3, 9) for e in entries)
            assert [e[0] for e in entries] == sorted(e[0] for e in entries)
            # a share of a's origins: about 2 buckets of 16
            assert len(entries) < origins(a) // 2

            before = counters(a)
            conn.send(w.envelope(stranger, w.DIGEST, w.gmsg(req_id=6, buckets=(nb, [], b"")),
                                 receiver=a.node_id))
            conn.send(w.envelope(stranger, w.DIGEST,
                                 w.gmsg(req_id=7, digest=[(os.urandom(32), 1)],
                                        buckets=(nb, [1], b"")), receiver=a.node_id))
            conn.send(w.envelope(stranger, w.DIGEST, w.gmsg(req_id=8, buckets=(nb, [2, 1], b"")),
                                 receiver=a.node_id))
            wait_for("the bad DIGESTs to be counted",
                     lambda: counters(a)["digests_refused"] >= before["digests_refused"] + 2 and
                     counters(a)["drop_malformed"] >= before["drop_malformed"] + 3)
            assert conn.recv(1) is None, "a refused DIGEST was answered"
        assert a.alive()


if __name__ == "__main__":
    run([test_two_large_directories_converge_by_bucket, test_directory_past_one_message,
         test_hostile_bucket_answers_are_counted, test_unsolicited_digests])
