"""test_gossip_converge.py: directory convergence by gossip. Five nodes come to list the same
five workers with the same records; nodes added later, through the genesis node or through
any other node, are learned by all and learn the whole directory (rooms too); a worker's new
record (a restart signs a higher version, at the same or another endpoint) replaces the
old one everywhere."""

import time

from sosnet import Net, free_port, run, wait_for


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


if __name__ == "__main__":
    run([test_five_nodes_converge, test_late_nodes_learned_by_all, test_new_record_spreads])
