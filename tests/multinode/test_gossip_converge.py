"""test_gossip_converge.py: directory convergence by gossip. Five nodes come to list the same
five workers with the same records; nodes added later, through the genesis node or through
any other node, are learned by all and learn the whole directory (rooms too); a worker's new
record (a restart signs a higher version, at the same or another endpoint) replaces the
old one everywhere."""

import time

from sosnet import Net, free_port, run, wait_for
import soswire as w


def records(node):
    """node's view of the directory: worker id -> (url, version)."""
    return {i: (r["url"], r["version"]) for i, r in node.workers().items()}


def all_agree(nodes, expect_ids):
    """True when every node lists exactly expect_ids, with the same records everywhere."""
    views = [records(n) for n in nodes]
    return all(set(v) == set(expect_ids) for v in views) and all(v == views[0] for v in views)


def test_five_nodes_converge():
    with Net() as net:
        nodes = net.start(5)
        ids = [n.node_id for n in nodes]
        assert len(set(ids)) == 5
        wait_for("5 nodes to list the same 5 workers", lambda: all_agree(nodes, ids))
        genesis = nodes[0].node_id
        for n in nodes:
            view = n.workers()
            for m in nodes:
                assert view[m.node_id]["url"] == m.endpoint
                # each worker's record is the one it signed last
                assert view[m.node_id]["version"] == m.status()["record_version"]
            for m in nodes[1:]:
                if m is not n:
                    assert view[m.node_id]["is_genesis"] is False
            if n is not nodes[0]:
                assert view[genesis]["is_genesis"] is True
        # every node exchanges with the others without failures
        wait_for("no failure counts at rest", lambda: all(
            w["fail_count"] == 0 for n in nodes for w in n.workers().values()))
        for n in nodes:
            st = n.status()
            assert st["workers"] == 5 and st["gossip"]["exchanges_ok"] > 0
            assert st["gossip"]["workers_removed"] == 0


def test_late_nodes_learned_by_all():
    with Net() as net:
        nodes = net.start(5)
        wait_for("5 nodes converge", lambda: all_agree(nodes, [n.node_id for n in nodes]))
        room = nodes[2].ctl("room", "create", "--emojis", "🆘🏠", "--pin", "1111",
                            "--nickname", "ana")["room_hash"]
        wait_for("the room on every node", lambda: all(room in n.rooms() for n in nodes))

        # through the genesis node, as usual
        late = net.add().start()
        # through an ordinary node: only node 3 knows the way in
        later = net.add(genesis=[nodes[3].endpoint]).start()
        everyone = net.nodes
        ids = [n.node_id for n in everyone]
        wait_for("7 nodes to list the same 7 workers", lambda: all_agree(everyone, ids))
        for n in (late, later):
            assert set(n.rooms()) == {room}, "a late node lacks the room created before it came"
            assert n.rooms()[room]["owner"] == nodes[2].node_id
        # node 3 is the late node's genesis, nobody else's
        assert later.workers()[nodes[3].node_id]["is_genesis"] is True
        assert nodes[4].workers()[nodes[3].node_id]["is_genesis"] is False

        # a room made on the newest node reaches the oldest ones
        room2 = later.ctl("room", "create", "--emojis", "🔥🌊", "--pin", "2222",
                          "--nickname", "bo")["room_hash"]
        wait_for("the new node's room everywhere",
                 lambda: all(set(n.rooms()) == {room, room2} for n in everyone))


def test_new_record_spreads():
    with Net() as net:
        nodes = net.start(5)
        ids = [n.node_id for n in nodes]
        wait_for("5 nodes converge", lambda: all_agree(nodes, ids))
        moved, crashed = nodes[2], nodes[4]
        old = records(nodes[0])

        # kill -9 and restart at once: a new record at a higher version, same endpoint
        crashed.kill()
        crashed.start()
        assert crashed.status()["record_version"] > old[crashed.node_id][1]
        wait_for("the restarted worker's new version everywhere", lambda: all(
            records(n).get(crashed.node_id) == (crashed.endpoint,
                                                crashed.status()["record_version"])
            for n in nodes))

        # stop (peers remove it on its LEAVE), restart at another endpoint: the new record
        # is newer than the removal, so it comes back, at its new address
        assert moved.stop() == 0
        wait_for("the stopped worker removed",
                 lambda: all(moved.node_id not in n.workers() for n in nodes if n is not moved))
        moved.port = free_port()
        moved.endpoint = "tcp://127.0.0.1:%d" % moved.port
        restarted_ms = time.time() * 1000
        moved.start()
        assert moved.node_id == ids[2]
        new_version = moved.status()["record_version"]
        assert new_version > old[moved.node_id][1]
        wait_for("the moved worker's new endpoint and version everywhere", lambda: all(
            records(n).get(moved.node_id) == (moved.endpoint, new_version) for n in nodes))
        wait_for("all 5 agree", lambda: all_agree(nodes, ids))
        # and the others reach it at its new endpoint
        wait_for("exchanges with the moved worker succeed", lambda: all(
            n.workers()[moved.node_id]["fail_count"] == 0 and
            n.workers()[moved.node_id]["last_ok"] >= restarted_ms for n in nodes if n is not moved))


def test_large_directory_to_late_node():
    """A directory bigger than one exchange can carry (over 512 records of one origin)
    reaches a late node whole, over several DELTA batches."""
    n_rooms = 1200
    # --max-failures high: the Python owner's endpoint is dead, and it must stay listed
    with Net(extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        a, b = net.start(2)
        wait_for("2 nodes converge", net.converged)
        owner = w.Identity()
        url = "tcp://127.0.0.1:%d" % free_port()
        recs = [w.worker_record(owner, 1, url)]
        hashes = ["%016x" % (0x5000 + i) for i in range(n_rooms)]
        for i, h in enumerate(hashes):
            recs.append(w.room_record(owner, i + 2, url, h, emojis="🆘", description="r%d" % i))
        relay = w.Identity()
        with w.Conn(a.endpoint) as conn:
            for i in range(0, len(recs), 400):
                conn.send(w.envelope(relay, w.RUMOR, w.gmsg(records=recs[i:i + 400]),
                                       receiver=a.node_id))
            wait_for("A to hold all %d rooms" % n_rooms,
                     lambda: a.status()["rooms"] == n_rooms)
        wait_for("B to hold all %d rooms" % n_rooms, lambda: b.status()["rooms"] == n_rooms)

        late = net.add(genesis=[b.endpoint]).start()
        wait_for("the late node to hold all %d rooms" % n_rooms,
                 lambda: late.status()["rooms"] == n_rooms, timeout=90)
        rooms = late.rooms()
        assert set(rooms) == set(hashes)
        assert all(r["owner"] == owner.hex and r["worker"] == url for r in rooms.values())
        assert late.workers()[owner.hex]["version"] == 1
        everyone = [n.node_id for n in net.nodes] + [owner.hex]
        wait_for("3 nodes list the same 4 workers", lambda: all_agree(net.nodes, everyone))


if __name__ == "__main__":
    run([test_five_nodes_converge, test_late_nodes_learned_by_all, test_new_record_spreads,
         test_large_directory_to_late_node])
