"""test_rooms_forward_connect.py: a forward to a live owner is answered, whatever the state of
the forwarding node's connection to it: closed to stay under --max-peer-connections, never
opened since the forwarding node started, or waiting to reconnect after the owner restarted
at the same endpoint. The forward opens (or dials anew) the connection and waits for it within
its deadline; owner_unreachable is only for an owner that does not answer."""

import time

from sosnet import Net, run, wait_for

# The room hash comes from the emojis alone: one pair per owner.
EMOJIS = ["🔥🌊", "🦊🌲", "🚑🏥", "🆘🏠", "🌙🌟", "🍎🍐", "🐝🌻", "🎈🎁", "🚲🛴", "🐢🐇"]
# The forwarding node must not remove an owner that is down for a while.
PATIENT = ["--max-failures", "1000"]


PIN = "4711"


def emojis(owner):
    return EMOJIS[owner.index]


def make_room(owner):
    """A room on owner and a member of it; returns (room_hash, member_id)."""
    room = owner.ctl("room", "create", "--emojis", emojis(owner), "--pin", PIN, "--nickname",
                     "n%d" % owner.index)["room_hash"]
    member = owner.ctl("room", "join", room, "--nickname", "m%d" % owner.index)["member_id"]
    return room, member


def send(via, owner, room, member, text, **kw):
    """A send through via to owner's room, which must be answered ok (CtlError, e.g.
    owner_unreachable, otherwise)."""
    via.ctl("room", "send", room, "--member", member, "--emojis", emojis(owner), "--pin", PIN,
            text, **kw)


def texts(owner, room, member):
    polled = owner.ctl("room", "poll", room, "--member", member, "--emojis", emojis(owner),
                       "--pin", PIN)
    return [m["text"] for m in polled["messages"]]


def test_forwards_past_the_connection_cap():
    """A node with room for 8 connections forwards to 9 owners in turn, twice: each forward
    finds the owner's connection closed (to make room for another) or just opened."""
    with Net() as net:
        nodes = net.start(10)
        via = nodes[1]
        assert via.stop() == 0
        via.extra = ["--max-peer-connections", "8"]
        via.start()
        wait_for("10 nodes converge", net.converged, timeout=120)
        owners = [n for n in nodes if n is not via]
        rooms = [make_room(o) for o in owners]
        wait_for("every room on the forwarding node",
                 lambda: {r for r, _ in rooms} <= set(via.rooms()))
        for lap in range(2):
            for (room, member), owner in zip(rooms, owners):
                send(via, owner, room, member, "lap %d to %d" % (lap, owner.index))
        for (room, member), owner in zip(rooms, owners):
            assert texts(owner, room, member) == [
                "lap 0 to %d" % owner.index, "lap 1 to %d" % owner.index]
        assert via.status()["gossip"]["connections_closed"] > 0, "the cap never closed a connection"


def test_first_forward_after_forwarder_restart():
    """The forwarding node restarts: its first forward to each owner opens the connection.
    The send is on its way before the node is up (sosctl waits for it), so that it arrives
    as the node starts, before any of its connections can have been made."""
    with Net() as net:
        a, b, c = net.start(3)
        wait_for("3 nodes converge", net.converged)
        owners = [a, c]
        rooms = [make_room(o) for o in owners]
        wait_for("rooms on b", lambda: {r for r, _ in rooms} <= set(b.rooms()))
        for i in range(3):
            assert b.stop() == 0
            b.start(wait=False)
            for (room, member), owner in zip(rooms, owners):
                send(b, owner, room, member, "after restart %d" % i, timeout_ms=15000)
        for (room, member), owner in zip(rooms, owners):
            assert texts(owner, room, member) == ["after restart %d" % i for i in range(3)]


def test_first_forward_after_owner_restart():
    """The owner restarts at the same endpoint after long enough for ZeroMQ's reconnect
    backoff on the forwarding node to have grown to seconds."""
    with Net() as net:
        a = net.add().start()
        b = net.add(extra=PATIENT).start()
        wait_for("2 nodes converge", net.converged)
        room, member = make_room(a)
        wait_for("room on b", lambda: room in b.rooms())
        send(b, a, room, member, "before")
        for i in range(2):
            assert a.stop() == 0
            time.sleep(8)  # the reconnect interval doubles up to 5 s meanwhile
            a.start()
            send(b, a, room, member, "after owner restart %d" % i)
        assert texts(a, room, member) == [
            "before", "after owner restart 0", "after owner restart 1"]


if __name__ == "__main__":
    run([test_forwards_past_the_connection_cap, test_first_forward_after_forwarder_restart,
         test_first_forward_after_owner_restart])
