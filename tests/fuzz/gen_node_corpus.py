#!/usr/bin/env python3
"""gen_node_corpus.py: write the seed corpus of fuzz_node (tests/fuzz/corpus/node/), programs
of real exchanges in the program format that tests/fuzz/fuzz_node.c reads: a node joins
through its genesis, gossips with fake peers, takes and serves rooms, forwards to another
owner, sees peers leave and time pass.

Usage: tests/fuzz/gen_node_corpus.py [DIR]   (default: the corpus directory beside it)
"""
import os
import sys

# opcodes (S_OP_ in fuzz_node.c)
CLOCK, ROUND, TICK, HOUSEKEEPING, PEER_SEND, ANSWER, CLIENT, RAW = range(8)
# message types as PEER_SEND indexes them
SYNC, DELTA, RUMOR, LEAVE, SYNC_ACK, DELTA_ACK = range(6)
DIGEST, DIGEST_ACK = 9, 10
# record signers: fake peers 0..3, 4 = the node itself; urls: endpoints 0..2 listen,
# 3 has nobody, 4 is the node's own
NODE = 4


def u8(v):
    return bytes([v & 0xFF])


def u64(v):
    b = v.to_bytes(8, "big").lstrip(b"\0") if v else b""
    return u8(len(b)) + b


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return u8(len(b)) + b


def worker(signer, version, url, prev=None, http=None, back=0, ahead=10):
    """A worker record of signer at endpoint url (an index), version 1..8."""
    flags = 0
    out = b""
    if http is not None:
        flags |= 16
    out += u8(flags) + u8(signer) + u8(version - 1)
    if version > 1:
        p = version - 1 - (prev if prev is not None else version - 1)
        out += u8(p)  # prev = version - 1 - p
    out += u8(url)
    if http is not None:
        out += u8(http)
    out += u8(back) + u8(ahead)
    return out


FUZZ_NOW_MS = 1700000000000  # the clock every program starts at (fuzz_common.h)


def room(signer, version, url, room_idx, emojis=(0,), desc="a room", back=0, ahead=10,
         created=None, expires=None):
    """A room record; created and expires (ms since the epoch) replace back and ahead
    (units of 340 s before and after the program's now)."""
    out = u8(1 | (32 if created is not None else 0)) + u8(signer) + u8(version - 1)
    if version > 1:
        out += u8(0)  # prev = version - 1
    out += u8(url) + u8(room_idx) + u8(len(emojis))
    for e in emojis:
        out += u8(e)
    out += s(desc)
    if created is not None:
        out += u64(created) + u64(expires)
    else:
        out += u8(back) + u8(ahead)
    return out


def entries(pairs):
    out = u8(len(pairs))
    for signer, version in pairs:
        out += u8(signer) + u8(version)  # version < 10
    return out


FIRST = 0  # a piece's origin: the bucket's first (s_piece_origin's choices)


def buckets(nb_exp, numbers=(), differ=None, piece=None, to=None):
    """The bucket element (s_buckets in fuzz_node.c): nb = 2^nb_exp, ascending bucket
    numbers, sums (the node's own, those in differ changed) when differ is not None, and a
    piece of bucket piece from its first origin, to its end or (to = FIRST) to that."""
    f = (1 if differ is not None else 0) | (2 if piece is not None else 0) | \
        (4 if piece is not None and to is None else 0)
    out = u8(f) + u8(nb_exp) + u8(len(numbers)) + u8(numbers[0] if numbers else 0)
    for a, b in zip(numbers, list(numbers[1:]) + [1 << nb_exp]):
        out += u8(min(b - a - 1, 255))
    if differ is not None:
        out += u8(len(differ)) + b"".join(u8(d >> 8) + u8(d) for d in differ)
    if piece is not None:
        out += u8(piece) + u8(FIRST)
        if to is not None:
            out += u8(to)
    return out


def digest_ack(covered=None, stop=False, n_node=2):
    """An answer to the node's DIGEST built from what it asked (s_body_digest_ack): every
    bucket covered (or, with covered, bucket i covered when covered[i]), the node's own
    n_node entries and the fake peers' keys in it, a piece stopped at its last entry."""
    f = (2 if covered is not None else 0) | (16 if stop else 0)
    out = u8(f)
    for c in covered or ():
        out += u8(1 if c else 0)
    out += (u8(1) + u8(0)) * n_node  # each of the node's entries, at its version
    out += u8(1) * 5  # the five keys at version 1
    return out


def body(records=(), digest=(), want=(), suspects=(), flags=0, hash16=None, n_origins=0,
         self_rec=None, req_id=None, bucket_el=None):
    """A gossip body: flags bit 1 IN_SYNC, bit 2 MORE; hash16 makes the digest hash differ;
    bucket_el (buckets()) the exchange by bucket's element."""
    f = (flags & 3) << 1
    if bucket_el is not None:
        f |= 32
    out = b""
    if req_id is not None:
        f |= 1
    if hash16 is not None:
        f |= 8
    if self_rec is not None:
        f |= 16
    out += u8(f)
    if req_id is not None:
        out += u64(req_id)
    if hash16 is not None:
        out += s(hash16) + u8(n_origins)
    if self_rec is not None:
        out += self_rec
    out += entries(suspects) + entries(digest) + entries(want)
    if bucket_el is not None:
        out += bucket_el
    out += u8(len(records)) + b"".join(records)
    return out


ENV = u8(0)  # an envelope bound to the node, dated now, with a fresh nonce

IN_SYNC, MORE = 1, 2


def peer_send(k, mtype, b, env=ENV):
    return u8(PEER_SEND) + u8(k) + u8(mtype) + b + env


def answer(port, signer, b, env=ENV):
    """Answer the SYNC or DELTA the node sent to endpoint port, signed by signer."""
    return u8(ANSWER) + u8(port) + u8(signer << 2) + b + env


def answer_forward(port, status=0, text="ok"):
    """Answer a forwarded room request: status 0 ok, 1 room_not_found, 2 not_member."""
    return u8(ANSWER) + u8(port) + u8(status << 2) + s(text)


OPS = ["create", "join", "send", "poll", "leave", "info", "rooms", "workers", "status"]


def client(c, op, room_idx=0, emojis=None, desc=None, nick=None, member=False, content=None,
           msg_id=None, since=None, forwarded=False, wait_s=None):
    flags = 16 if forwarded else 0
    present = 0
    tail = b""
    if emojis is not None:
        present |= 1
        flags |= 4
        tail += s(emojis)
    if desc is not None:
        present |= 2
        tail += s(desc)
    if nick is not None:
        present |= 4
        tail += s(nick)
    if member:
        present |= 8  # the member_id the node last gave this client
    if content is not None:
        present |= 16
        tail += s(content)
    if msg_id is not None:
        present |= 32
        tail += s(msg_id)
    if since is not None:
        present |= 64
        tail += u64(since)
    if wait_s is not None:
        present |= 128
        tail += u8(wait_s)
    return u8(CLIENT) + u8(c) + u8(flags) + u8(OPS.index(op)) + u8(present) + u8(room_idx) + tail


def clock(ms):
    """Both clocks advance by ms: below 10 minutes, or below a day with the opcode's flag."""
    return u8(CLOCK | (0x80 if ms >= 600000 else 0)) + u64(ms)


def join():
    """Setup, then the node joins through genesis endpoint 0 (fake peer 0), which holds
    fake peer 0's worker record and a room of it."""
    p = u8(0)  # setup: no rate limit, unpinned genesis
    p += u8(ROUND) + u8(TICK)
    p += answer(0, 0, body(hash16=b"\x01" * 16, n_origins=1, digest=[(0, 1)],
                           self_rec=worker(0, 1, 0)))
    p += answer(0, 0, body(records=[worker(0, 1, 0), room(0, 1, 0, 1)]))
    return p


def seeds():
    out = {}
    out["join"] = join()
    # a peer announces itself at endpoint 1, then moves to endpoint 2 in the DELTA_ACK of
    # the exchange the node starts with it, with more to come
    p = join()
    p += peer_send(1, RUMOR, body(records=[worker(1, 1, 1)]))
    p += u8(ROUND) + u8(TICK)
    p += answer(0, 0, body(flags=IN_SYNC))
    p += answer(1, 1, body(hash16=b"\x02" * 16, n_origins=3, digest=[(1, 2)]))
    p += answer(1, 1, body(flags=MORE, records=[worker(1, 2, 2)]))
    p += u8(ROUND) + u8(TICK) + answer(2, 1, body(flags=IN_SYNC))
    out["move"] = p
    # rooms: a client creates one, another joins, they talk and poll; a room of fake peer 2
    # is forwarded to its owner
    p = join()
    p += client(0, "create", 0, emojis="\U0001f431", desc="cats", nick="ann")
    p += client(1, "join", 0, nick="bob")
    p += client(0, "join", 0, nick="ann")
    p += client(0, "send", 0, member=True, content="hello", msg_id="m1")
    p += client(1, "poll", 0, member=True, since=0)
    p += client(1, "info", 0)
    p += client(0, "rooms") + client(0, "workers") + client(0, "status")
    p += peer_send(2, RUMOR, body(records=[worker(2, 1, 2), room(2, 1, 2, 2)]))
    p += client(1, "join", 2, nick="cy")
    p += answer_forward(2, 0, "joined")
    p += client(1, "info", 2)
    p += answer_forward(2, 1, "gone")
    p += client(1, "leave", 0, member=True)
    out["rooms"] = p
    # a peer exchanges from its side (SYNC, DELTA), then leaves; time passes
    p = join()
    p += peer_send(3, SYNC, body(hash16=b"\x03" * 16, n_origins=1,
                                 self_rec=worker(3, 1, 1)))
    p += peer_send(3, DELTA, body(records=[worker(3, 1, 1), room(3, 1, 1, 3)],
                                  want=[(NODE, 0), (0, 0)]))
    p += u8(ROUND) + u8(TICK) + answer(1, 3, body(flags=IN_SYNC)) + answer(0, 0, body(flags=IN_SYNC))
    p += peer_send(3, LEAVE, body())
    p += clock(5000) + u8(TICK) + u8(HOUSEKEEPING)
    p += clock(3600 * 1000) + u8(TICK) + u8(HOUSEKEEPING) + u8(ROUND)
    p += clock(86400 * 1000 - 1) + u8(HOUSEKEEPING) + u8(ROUND)
    out["leave"] = p
    # exchanges that fail: a peer that never answers is tried until it is removed
    p = join()
    p += peer_send(1, RUMOR, body(records=[worker(1, 1, 3)]))
    for _ in range(4):
        p += u8(ROUND) + u8(TICK) + answer(0, 0, body(flags=IN_SYNC)) + clock(3000) + u8(TICK)
    p += u8(HOUSEKEEPING)
    out["failures"] = p
    # a stranger claims a room the node made two minutes before, with a created_at 29 days
    # in the past, by rumor and by DELTA; a client then uses the room
    p = join()
    p += client(0, "create", 0, emojis="\U0001f431", desc="ours", nick="ann")
    p += client(0, "join", 0, nick="ann")
    p += clock(120000) + u8(TICK)
    old = FUZZ_NOW_MS + 120000 - 29 * 86400 * 1000
    p += peer_send(1, RUMOR, body(records=[worker(1, 1, 1),
                                           room(1, 1, 1, 0, created=old,
                                                expires=FUZZ_NOW_MS + 3600 * 1000)]))
    p += peer_send(2, DELTA, body(records=[worker(2, 1, 2),
                                           room(2, 1, 2, 0, created=old - 1,
                                                expires=FUZZ_NOW_MS + 3600 * 1000)]))
    p += client(0, "send", 0, member=True, content="still ours?", msg_id="m2")
    p += client(1, "info", 0) + client(1, "rooms")
    p += u8(ROUND) + u8(TICK) + answer(1, 1, body(flags=IN_SYNC))
    out["theft"] = p
    # records from origins whose earlier versions the node never saw: gaps, filled by a
    # later exchange or left to expire
    p = join()
    p += peer_send(1, RUMOR, body(records=[worker(2, 5, 2, prev=4), room(3, 3, 1, 3, ahead=1)]))
    p += peer_send(1, RUMOR, body(records=[worker(1, 2, 1, prev=1)]))
    p += u8(ROUND) + u8(TICK)
    p += answer(0, 0, body(hash16=b"\x04" * 16, n_origins=4, digest=[(2, 5), (3, 3), (1, 2)]))
    p += answer(0, 0, body(records=[worker(2, 4, 2, prev=3), worker(1, 1, 1)], flags=MORE))
    p += u8(TICK)
    p += answer(0, 0, body(flags=IN_SYNC))
    p += clock(400000) + u8(HOUSEKEEPING) + u8(TICK) + clock(599999) + u8(HOUSEKEEPING)
    out["gaps"] = p
    # a peer's exchange from its side: it names suspects and wants what the node holds
    p = join()
    p += client(0, "create", 1, nick="dee")
    p += peer_send(2, SYNC, body(hash16=b"\x05" * 16, n_origins=2, self_rec=worker(2, 1, 2),
                                 suspects=[(0, 1)]))
    p += peer_send(2, DELTA, body(want=[(NODE, 0), (0, 0), (1, 0)], digest=[(2, 1)],
                                  records=[worker(2, 1, 2)]))
    p += u8(ROUND) + u8(TICK) + answer(0, 0, body(flags=IN_SYNC))
    p += answer(2, 2, body(flags=IN_SYNC))
    out["suspects"] = p
    # small caps (setup bit 4): rooms, pending polls, the history and the quota fill up; a
    # long poll waits on the program's clock
    p = u8(4) + u8(ROUND) + u8(TICK)
    p += answer(0, 0, body(hash16=b"\x06" * 16, n_origins=1, digest=[(0, 1)]))
    p += answer(0, 0, body(records=[worker(0, 1, 0), room(0, 1, 0, 1), room(0, 1, 0, 2)]))
    p += client(0, "create", 0, nick="a") + client(0, "join", 0, nick="a")
    p += client(1, "create", 3, nick="b")
    p += client(1, "join", 0, nick="b")
    p += client(1, "poll", 0, member=True, since=0, wait_s=20)
    p += client(1, "poll", 0, member=True, since=0, wait_s=20)
    for i in range(5):
        p += client(0, "send", 0, member=True, content="x" * 90, msg_id="k%d" % i)
        p += clock(1000)
    p += client(0, "poll", 0, member=True, since=0)
    p += client(0, "join", 1, nick="c") + answer_forward(0, 0, "joined")
    p += client(0, "poll", 1, member=True, since=0, wait_s=5)
    p += clock(30000) + u8(TICK) + answer_forward(0, 0, "late")
    p += u8(HOUSEKEEPING)
    out["caps"] = p
    # DIGESTs from a stranger: whole buckets, a piece from a bucket's first origin, a piece
    # that names a stop (refused)
    p = join()
    p += peer_send(3, DIGEST, body(bucket_el=buckets(1, numbers=[0, 1])))
    p += peer_send(3, DIGEST, body(bucket_el=buckets(1, numbers=[1], piece=0)))
    p += peer_send(3, DIGEST, body(bucket_el=buckets(2, piece=2, to=FIRST)))
    out["digests"] = p
    # the exchange by bucket from the node's side: sums that differ in one bucket, the
    # DIGEST answered whole; then sums again, the bucket asked not covered (too large), the
    # piece asked at once and answered in two
    p = join()
    p += u8(ROUND) + u8(TICK)
    p += answer(0, 0, body(bucket_el=buckets(1, differ=[0])))
    p += answer(0, 0, digest_ack())
    p += answer(0, 0, body(flags=0))
    p += u8(ROUND) + u8(TICK)
    p += answer(0, 0, body(bucket_el=buckets(1, differ=[0])))
    p += answer(0, 0, digest_ack(covered=[0]))
    p += answer(0, 0, body(flags=0))
    p += answer(0, 0, body(bucket_el=buckets(1, differ=[0])))
    p += answer(0, 0, digest_ack(stop=True))
    p += answer(0, 0, body(flags=0))
    p += answer(0, 0, body(bucket_el=buckets(1, differ=[0])))
    p += answer(0, 0, digest_ack())
    p += answer(0, 0, body(flags=0))
    out["buckets"] = p
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                           "node")
    os.makedirs(d, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
