"""test_reactor.py: the reactor answers every request when requests, replies and long polls
cross. The node watches its public socket through libzmq's edge-triggered ZMQ_FD, whose
signal a send may take; a request whose signal was taken waits until other input arrives.
One node alone (no peer whose gossip would bring such input): senders pipelining without
retries while long polls end by wake-ups and by their timers, and a request that lands while
another's commit is under way, then nothing more: every request is answered."""

import random
import threading
import time

from sosclient import Client, new_room_hash
from sosnet import Net, run

SENDERS = 6
ROUNDS = 40
WINDOW = 4
READERS = 3


def test_every_request_answered():
    with Net() as net:
        node = net.add(extra=["--history", "100000"]).start()
        room = new_room_hash()
        with Client(node.endpoint) as c:
            c.create(room, nickname="owner")
        errors = []
        stop = threading.Event()

        def sender(i):
            try:
                with Client(node.endpoint, timeout=60) as c:
                    member = c.join(room, nickname="s%d" % i)["member_id"]
                    for r in range(ROUNDS):
                        ids = []
                        for k in range(WINDOW):
                            mid = "s%d-%d-%d" % (i, r, k)
                            ids.append(c.post("send", {"room_hash": room, "member_id": member,
                                                       "content": mid, "msg_id": mid}))
                        # no retry: a request the node never read fails here
                        replies = c.collect(ids)
                        for status, body in replies.values():
                            assert status == "ok", (status, body)
            except BaseException as e:
                errors.append(e)

        def reader(i):
            try:
                with Client(node.endpoint, timeout=60) as c:
                    member = c.join(room, nickname="r%d" % i)["member_id"]
                    since = 0
                    while not stop.is_set():
                        # short waits: some polls end by a send, some by the node's timer
                        body = c.poll(room, member, since=since, wait_ms=20 + 10 * i)
                        since = body["last_seq"]
            except BaseException as e:
                errors.append(e)

        readers = [threading.Thread(target=reader, args=(i,), daemon=True)
                   for i in range(READERS)]
        senders = [threading.Thread(target=sender, args=(i,), daemon=True)
                   for i in range(SENDERS)]
        for t in readers + senders:
            t.start()
        for t in senders:
            t.join(600)
            assert not t.is_alive(), "a sender did not finish"
        stop.set()
        for t in readers:
            t.join(120)
            assert not t.is_alive(), "a reader did not finish"
        if errors:
            raise errors[0]
        with Client(node.endpoint) as c:
            info = c.info(room)
        assert info["message_count"] == SENDERS * ROUNDS * WINDOW, info


def test_request_during_a_commit():
    """A request that arrives while a pass commits, alone after it: the pass's reply takes its
    signal, and nothing else would come to wake the reactor for it."""
    with Net() as net:
        node = net.add(extra=["--history", "100000"]).start()
        room = new_room_hash()
        with Client(node.endpoint, timeout=60) as a, Client(node.endpoint, timeout=60) as b:
            member = a.create(room, nickname="a")["member_id"]
            rng = random.Random(11)
            for i in range(200):
                time.sleep(0.003)  # quiet, so that the reply's send takes libzmq's commands
                ida = a.post("send", {"room_hash": room, "member_id": member,
                                      "content": "m%d" % i, "msg_id": "m%d" % i})
                time.sleep(rng.random() * 0.002)  # lands during the send's commit, or near it
                idb = b.post("info", {"room_hash": room})
                assert a.collect([ida])[ida][0] == "ok"
                assert b.collect([idb])[idb][0] == "ok"


if __name__ == "__main__":
    run([test_every_request_answered, test_request_during_a_commit])
