"""test_gossip_antientropy.py: a removal travels with anti-entropy. A node that was down
while the others removed a dead worker comes back listing that worker at the very version
the others' tombstones hold; the digests say which entry is a removal, so the first exchange
with any remover shows it (removals_heard), the node suspects the worker, finds it dead
itself, and removes it. The worker owns a room, signed after its worker record, so the
origin's version is above the tombstone's: the entry still says removed. Nothing live is
removed on the way.

A peer that lies, showing every worker removed (the node itself included) in every digest
it answers with, gets no live node removed: each report is a suspicion that the node must
confirm itself, and the live workers answer; the node refutes the report about itself at
most once a round."""

import soswire as w
from sosnet import Net, hold_for_rounds, run, wait_for

MAX_FAILURES = 3


def gossip(node):
    return node.status()["gossip"]


def test_restarted_node_hears_of_a_removal():
    with Net(interval=200, extra=("--rate-limit", "off", "--max-failures",
                                  str(MAX_FAILURES))) as net:
        nodes = net.start(4)
        wait_for("4 nodes to converge", net.converged)
        a, b, lister, dead = nodes
        did = dead.node_id
        # The worker owns a room: its record is signed with the same counter, after the
        # worker record, so the origin is held at a version above the tombstone's.
        room = dead.ctl("room", "create", "--emojis", "🔥🌊", "--pin", "4711",
                        "--nickname", "owner")["room_hash"]
        wait_for("every node to list the room", lambda: all(room in n.rooms() for n in nodes))
        version = lister.workers()[did]["version"]

        # The lister goes down holding the worker's record; then the worker dies, and the
        # nodes still up remove it, each with a tombstone at that version.
        lister.kill()
        dead.kill()
        wait_for("the nodes still up to remove the dead worker",
                 lambda: all(did not in n.workers() for n in (a, b)), timeout=90)

        lister.start()
        listed = lister.workers()
        assert did in listed and listed[did]["version"] == version, \
            "the restarted node lists the dead worker from its store, at the removed version"
        wait_for("the restarted node to hear of the removal from a digest",
                 lambda: gossip(lister)["removals_heard"] >= 1, timeout=60)
        wait_for("the restarted node to remove the dead worker",
                 lambda: did not in lister.workers(), timeout=90)
        live = {n.node_id for n in (a, b, lister)}
        wait_for("the live nodes to agree", lambda: net.converged([a, b, lister], live),
                 timeout=60)
        assert "removed worker %.12s" % did in lister.log_text()


LIE_VERSION = 1 << 40  # above any version a live node holds


class Liar(w.Worker):
    """A worker run by an attacker that answers every SYNC with a digest showing each of ids
    removed at LIE_VERSION, and every DELTA with an empty DELTA_ACK, so that its exchanges
    succeed and the node keeps coming back to it."""

    def __init__(self, node, ids):
        self.node = node
        self.ids = ids
        self.syncs = 0
        super().__init__()
        self.rec = self.record

    def _reply(self, msg_type, body):
        return w.envelope(self.ident, msg_type, body, receiver=self.node.node_id)

    def answer(self, frame, e):
        req_id = e["body"]["req_id"]
        if e["type"] == w.SYNC:
            digest = [(bytes.fromhex(i), LIE_VERSION, True) for i in self.ids]
            digest.append((self.ident.pk, 1, False))
            self.syncs += 1
            return self._reply(w.SYNC_ACK, w.gmsg(
                req_id=req_id, n_origins=len(digest), self_rec=self.rec, digest=digest))
        if e["type"] == w.DELTA:
            return self._reply(w.DELTA_ACK, w.gmsg(req_id=req_id))
        return None

    def introduce(self):
        super().introduce(self.node)


def test_lying_peer_removes_nobody():
    with Net(interval=200, extra=("--rate-limit", "off", "--max-failures",
                                  str(MAX_FAILURES))) as net:
        nodes = net.start(3)
        wait_for("3 nodes to converge", net.converged)
        node = nodes[2]
        ids = [n.node_id for n in nodes]
        liar = Liar(node, ids)
        try:
            liar.introduce()
            wait_for("the node to list the liar", lambda: liar.ident.hex in node.workers())
            wait_for("the node to take many of the liar's reports",
                     lambda: gossip(node)["removals_heard"] >= 20, timeout=90)
            live = set(ids)
            hold_for_rounds("the node to keep every live worker",
                            lambda: live <= set(node.workers()), nodes, 10)
            g = gossip(node)
            assert g["workers_removed"] == 0, g
            # The report about itself: refuted, at most once a round.
            assert 1 <= g["refutations"] <= g["rounds"], g
            for n in nodes:
                assert live <= set(n.workers()), "node %d lost a live worker" % n.index
            assert liar.syncs >= 10
        finally:
            liar.close()


if __name__ == "__main__":
    run([test_restarted_node_hears_of_a_removal, test_lying_peer_removes_nobody])
