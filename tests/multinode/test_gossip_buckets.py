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
               keeps converging with its honest peer;
  pieces       a bucket too large for one DIGEST_ACK (ids are free to choose: anyone can
               fill one) is covered piece by piece: an origin one node lacks inside it is
               found by anti-entropy alone; pieces asked by strangers are answered within
               bounds, hostile pieces refused. These nodes run with SOS_TEST_DIGEST_MAX=64,
               a setting for tests only that lowers the entries of one DIGEST_ACK from
               8,192 to 64, so that a hundred keys ground into one bucket (a few thousand
               key generations) stand for the 8,193 an attacker would grind;
  vectors      soswire's encoder gives the bytes of tests/vectors/wire.exp for the
               exchange by bucket.
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


def flood(node, n, batch=200, idents=None, recs=None):
    """Give node n rooms of n fresh identities by RUMOR (or the rooms recs of idents);
    returns their origins."""
    url = dead_url()
    idents = idents or [w.Identity() for _ in range(n)]
    recs = recs or [w.room_record(i, 1, url, new_room_hash()) for i in idents]
    n = len(recs)
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
            assert ack["authentic"] and ack["type"] == w.DIGEST_ACK and ack["body"]["req_id"] == 5
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


# Pieces: nodes whose DIGEST_ACKs carry at most PIECE_CAP entries (SOS_TEST_DIGEST_MAX).
PIECE_CAP = 64
PIECE_NB = 16  # the bucket count of 257..512 origins
PIECE_BUCKET = 5


def ground(n, nb=PIECE_NB, bucket=PIECE_BUCKET):
    """n identities whose ids fall in bucket of nb, as an attacker grinds them."""
    out = []
    while len(out) < n:
        i = w.Identity()
        if w.bucket_of(i.pk, nb) == bucket:
            out.append(i)
    return out


class capped_digests:
    """Nodes started inside run with SOS_TEST_DIGEST_MAX=PIECE_CAP."""

    def __enter__(self):
        os.environ["SOS_TEST_DIGEST_MAX"] = str(PIECE_CAP)

    def __exit__(self, *exc):
        os.environ.pop("SOS_TEST_DIGEST_MAX", None)


def test_origin_in_oversized_bucket_found_by_pieces():
    """Two nodes hold the same 400 origins, a hundred of them ground into one bucket (more
    than one DIGEST_ACK carries); a holds one more origin in that bucket, taken while b was
    not connected to it. b learns it by anti-entropy alone, through pieces of the bucket:
    with whole buckets only, that bucket was never covered and b never learned it."""
    with capped_digests(), Net(interval=200) as net:
        a = net.add().start()
        b = net.add(genesis=[]).start()  # alone until it is restarted with a as genesis
        url = dead_url()
        idents = [w.Identity() for _ in range(300)] + ground(100)
        recs = [w.room_record(i, 1, url, new_room_hash()) for i in idents]
        flood(a, 0, idents=idents, recs=recs)
        flood(b, 0, idents=idents, recs=recs)
        wait_for("both to hold the 400",
                 lambda: origins(a) == len(idents) + 1 and origins(b) == len(idents) + 1)
        # The one a alone holds: in the large bucket, at a random place in it.
        extra = ground(1)[0]
        room = new_room_hash()
        flood(a, 0, idents=[extra], recs=[w.room_record(extra, 1, url, room)])
        wait_for("a to hold it", lambda: origins(a) == len(idents) + 2)
        assert room not in b.rooms()
        b.stop()
        b.genesis = [a.endpoint]
        b.start()
        wait_for("b to learn the origin inside the large bucket", lambda: room in b.rooms(),
                 timeout=120)
        wait_for("both to agree", lambda: origins(a) == origins(b), timeout=60)
        ca, cb = counters(a), counters(b)
        assert ca["digests_pieces"] + cb["digests_pieces"] >= 1, (ca, cb)
        assert ca["digests_refused"] == 0 and cb["digests_refused"] == 0


class BadPieces(w.Worker):
    """A worker whose sums always differ, that covers no whole bucket asked (so that the
    node asks it for a piece), and answers the piece with an entry of another bucket."""

    def __init__(self):
        super().__init__()
        self.pieces = 0

    def answer(self, frame, env):
        body = env["body"]
        to = env["sender"]
        if env["type"] == w.SYNC:
            b = w.gmsg(req_id=body["req_id"], n_origins=300, self_rec=self.record,
                       buckets=(PIECE_NB, [], os.urandom(16 * PIECE_NB)))
            return w.envelope(self.ident, w.SYNC_ACK, b, receiver=to)
        if env["type"] == w.DIGEST:
            element = body["buckets"]
            if len(element) < 4:  # whole buckets: none fits, says this peer
                b = w.gmsg(req_id=body["req_id"], buckets=(PIECE_NB, [], b""))
            else:
                self.pieces += 1
                bucket, start, _ = element[3]
                stray = w.bucket_first(PIECE_NB, (bucket + 1) % PIECE_NB)
                b = w.gmsg(req_id=body["req_id"], digest=[(stray, 1)],
                           buckets=(PIECE_NB, [], b"", (bucket, start, None)))
            return w.envelope(self.ident, w.DIGEST_ACK, b, receiver=to)
        return None


def test_pieces_from_strangers_and_hostile_pieces():
    with Net(interval=200) as net:
        a = net.add().start()
        flood(a, FLOOD)
        nb = 16
        stranger = w.Identity()
        with w.Conn(a.endpoint) as conn:
            # A piece asked by anyone is answered, within its bucket, from its start on.
            start = w.bucket_first(nb, 3)[:1] + b"\x80" + bytes(30)
            conn.send(w.envelope(stranger, w.DIGEST,
                                 w.gmsg(req_id=5, buckets=(nb, [9], b"", (3, start, None))),
                                 receiver=a.node_id))
            got = conn.recv(15)
            assert got is not None, "no answer to a DIGEST asking a piece"
            ack = w.decode_envelope(got)
            assert ack["authentic"] and ack["type"] == w.DIGEST_ACK and ack["body"]["req_id"] == 5
            element = ack["body"]["buckets"]
            assert element[0] == nb and element[1] == [9] and len(element) == 4
            assert element[3] == [3, start, None]  # far below the cap: to the bucket's end
            entries = ack["body"]["digest"]
            assert entries and all(w.bucket_of(e[0], nb) in (3, 9) for e in entries)
            assert all(e[0] >= start for e in entries if w.bucket_of(e[0], nb) == 3)
            assert [e[0] for e in entries] == sorted(e[0] for e in entries)

            before = counters(a)
            # A piece that names a stop (a DIGEST asks from a start on), a start outside
            # its bucket, a piece of a bucket also named whole.
            conn.send(w.envelope(stranger, w.DIGEST,
                                 w.gmsg(req_id=6, buckets=(nb, [], b"", (3, start, start))),
                                 receiver=a.node_id))
            conn.send(w.envelope(stranger, w.DIGEST,
                                 w.gmsg(req_id=7, buckets=(nb, [], b"",
                                                           (3, w.bucket_first(nb, 4), None))),
                                 receiver=a.node_id))
            conn.send(w.envelope(stranger, w.DIGEST,
                                 w.gmsg(req_id=8, buckets=(nb, [3], b"", (3, start, None))),
                                 receiver=a.node_id))
            wait_for("the bad pieces to be counted",
                     lambda: counters(a)["digests_refused"] >= before["digests_refused"] + 1 and
                     counters(a)["drop_malformed"] >= before["drop_malformed"] + 3)
            assert conn.recv(1) is None, "a refused DIGEST was answered"

        # A peer that answers the node's pieces with entries outside them: refused.
        before = counters(a)
        with BadPieces() as bad:
            bad.introduce(a)
            wait_for("node a to ask a piece and refuse the answer",
                     lambda: bad.pieces >= 1 and
                     counters(a)["digests_refused"] > before["digests_refused"], timeout=60)
        assert a.alive()


def test_wire_vectors_by_bucket():
    """soswire builds the exchange by bucket's bodies, and a DELTA's envelope signed and
    unsigned, byte for byte as the node does (tests/vectors/wire.exp, written by
    tests/unit/test_wire_vectors.c)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors", "wire.exp")
    vec = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, hexbytes = line.split()
                vec[name] = bytes.fromhex(hexbytes)
    key, peer = vec["public_key"], vec["receiver_key"]
    two = [(key, 2, False), (peer, 5, True)]
    assert w.bucket_hash(two) == vec["bucket_hash"]
    assert w.bucket_hash([]) == vec["bucket_hash_empty"]
    assert w.gmsg(req_id=9, buckets=(2, [0, 1], b"")) == vec["gmsg_digest"]
    assert w.gmsg(req_id=9, digest=two, buckets=(2, [0], b"")) == vec["gmsg_digest_ack"]
    assert w.gmsg(req_id=10, buckets=(2, [], b"", (0, key, None))) == vec["gmsg_digest_piece"]
    assert (w.gmsg(req_id=10, digest=two, buckets=(2, [], b"", (0, key, peer))) ==
            vec["gmsg_digest_ack_piece"])
    # the DELTA's envelope, signed (the NULL transport) and unsigned (CURVE)
    ident = w.Identity(bytes(range(32)))
    assert ident.pk == key
    nonce = bytes(range(0xa0, 0xb0))
    for name, unsigned in (("envelope_delta", False), ("envelope_delta_unsigned", True)):
        assert w.envelope(ident, w.DELTA, vec["gmsg_delta"], ts=1700000000123, nonce=nonce,
                          receiver=peer, unsigned=unsigned) == vec[name], name


if __name__ == "__main__":
    run([test_wire_vectors_by_bucket, test_two_large_directories_converge_by_bucket,
         test_directory_past_one_message, test_hostile_bucket_answers_are_counted,
         test_unsolicited_digests, test_pieces_from_strangers_and_hostile_pieces,
         test_origin_in_oversized_bucket_found_by_pieces])
