"""test_hostile_gossip.py: attacks on a node's gossip state machine and its resources, each
by a stranger speaking the wire protocol (soswire) to real sosnode processes:

  moved peer    a worker that answers the node's exchange with a newer record of its own
                at another url, in the DELTA_ACK (with and without the MORE flag): the peer
                is re-made at the new url while its reply is being handled. The node must
                neither touch the old peer after that nor abort.
  sockets       about 1,100 worker records and 1,100 room records with distinct urls, and an
                `info` request for each room (each one a forward to a new url): the node keeps
                its connections under --max-peer-connections, refuses none by asserting, and
                keeps serving.
  endpoints     a node advertising a public address refuses records naming ipc://, a host
                name, or loopback, private and mapped addresses, counts them as bad_endpoint,
                and never connects there (a listening socket sees no connection).
  verification  the same 512 signed records sent again and again under new envelopes cost
                one envelope verification each time, not 512 record verifications; a stranger
                sending fresh records faster than its budget is refused (over_budget).
  probation     fresh keys naming endpoints where nothing answers take at most a quarter of
                --max-workers at a node that has sampled nothing, and at most its cap at one
                whose exchanges saw honest workers answer; the cap falls as its exchanges
                with them fail; they displace no worker that answered and leave when they
                fail; an honest node joins after them.
  failed commit a worker removed in a pass whose commit fails (a full disk, and a reader that
                keeps LMDB from reusing pages) stays a peer: memory and store agree, and the
                node goes on trying it.
  gaps          records from fresh origins whose prev lies above anything held open gap
                entries; the table stays bounded and entries go when the origins' records do.
"""

import os
import socket
import subprocess
import threading
import time

import zmq

import soswire as w
from sosclient import Client, new_room_hash
from sosnet import Net, free_port, hold_for_rounds, run, wait_for


def env(ident, msg_type, body, node=None):
    """Every envelope of this file is built here, bound to the node it is sent to."""
    return w.envelope(ident, msg_type, body,
                      receiver=node.node_id if node is not None else None)


def send_all(node, frames):
    """Send frames, each on a connection keyed by its sender (a node takes an envelope only
    on its sender's key), in order per sender, then a SYNC on each connection, and wait for
    its answer: the node takes a connection's frames in order, so all of them have arrived
    (a socket closed at once would drop what it had not sent yet)."""
    by_sender = {}
    for f in frames:
        by_sender.setdefault(w.identity_of(f), []).append(f)
    for me, mine in by_sender.items():
        me = me or w.Identity()
        with w.Conn(node.endpoint, ident=me) as c:
            for f in mine:
                c.send(f)
            c.send(env(me, w.SYNC, w.gmsg(req_id=99), node))
            got = c.recv_where(lambda f: w.decode_envelope(f)["type"] == w.SYNC_ACK, 60)
            assert got is not None, "node %d did not answer" % node.index


def gossip(node):
    return node.status()["gossip"]


def dead_url():
    return "tcp://127.0.0.1:%d" % free_port()


class MovingPeer(w.Worker):
    """A worker run by the attacker at url1 that answers the node's SYNC with a digest
    claiming version 2 of its own records, and the DELTA that follows with its version 2
    record naming url2 (flags as given)."""

    def __init__(self, node, flags):
        self.node = node
        self.url2 = dead_url()
        self.flags = flags
        self.delta_acks = 0
        super().__init__()
        self.url1 = self.url
        self.rec1 = self.record
        self.rec2 = w.worker_record(self.ident, 2, self.url2)

    def answer(self, frame, e):
        body = e["body"]
        if e["type"] == w.SYNC:
            return env(self.ident, w.SYNC_ACK, w.gmsg(
                req_id=body["req_id"], n_origins=1, self_rec=self.rec1,
                digest=[(self.ident.pk, 2)]), self.node)
        if e["type"] == w.DELTA:
            self.delta_acks += 1
            return env(self.ident, w.DELTA_ACK, w.gmsg(
                req_id=body["req_id"], flags=self.flags, records=[self.rec2]), self.node)
        return None

    def introduce(self):
        super().introduce(self.node)


def test_peer_moved_during_its_delta_ack():
    """The DELTA_ACK of an exchange carries the peer's own newer record at another url. On
    the unfixed node the peer was freed under the exchange (use-after-free; with MORE, an
    abort in zsock_resolve)."""
    with Net(interval=200) as net:
        # nothing answers at url2: a high --max-failures keeps the moved worker listed
        node = net.add(extra=["--max-failures", "1000"]).start()
        for flags in (0, 2):  # 2: MORE
            peer = MovingPeer(node, flags)
            try:
                peer.introduce()
                wait_for("the node to take the moved record",
                         lambda: not node.alive()
                         or node.workers().get(peer.ident.hex, {}).get("url") == peer.url2,
                         timeout=60)
                assert node.alive(), "the node exited (flags %d)" % flags
                assert peer.delta_acks >= 1, "the exchange never reached the DELTA_ACK"
                # Rounds go on after it: the node is alive and still answers.
                hold_for_rounds("the node to stay up", node.alive, [node], 5)
                assert node.workers()[peer.ident.hex]["url"] == peer.url2
            finally:
                peer.close()


def test_thousands_of_endpoints():
    """1,100 worker records and 1,100 room records with distinct urls, and an `info` for each
    room. The unfixed node made a DEALER for each (czmq's default cap is 1,024 sockets) and
    aborted in zsock_new."""
    n = 1100
    with Net(interval=500) as net:
        # --max-workers: room for 1,100 workers on probation (a quarter of the cap)
        node = net.add(extra=["--max-peer-connections", "64", "--max-failures", "1000",
                              "--max-workers", "8000"]).start()
        idents = [w.Identity() for _ in range(n)]
        workers = [w.worker_record(i, 1, dead_url()) for i in idents]
        owner = w.Identity()
        rooms = [new_room_hash() for _ in range(n)]
        room_recs = [w.room_record(owner, v + 1, dead_url(), rooms[v]) for v in range(n)]
        sender = w.Identity()
        frames = []
        for batch in range(0, n, 256):
            frames.append(env(sender, w.RUMOR, w.gmsg(records=workers[batch:batch + 256]), node))
            frames.append(env(sender, w.RUMOR, w.gmsg(records=room_recs[batch:batch + 256]),
                              node))
        send_all(node, frames)
        wait_for("the node to list every worker and room",
                 lambda: not node.alive()
                 or (len(node.workers()) >= n + 1 and len(node.rooms()) >= n), timeout=120)
        assert node.alive(), "the node exited taking %d workers" % n
        replies = {}
        with Client(node.endpoint, timeout=60) as cl:
            # 100 at a time: a connection's pipelined requests have their own budget
            for b in range(0, n, 100):
                ids = [cl.post("info", {"room_hash": r}) for r in rooms[b:b + 100]]
                replies.update(cl.collect(ids, timeout=120))
        assert len(replies) == n
        assert node.alive(), "the node exited forwarding %d requests" % n
        g = gossip(node)
        assert g["connections_open"] <= 64, g
        assert g["sockets_refused"] == 0, g
        # Rounds go on opening connections to picked workers; the node keeps serving.
        hold_for_rounds("the node to keep serving", lambda: node.status() and node.alive(),
                        [node], 4)
        g = gossip(node)
        assert g["connections_open"] <= 64, g
        assert g["connections_closed"] > 0, g


class Listener:
    """A plain TCP listening socket that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except socket.timeout:
                continue
            except OSError:
                break

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def test_endpoints_refused_on_a_public_node():
    """A node that advertises a public address (while listening on loopback) refuses
    worker and room records that name anything else than tcp://PUBLIC-IP:PORT."""
    listener = Listener()
    try:
        with Net(interval=200) as net:
            port = free_port()
            node = net.add(port=port, extra=["--advertise", "tcp://8.8.8.8:%d" % port]).start()
            loop_url = "tcp://127.0.0.1:%d" % listener.port
            bad = ["ipc:///tmp/sos-hostile-%d" % os.getpid(), "tcp://somehost:1", loop_url,
                   "tcp://10.0.0.1:7700", "tcp://[::ffff:127.0.0.1]:%d" % listener.port,
                   "tcp://169.254.169.254:80", "tcp://[::1]:%d" % listener.port]
            before = node.drops()["bad_endpoint"]
            sender = w.Identity()
            owner = w.Identity()
            idents = []
            frames = []
            for i, url in enumerate(bad):
                ident = w.Identity()
                idents.append(ident)
                # as the worker's own SYNC, and relayed in a RUMOR with a room of it
                frames.append(env(ident, w.SYNC, w.gmsg(
                    req_id=1, self_rec=w.worker_record(ident, 1, url)), node))
                frames.append(env(sender, w.RUMOR, w.gmsg(records=[
                    w.room_record(owner, i + 1, url, new_room_hash())]), node))
            send_all(node, frames)
            wait_for("every bad endpoint counted",
                     lambda: node.drops()["bad_endpoint"] >= before + 2 * len(bad), timeout=30)
            hold_for_rounds("no connection to the loopback listener",
                            lambda: listener.accepted == 0, [node], 10)
            workers = node.workers()
            assert not any(i.hex in workers for i in idents), workers
            assert not node.rooms(), node.rooms()
            # A public address is taken.
            good = w.Identity()
            send_all(node, [env(good, w.SYNC, w.gmsg(
                req_id=1, self_rec=w.worker_record(good, 1, "tcp://8.8.4.4:7700")), node)])
            wait_for("the public worker listed", lambda: good.hex in node.workers(), timeout=30)
            assert listener.accepted == 0
    finally:
        listener.close()


def test_gap_table_bounded():
    """RUMOR records from fresh origins with prev far above what the node holds (a hole it
    would wait for) each open a gap entry. Entries of origins whose records are gone (here:
    room records that expire) are dropped; the count never grows past the cap."""
    with Net(interval=200) as net:
        node = net.add(extra=["--max-rooms-per-origin", "100000"]).start()
        sender = w.Identity()
        n = 300
        recs = []
        for _ in range(n):
            ident = w.Identity()
            # A room that expires 1.5 s after it was created, at version 10 after prev 9.
            recs.append(w.room_record(ident, 10, "tcp://127.0.0.1:9", new_room_hash(),
                                      lifetime_ms=1500, prev=9))
        send_all(node, [env(sender, w.RUMOR, w.gmsg(records=recs[b:b + 100]), node)
                        for b in range(0, n, 100)])
        wait_for("gap entries", lambda: gossip(node)["gaps"] >= 1, timeout=30)
        wait_for("the gap entries of expired origins dropped",
                 lambda: gossip(node)["gaps"] == 0, timeout=60)
        assert gossip(node)["gaps_dropped"] >= 1
        # The cap: more fresh origins with holes than the table holds.
        cap = 1024
        recs = [w.room_record(w.Identity(), 5, "tcp://127.0.0.1:9", new_room_hash(), prev=4)
                for _ in range(cap + 200)]
        send_all(node, [env(sender, w.RUMOR, w.gmsg(records=recs[b:b + 256]), node)
                        for b in range(0, len(recs), 256)])
        wait_for("the table full and the rest refused",
                 lambda: gossip(node)["gaps"] == cap and gossip(node)["gaps_dropped"] >= 200,
                 timeout=60)
        assert node.alive()


def test_resent_records_not_verified_again():
    """One frame of 512 pre-signed records costs 512 verifications once; resending it under
    new envelopes costs only the envelopes'. Unsolicited records beyond a stranger's budget
    are refused whole and counted, and the node keeps serving."""
    with Net(interval=200) as net:
        # --rate-limit on (the test network turns it off): the verification budget is on,
        # and small enough that a loaded machine cannot verify faster than it refills
        node = net.add(extra=["--max-workers", "100000", "--rate-limit", "on",
                              "--verify-budget", "600"]).start()
        sender = w.Identity()
        recs = [w.worker_record(w.Identity(), 1, dead_url()) for _ in range(512)]
        before = gossip(node)["signature_verifications"]
        send_all(node, [env(sender, w.RUMOR, w.gmsg(records=recs), node)])
        first = gossip(node)["signature_verifications"] - before
        assert first >= 512, first
        wait_for("the records listed", lambda: len(node.workers()) >= 513, timeout=30)
        g0 = gossip(node)
        resends = 5
        send_all(node, [env(sender, w.RUMOR, w.gmsg(records=recs), node)
                        for _ in range(resends)])
        g1 = gossip(node)
        cost = g1["signature_verifications"] - g0["signature_verifications"]
        # the RUMOR envelopes, and send_all's SYNC and status requests: a handful, not 512s
        assert cost <= resends + 10, "resending cost %d verifications" % cost
        assert g1["verify_skipped"] - g0["verify_skipped"] >= resends * 512, g1
        # Fresh records from a stranger, 14 frames of 512 at once: beyond the budget the rest
        # is refused and counted.
        frames = [env(sender, w.RUMOR, w.gmsg(records=[
            w.worker_record(w.Identity(), 1, dead_url()) for _ in range(512)]), node)
            for _ in range(14)]
        before = node.drops()["over_budget"]
        send_all(node, frames)
        assert node.drops()["over_budget"] > before, node.drops()
        assert gossip(node)["verify_refused"] >= 512
        assert node.alive() and node.status()


def test_worker_probation():
    """Workers never seen answering: a node that has sampled none lists at most a quarter of
    --max-workers of them; one whose exchanges saw honest workers answer lists more, until
    its exchanges with the dead keys pull its cap back; nothing listed is lost."""
    with Net(interval=200) as net:
        extra = ["--max-workers", "20", "--max-failures", "3"]
        a = net.add(extra=extra).start()
        # A node alone has sampled nothing: a quarter of 20, whatever comes.
        x = net.add(genesis=[], extra=extra).start()
        g = gossip(x)
        assert g["probation_samples"] == 0 and g["probation_cap"] == 5, g
        fakes = [w.Identity() for _ in range(30)]
        send_all(x, [env(w.Identity(), w.RUMOR, w.gmsg(records=[
            w.worker_record(f, 1, dead_url()) for f in fakes]), x)])
        g = gossip(x)
        assert g["workers_probation"] <= 5, g
        assert g["probation_refused"] >= 25, g
        assert sum(1 for f in fakes if f.hex in x.workers()) <= 5
        x.stop()

        # A's own exchanges with honest newcomers answer: samples that open its cap.
        honest = [net.add(extra=extra).start() for _ in range(4)]
        nodes = [a] + honest
        wait_for("the honest nodes to converge", lambda: net.converged(nodes))
        wait_for("a promoted them all", lambda: gossip(a)["workers_probation"] == 0
                 and gossip(a)["probation_samples"] >= 3)
        g = gossip(a)
        assert g["probation_answered"] == g["probation_samples"], g
        cap0 = g["probation_cap"]
        assert cap0 > 5, g
        # A flood of dead keys: more than a quarter are taken now, never more than the cap.
        fakes = [w.Identity() for _ in range(30)]
        before = g["probation_refused"]
        send_all(a, [env(w.Identity(), w.RUMOR, w.gmsg(records=[
            w.worker_record(f, 1, dead_url()) for f in fakes]), a)])
        g = gossip(a)
        first = sum(1 for f in fakes if f.hex in a.workers())
        assert 5 < first <= cap0, (first, g)
        assert g["probation_refused"] - before >= 30 - cap0, g
        # A picks them as it picks anyone; their failures are samples, and the cap falls.
        wait_for("a's cap to fall as its exchanges with dead keys fail",
                 lambda: gossip(a)["probation_cap"] <= 7, timeout=60)
        g = gossip(a)
        assert g["probation_samples"] > g["probation_answered"], g
        free = max(g["probation_cap"] - g["workers_probation"], 0)
        more = [w.Identity() for _ in range(30)]
        send_all(a, [env(w.Identity(), w.RUMOR, w.gmsg(records=[
            w.worker_record(f, 1, dead_url()) for f in more]), a)])
        g2 = gossip(a)
        second = sum(1 for f in more if f.hex in a.workers())
        assert second <= free + 1 and second < first, (second, free, first, g2)
        assert g2["probation_refused"] - g["probation_refused"] >= 30 - free - 1, g2
        listed = set(a.workers())
        assert all(n.node_id in listed for n in honest), "a lost an honest worker"
        wait_for("the fakes removed for failing",
                 lambda: gossip(a)["workers_probation"] == 0
                 and not any(f.hex in a.workers() for f in fakes + more), timeout=90)
        c = net.add(extra=extra).start()
        nodes.append(c)
        wait_for("an honest newcomer listed everywhere", lambda: net.converged(nodes),
                 timeout=60)
        wait_for("c promoted on a", lambda: a.workers()[c.node_id]["last_ok"] > 0)
        assert all(n.node_id in a.workers() for n in honest)


def test_removal_that_does_not_commit():
    """A's disk is full, and a reader (mdb_dump blocked on a pipe nobody reads) keeps LMDB
    from reusing freed pages, so every commit that writes fails. B dies; A removes it after
    --max-failures failed exchanges, in a pass that cannot commit: B stays in A's store and
    must stay A's peer too. (It used to be freed all the same: A listed B for good and never
    tried it again.)"""
    from test_faults_storage import Book, _mount_tmpfs, _umount, fill
    mnt = _mount_tmpfs("3m")
    dump = None
    try:
        with Net(interval=200, extra=["--rate-limit", "off", "--history", "100000"]) as net:
            a = net.add(extra=["--max-failures", "3"])
            a.data = os.path.join(mnt, "data")
            a.start()
            b = net.add(extra=["--max-failures", "3"]).start()
            wait_for("a and b to converge", net.converged)
            with Client(a.endpoint, timeout=20) as c:
                op, status, body = fill(c, Book())
                assert status == "unavailable", (op, status, body)
            dump = subprocess.Popen(["mdb_dump", "-a", a.data], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)  # it fills the pipe and blocks, its read transaction open
            assert dump.poll() is None, "mdb_dump finished: the store is too small to pin"
            b.kill()
            # Failures seen while a's own loop lags are withheld (not counted toward removal),
            # so wait for the attempt itself rather than for a number of failed exchanges.
            wait_for("a to try removing b and fail to commit it",
                     lambda: "removal did not commit" in a.log_text(), timeout=180)
            # It goes on trying b, which it still lists.
            failed = gossip(a)["exchanges_failed"]
            wait_for("a still exchanging with b after the failed removal",
                     lambda: gossip(a)["exchanges_failed"] >= failed + 3, timeout=60)
            assert b.node_id in a.workers()
            assert gossip(a)["commit_failures"] > 0
            assert a.alive()
    finally:
        if dump is not None:
            dump.kill()
            dump.wait()
        _umount(mnt)


def test_held_self_record_not_verified_again():
    """The sender's own record in a SYNC is verified once; while it is the record the node
    holds byte for byte, more SYNCs cost only their envelopes' verification. A self record
    at the held version but with other bytes (another signer) is still verified, and
    refused whole."""
    with Net(interval=200) as net:
        node = net.add(extra=["--rate-limit", "off"]).start()
        p, f = w.Identity(), w.Identity()
        rec = w.worker_record(p, 1, dead_url())
        send_all(node, [env(p, w.SYNC, w.gmsg(req_id=1, self_rec=rec), node)])
        wait_for("p listed", lambda: p.hex in node.workers())
        g0 = gossip(node)
        n = 20
        send_all(node, [env(p, w.SYNC, w.gmsg(req_id=10 + i, self_rec=rec), node)
                        for i in range(n)])
        g1 = gossip(node)
        cost = g1["signature_verifications"] - g0["signature_verifications"]
        # the envelopes, send_all's own SYNC, and the node's rounds: not two per SYNC
        assert cost < n + 10, "%d SYNCs with a held self record cost %d verifications" % (
            n, cost)
        assert g1["verify_skipped"] - g0["verify_skipped"] >= n, g1
        forged = w.worker_record(p, 1, dead_url(), signer=f)
        bad0 = node.drops()["bad_signature"]
        send_all(node, [env(p, w.SYNC, w.gmsg(req_id=99, self_rec=forged), node)])
        wait_for("the forged self record refused",
                 lambda: node.drops()["bad_signature"] > bad0, timeout=30)
        assert node.workers()[p.hex]["url"] == w.decode_record(rec)[0][4]


if __name__ == "__main__":
    run([test_peer_moved_during_its_delta_ack, test_thousands_of_endpoints,
         test_endpoints_refused_on_a_public_node, test_resent_records_not_verified_again,
         test_worker_probation, test_gap_table_bounded, test_removal_that_does_not_commit,
         test_held_self_record_not_verified_again])
