"""test_faults_third.py: kill -9 a third of a 15-node network, then restart it.

Fifteen nodes (gossip every 200 ms, --max-failures 3, no rate limit); every node owns a room
with a few messages. Five nodes (never the genesis) are killed with SIGKILL. The ten others
must remove exactly those five, keep serving the rooms they own (join, send, poll through any
survivor, with the messages from before intact), and answer owner_unreachable, naming the
owner, for the rooms of the dead nodes, which stay in the directory. The five are then
restarted on their data directories: every node lists all fifteen again and the dead nodes'
rooms work again through any node, with every message from before the kill, in order.

Deadlines are generous; how many gossip rounds the removal took is printed, not asserted."""

import random
import threading

from sosclient import Client, new_room_hash
from sosnet import Net, run, wait_for

N_NODES = 15
N_KILLED = 5
INTERVAL = 200
MAX_FAILURES = 3
MESSAGES = 3


def messages_of(client, room, member):
    return [(m["seq"], m["id"], m["content"]) for m in client.poll_all(room, member)]


def test_kill_a_third_and_restart():
    with Net(interval=INTERVAL, extra=["--rate-limit", "off",
                                      "--max-failures", str(MAX_FAILURES)]) as net:
        nodes = net.start(N_NODES)
        everyone = {n.node_id for n in nodes}
        wait_for("%d nodes to list all %d" % (N_NODES, N_NODES), net.converged, timeout=300,
                 interval=0.5)

        # Every node owns a room: its creator and MESSAGES messages.
        rooms = {}  # node index -> (room, creator member id, [(seq, msg_id, content)])
        for n in nodes:
            with Client(n.endpoint) as c:
                room = new_room_hash()
                member = c.create(room, nickname="owner%d" % n.index)["member_id"]
                sent = []
                for k in range(MESSAGES):
                    msg_id, content = "m%d-%d" % (n.index, k), "before %d/%d" % (n.index, k)
                    ack = c.send(room, member, content, msg_id)
                    sent.append((ack["seq"], msg_id, content))
                assert [s for s, _, _ in sent] == list(range(1, MESSAGES + 1)), sent
                rooms[n.index] = (room, member, sent)
        all_rooms = {r for r, _, _ in rooms.values()}
        wait_for("every room in every node's directory",
                 lambda: all(all_rooms <= set(n.rooms()) for n in nodes), timeout=300,
                 interval=0.5)

        rng = random.Random()
        killed = sorted(rng.sample(nodes[1:], N_KILLED), key=lambda n: n.index)
        survivors = [n for n in nodes if n not in killed]
        rounds_at_kill = {n.index: n.status()["gossip"]["rounds"] for n in survivors}
        for n in killed:
            n.kill()
        print("killed nodes %s" % [n.index for n in killed], flush=True)

        alive_ids = {n.node_id for n in survivors}
        rounds = {}  # survivor index -> gossip rounds it ran until it listed only survivors

        def removed_everywhere():
            for n in survivors:
                if n.index not in rounds:
                    ran = n.status()["gossip"]["rounds"] - rounds_at_kill[n.index]
                    if set(n.workers()) == alive_ids:
                        rounds[n.index] = ran
            return len(rounds) == len(survivors)
        wait_for("the survivors to remove exactly the %d killed nodes" % N_KILLED,
                 removed_everywhere, timeout=300, interval=0.2)
        assert net.converged(nodes=survivors, expect=alive_ids)
        print("removal took %d to %d gossip rounds per survivor (max-failures %d)" % (
            min(rounds.values()), max(rounds.values()), MAX_FAILURES), flush=True)
        for n in survivors:
            assert all_rooms <= set(n.rooms()), "rooms of removed owners left the directory"

        clients = {n.index: Client(n.endpoint, timeout=20) for n in survivors}
        try:
            # Rooms of survivors: join, send and poll through every survivor.
            for owner in survivors:
                room, creator, sent = rooms[owner.index]
                for via in survivors:
                    c = clients[via.index]
                    member = c.join(room, nickname="via%d" % via.index)["member_id"]
                    content = "after the kill, via %d" % via.index
                    ack = c.send(room, member, content, "k%d-%d" % (owner.index, via.index))
                    assert ack["seq"] == len(sent) + 1, ack
                    sent.append((ack["seq"], ack["id"], content))
                    assert messages_of(c, room, member) == sent
                    assert messages_of(c, room, creator) == sent
                assert c.info(room)["owner"] == owner.node_id

            # Rooms of the dead: owner_unreachable, naming the owner, through every survivor.
            # Each such forward waits out its deadline (the owner might just be connecting),
            # so the survivors are asked in parallel, each on a client of its own.
            failures = []

            def ask_dead(via):
                try:
                    with Client(via.endpoint, timeout=20) as c:
                        for dead in killed:
                            room, creator, _ = rooms[dead.index]
                            for op, args in (("join", {}), ("info", {}),
                                             ("send", {"member_id": creator, "content": "x",
                                                       "msg_id": "lost"}),
                                             ("poll", {"member_id": creator, "since": 0})):
                                status, body = c.call(op, dict(args, room_hash=room))
                                assert status == "owner_unreachable", (op, via.index, status,
                                                                       body)
                                assert body["error"] == "owner_unreachable", body
                                assert body["owner"] == dead.node_id, body
                except Exception as e:  # noqa: BLE001 -- reported by the main thread
                    failures.append(repr(e))

            threads = [threading.Thread(target=ask_dead, args=(via,)) for via in survivors]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not failures, failures
        finally:
            for c in clients.values():
                c.close()

        # Restart the dead on their data directories: the network heals.
        for n in killed:
            n.start()
        assert {n.node_id for n in killed} <= everyone, "a restarted node changed identity"
        wait_for("all %d nodes to list all %d again" % (N_NODES, N_NODES),
                 lambda: net.converged(expect=everyone), timeout=300, interval=0.5)

        clients = {n.index: Client(n.endpoint, timeout=20) for n in nodes}
        try:
            for dead in killed:
                room, creator, sent = rooms[dead.index]
                for via in [dead] + rng.sample(survivors, 2):
                    c = clients[via.index]
                    # Connections to the restarted owner may still be coming up.
                    member = wait_for(
                        "room of node %d through node %d" % (dead.index, via.index),
                        lambda: c.join(room, nickname="back%d" % via.index)["member_id"],
                        timeout=120, interval=0.5)
                    assert messages_of(c, room, creator) == sent, "messages lost in a kill"
                    content = "after the restart, via %d" % via.index
                    ack = c.send(room, member, content, "r%d-%d" % (dead.index, via.index))
                    assert ack["seq"] == len(sent) + 1, ack
                    sent.append((ack["seq"], ack["id"], content))
                    assert messages_of(c, room, member) == sent
                assert clients[0].info(room)["owner"] == dead.node_id
            # And the survivors' rooms still answer through the restarted nodes.
            for owner in survivors:
                room, creator, sent = rooms[owner.index]
                c = clients[killed[0].index]
                got = wait_for("room of node %d through restarted node %d" % (
                    owner.index, killed[0].index), lambda: messages_of(c, room, creator),
                    timeout=120, interval=0.5)
                assert got == sent
        finally:
            for c in clients.values():
                c.close()
        for n in nodes:
            assert n.alive(), "node %d died" % n.index


if __name__ == "__main__":
    run([test_kill_a_third_and_restart])
