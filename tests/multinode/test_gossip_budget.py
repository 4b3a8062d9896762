"""test_gossip_budget.py: rumors and anti-entropy share one sending budget per peer, so a
peer that stops reading while a node has much to push makes gossip slower for it, never
makes gossip stop, and is not blamed for the node's own backlog (PROTOCOL.md, "Rumors").

Node a has two peers in its view: node b, a real sosnode, and s, a Python worker that
stops reading for one gossip round. s answers a's SYNC of one round, then reads nothing
until a's next round has sent its SYNC; meanwhile a creates 16,600 rooms, whose rumors go
to both. The node holds at most 4 MiB of frames not yet written to the kernel for one
connection (SOS_OUT_CONN_BYTES); a RUMOR goes to a member only if 2 x SOS_FRAME_MAX stays
free after it for an exchange. What the test asserts:
  - a's rumors_deferred grows: the budget of s's connection filled, and rumors were passed
    over instead of queued;
  - a never had a frame refused by the budget (drop output_full): it kept to the budget by
    choice, so there was room for its SYNC to s;
  - s is not counted failed for a's backlog: the SYNC of the next round waited behind
    a's rumors, s answered it once it read again, and a never logs a failed exchange with
    s; s stays listed on a and b;
  - gossip does not stop: b lists every room.

Reaching the budget honestly. The kernel holds part of what a sends before a's own
budget is charged at all: on loopback a's socket buffer grows to about 4 MB (tcp_wmem),
whatever s does. s's ROUTER has a receive buffer of 4 KiB and a high-water mark of one
frame, so that its libzmq stops reading the socket as soon as the test stops reading the
ROUTER. The rooms are the largest the client API makes (six emojis of 32 bytes, a
description of 140 bytes: about 750 bytes a record), and 16,000 of them are about 12 MB of
rumors to s, well past the kernel's buffers and the 4 MiB budget. Then 600 small rooms, one
per request: their single-record rumors leave less room free on s's connection than one
such rumor needs. a advertises a long http_url, which makes its worker record, carried in
every SYNC, larger than such a rumor (a SYNC of 588 bytes against a rumor of 366; without
the long http_url a SYNC is 329 bytes and would still fit now and then): without the check
that keeps room for an exchange, a's SYNC to s then finds no room, and a counts s failed
("not connected") for what is only its own backlog. That is what this test fails on when
s_send_fits is made to say yes to everything: rumors_deferred stays 0, output_full grows
and s is failed. When s_send_fits says no to everything, gossip stops and b never lists
the rooms.

Why s reads nothing for exactly one round. A peer that reads nothing for longer than an
exchange deadline has failed that exchange by its own doing; the promise is about the
node's backlog. So s stops right after answering a SYNC of a's, and the test lets it read
again as soon as a's round counter shows the next round began; with an interval of 10 s
the deadline is 5 s (half the interval, PROTOCOL.md "Failures"), which the backlog of a few
MB on loopback is far from. If a round passes while the rooms are still being created (a
very slow machine), s reads again at once: no SYNC may wait for a round it did not cause.

exchanges_deferred is not asserted: since rumors keep room for an exchange, a SYNC or a
DELTA always fits on one connection; only the 64 MiB over all connections (16 stuck ones at
their 4 MiB) could make an exchange wait, more than a bounded test can fill.

Memory is bounded by the same budget, but a flood of 12 MB cannot show it (the kernel and
4 MiB hold it either way): the test prints a's anonymous memory and does not assert it
(test_hostile_budget.py asserts the bound with floods that would pass it).
"""

import threading
import time

import zmq

from sosnet import Net, run, wait_for
from sosclient import Client, new_room_hash
import soswire as w

PING, PONG = 9, 10
INTERVAL_MS = 10000
BIG_ROOMS = 16000
SMALL_ROOMS = 600
BATCH = 250
EMOJIS = ["\U0001F198" * 8] * 6  # six emojis of 32 bytes: the largest a record takes
DESCRIPTION = "d" * 140
# A valid http_url of 255 bytes (http://HOST:PORT): a's worker record, in each of its SYNCs
LONG_HTTP_URL = "http://" + ".".join(["h" * 60] * 4) + ":8080"
FLAGS = ("--max-rooms-per-origin", "20000")


class StallingPeer(w.Worker):
    """A worker that answers SYNC in sync, DELTA with an empty DELTA_ACK and PING with a
    PONG, and stops reading right after it answered a SYNC from the node named by
    stall_after(); resume() makes it read again."""

    # libzmq reads a socket only while the ROUTER's inbound pipe has room: one frame, and a
    # small kernel buffer, so that what s does not read stays on the sender's side.
    sockopts = ((zmq.RCVHWM, 1), (zmq.RCVBUF, 4096))

    def __init__(self):
        self.lock = threading.Lock()
        self.reading = threading.Event()
        self.reading.set()
        self.stall_for = None
        self.syncs = {}  # sender hex -> SYNCs answered
        super().__init__()

    def stall_after(self, node_id):
        with self.lock:
            self.stall_for = node_id

    def resume(self):
        self.reading.set()

    def answer(self, frame, env):
        body, sender = env["body"], env["sender"]
        if env["type"] == w.SYNC:
            with self.lock:
                self.syncs[sender.hex()] = self.syncs.get(sender.hex(), 0) + 1
                if self.stall_for == sender.hex():
                    self.stall_for = None
                    self.reading.clear()  # after this answer is sent
            return w.envelope(self.ident, w.SYNC_ACK, w.gmsg(
                req_id=body["req_id"], flags=1, self_rec=self.record), receiver=sender)
        if env["type"] == w.DELTA:
            return w.envelope(self.ident, w.DELTA_ACK, w.gmsg(req_id=body["req_id"]),
                              receiver=sender)
        if env["type"] == PING:  # [req_id, target, reached]: gmsg's first two fields
            return w.envelope(self.ident, PONG, w.pack([body["req_id"], self.ident.pk, True]),
                              receiver=sender)
        return None

    def synced(self, node):
        with self.lock:
            return self.syncs.get(node.node_id, 0)

    def may_read(self):
        return self.reading.wait(0.1)


def create_rooms(client, n, batch, big):
    """n rooms on the client's node, batch requests at a time."""
    args = {"emojis": EMOJIS, "description": DESCRIPTION} if big else {}
    done = 0
    while done < n:
        k = min(batch, n - done)
        ids = [client.post("create", dict(args, room_hash=new_room_hash(), nickname="x"))
               for _ in range(k)]
        for status, body in client.collect(ids).values():
            assert status == "ok", body
        done += k


def test_stuck_peer_shares_the_budget():
    with Net(interval=INTERVAL_MS, extra=("--rate-limit", "off") + FLAGS) as net:
        a = net.add(extra=("--http-advertise", LONG_HTTP_URL)).start()
        b = net.add().start()
        with StallingPeer() as s:
            s.introduce(a)
            wait_for("b and s in a's view",
                     lambda: a.status()["gossip"]["view_size"] == 2, timeout=120)
            wait_for("an exchange of a's with s", lambda: s.synced(a) >= 1, timeout=120)
            wait_for("s listed on b", lambda: s.ident.hex in b.workers(), timeout=120)
            idle = peak = a.rss_anon()
            before = a.status()
            log_before = len(a.log_text())
            last_ok = a.workers()[s.ident.hex]["last_ok"]

            # s answers a's next SYNC, then reads nothing.
            s.stall_after(a.node_id)
            wait_for("s to stop reading after a's SYNC", lambda: not s.reading.is_set(),
                     timeout=60)
            rounds = a.status()["gossip"]["rounds"]
            with Client(a.endpoint, timeout=120) as c:
                create_rooms(c, BIG_ROOMS, BATCH, big=True)
                create_rooms(c, SMALL_ROOMS, 1, big=False)
            total = BIG_ROOMS + SMALL_ROOMS
            st = a.status()
            peak = max(peak, a.rss_anon())
            deferred = st["gossip"]["rumors_deferred"] - before["gossip"]["rumors_deferred"]
            full = st["drops"]["output_full"] - before["drops"]["output_full"]
            print("%d rooms made while s read nothing: rumors_deferred +%d, output_full +%d, "
                  "a holds %d bytes of output" % (total, deferred, full, st["output"]["bytes"]),
                  flush=True)

            # Let s read once a's next round has sent its SYNC (at once if one came during
            # the flood: that SYNC must not wait for a whole round).
            if st["gossip"]["rounds"] == rounds:
                wait_for("a's next round", lambda: a.status()["gossip"]["rounds"] > rounds,
                         timeout=3 * INTERVAL_MS / 1000, interval=0.05)
            else:
                print("a round passed while the rooms were made", flush=True)
            peak = max(peak, a.rss_anon())
            s.resume()
            synced = s.synced(a)
            wait_for("s to answer a's SYNC once it reads again", lambda: s.synced(a) > synced,
                     timeout=60)

            assert deferred > 0, "s's connection never filled: no rumor was deferred"
            assert full == 0, "a sent past its budget: %d frames refused (output_full)" % full

            # Gossip did not stop: b lists every room, and s is listed everywhere.
            wait_for("b to list all %d rooms" % total,
                     lambda: b.status()["rooms"] >= total, timeout=120)
            assert a.status()["rooms"] == total
            for n in (a, b):
                assert s.ident.hex in n.workers(), "node %d removed s" % n.index

            # a's exchanges with s all went through: none failed for a's own backlog.
            wait_for("a to take s's answer as a success",
                     lambda: a.workers()[s.ident.hex]["last_ok"] > last_ok, timeout=60)
            failed = [line for line in a.log_text()[log_before:].splitlines()
                      if "exchange with %s failed" % s.url in line]
            assert not failed, "a counted s failed:\n%s" % "\n".join(failed[:5])
            assert a.workers()[s.ident.hex]["fail_count"] == 0
            print("a's RssAnon: %.1f MiB idle, %.1f MiB at most during the test" % (
                idle / 2**20, peak / 2**20), flush=True)


if __name__ == "__main__":
    run([test_stuck_peer_shares_the_budget])
