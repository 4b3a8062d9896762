"""test_gossip_antientropy.py: a removal travels with anti-entropy. A node that was down
while the others removed a dead worker comes back listing that worker at the very version
the others' tombstones hold; the digests say which entry is a removal, so the first exchange
with any remover shows it (removals_heard), the node suspects the worker, finds it dead
itself, and removes it. The worker owns a room, signed after its worker record, so the
origin's version is above the tombstone's: the entry still says removed. Nothing live is
removed on the way."""

from sosnet import Net, run, wait_for

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


if __name__ == "__main__":
    run([test_restarted_node_hears_of_a_removal])
