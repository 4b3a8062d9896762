"""test_gossip_restart.py: the directory lives in the node's LMDB store. A node stopped
together with every other node, then started alone, lists the whole directory (workers and
rooms) at once, before it could have heard from anyone; the same after kill -9, which must
also keep every write the node acknowledged (rooms it created, messages in them). Then the
other nodes come back and the network converges again."""

import threading

from sosclient import Client, new_room_hash
from sosnet import Net, run, wait_for

# For the lone restart: rounds so far apart that the node cannot fail (and so remove) the
# workers it cannot reach while the test looks at its directory. Later flags win.
SLOW = ["--gossip-interval", "60000"]


def records(node):
    return {i: (r["url"], r["version"]) for i, r in node.workers().items()}


def populate(net, owners):
    """Create one room on each owner; wait until every node lists every room. Returns
    the room hashes."""
    rooms = []
    emojis = ["🔥🌊", "🦊🌲", "🚑🏥", "🆘🏠"]
    for i, n in enumerate(owners):
        rooms.append(n.ctl("room", "create", "--emojis", emojis[i], "--pin", "4711",
                           "--nickname", "n%d" % n.index)["room_hash"])
    wait_for("every room on every node",
             lambda: all(set(n.rooms()) == set(rooms) for n in net.nodes))
    return rooms


def restart_alone(node):
    node.extra = node.extra + SLOW
    node.start()
    # what it lists now comes from its store: nobody else is up
    return node.workers(), node.rooms()


def rejoin(node, others):
    """Start the others, then restart node at the usual interval. The others may have
    removed node before they stopped (it stopped first), so node announces itself: its
    first round at start reaches them."""
    for n in others:
        n.start()
    assert node.stop() == 0
    node.extra = [a for a in node.extra if a not in SLOW]
    node.start()


def test_directory_survives_full_shutdown():
    with Net() as net:
        nodes = net.start(4)
        wait_for("4 nodes converge", net.converged)
        x = nodes[1]
        rooms = populate(net, [nodes[0], nodes[2], nodes[3], x])
        want_workers = records(x)
        want_rooms = x.rooms()
        assert len(want_workers) == 4 and len(want_rooms) == 4
        old_version = want_workers[x.node_id][1]

        # x first, so that no LEAVE from the others reaches it; then everyone else
        assert x.stop() == 0
        for n in nodes:
            if n is not x:
                assert n.stop() == 0
        assert not any(n.alive() for n in nodes)

        workers, got_rooms = restart_alone(x)
        assert set(workers) == set(want_workers), "workers lost across a restart"
        for i, (url, version) in want_workers.items():
            assert workers[i]["url"] == url
            if i != x.node_id:
                assert workers[i]["version"] == version
        assert workers[x.node_id]["version"] > old_version  # a new record at every start
        assert workers[nodes[0].node_id]["is_genesis"] is True
        assert got_rooms == want_rooms, "rooms lost or changed across a restart"
        st = x.status()
        assert st["workers"] == 4 and st["rooms"] == 4

        # the others come back; all converge, and x's own rooms still work
        rejoin(x, [n for n in nodes if n is not x])
        wait_for("4 nodes converge after the full restart", net.converged, timeout=90)
        wait_for("every room on every node again",
                 lambda: all(set(n.rooms()) == set(rooms) for n in nodes))
        joined = nodes[0].ctl("room", "join", rooms[3], "--nickname", "zed")
        nodes[2].ctl("room", "send", rooms[3], "--member", joined["member_id"], "--emojis",
                     "🆘🏠", "--pin", "4711", "after the restart")
        polled = x.ctl("room", "poll", rooms[3], "--member", joined["member_id"], "--emojis",
                       "🆘🏠", "--pin", "4711")
        assert [m["text"] for m in polled["messages"]] == ["after the restart"]


def test_store_intact_after_kill():
    # The writer runs until x is killed: x keeps every message, so that each acknowledged
    # one can be looked for (the default history keeps the last 500).
    with Net(extra=["--rate-limit", "off", "--history", "100000", "--room-quota", "0"]) as net:
        nodes = net.start(4)
        wait_for("4 nodes converge", net.converged)
        x = nodes[2]
        rooms = populate(net, [nodes[0], nodes[1], nodes[3]])

        # rooms created on x, and messages written into one of them until x is killed:
        # every one acknowledged must be there after the restart
        with Client(x.endpoint) as c:
            mine = [new_room_hash() for _ in range(5)]
            for h in mine:
                c.create(h, emojis="", nickname="x")
            member = c.join(mine[0], nickname="writer")["member_id"]
        acked = []
        stop = threading.Event()

        def writer():
            with Client(x.endpoint, timeout=2) as cw:
                i = 0
                while not stop.is_set():
                    try:
                        cw.send(mine[0], member, "m%d" % i, "id%d" % i)
                        acked.append(i)
                    except Exception:
                        return  # the node is gone
                    i += 1

        t = threading.Thread(target=writer)
        t.start()
        wait_for("some messages written", lambda: len(acked) >= 20)
        wait_for("x's rooms on every node",
                 lambda: all(set(n.rooms()) >= set(mine) for n in nodes))
        want_workers = records(x)
        want_rooms = x.rooms()
        x.kill()
        stop.set()
        t.join(30)
        assert not t.is_alive()
        for n in nodes:
            if n is not x:
                n.kill()

        workers, got_rooms = restart_alone(x)
        assert set(workers) == set(want_workers)
        assert all(workers[i]["url"] == u for i, (u, _) in want_workers.items())
        assert got_rooms == want_rooms
        assert set(got_rooms) == set(rooms) | set(mine)
        with Client(x.endpoint) as c:
            got = c.poll_all(mine[0], member)
            texts = [m["content"] for m in got]
            missing = ["m%d" % i for i in acked if "m%d" % i not in texts]
            assert not missing, "%d acknowledged messages lost: %r" % (len(missing), missing[:5])
            seqs = [m["seq"] for m in got]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            for h in mine:
                assert c.info(h)["room_hash"] == h
            # and it writes again
            c.send(mine[0], member, "after the crash", "after")

        rejoin(x, [n for n in nodes if n is not x])
        wait_for("4 nodes converge after the crash", net.converged, timeout=90)


if __name__ == "__main__":
    run([test_directory_survives_full_shutdown, test_store_intact_after_kill])
