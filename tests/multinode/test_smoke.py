"""test_smoke.py: three nodes on loopback find each other through a genesis node, and a room
created on one is usable from the others."""

from sosnet import Net, run, wait_for


def test_three_nodes_converge():
    with Net() as net:
        net.start(3)
        wait_for("3 nodes to list all 3 workers", net.converged, timeout=60)
        genesis = net.nodes[0].node_id
        for n in net.nodes[1:]:
            assert n.workers()[genesis]["is_genesis"] is True


def test_room_through_other_nodes():
    with Net() as net:
        a, b, c = net.start(3)
        wait_for("convergence", net.converged)
        created = a.ctl("room", "create", "--emojis", "🆘🏠", "--pin", "4711", "--nickname", "ana")
        room = created["room_hash"]
        wait_for("room in c's directory", lambda: room in c.rooms())
        joined = c.ctl("room", "join", room, "--nickname", "carl")
        member = joined["member_id"]
        sent = b.ctl("room", "send", room, "--member", member, "--emojis", "🆘🏠", "--pin", "4711",
                     "we are at the school")
        assert sent["seq"] == 1
        polled = c.ctl("room", "poll", room, "--member", member, "--emojis", "🆘🏠", "--pin", "4711")
        assert [m["text"] for m in polled["messages"]] == ["we are at the school"]
        assert polled["messages"][0]["sender"] == "carl"


if __name__ == "__main__":
    run([test_three_nodes_converge, test_room_through_other_nodes])
