"""test_rooms_expiry.py: rooms expire (--room-ttl 3). An expired room leaves every node's
directory and every operation on it says room_not_found, also a long poll waiting on it; a room
that expires while its owner is down is gone when the owner comes back, members and messages
with it, so that its hash can be created afresh."""

import time

from sosclient import FRAME_REQUEST, Client, ReplyError, new_room_hash, pack
from sosnet import Net, run, wait_for

TTL = ["--room-ttl", "3"]


def expect_error(code, fn, *args, **kw):
    try:
        body = fn(*args, **kw)
    except ReplyError as e:
        assert e.code == code, "expected %s, got %s %r" % (code, e.code, e.body)
        return e.body
    raise AssertionError("expected %s, got ok %r" % (code, body))


def wait_until_ms(epoch_ms):
    """Sleep until the wall clock passes epoch_ms (the nodes' expiry times are wall clock)."""
    while time.time() * 1000 <= epoch_ms:
        time.sleep(0.05)


def test_room_expires_everywhere():
    with Net(extra=["--rate-limit", "off"] + TTL) as net:
        nodes = net.start(3)
        a, b, c = nodes
        wait_for("convergence", net.converged)
        room, other = new_room_hash(), new_room_hash()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb, Client(c.endpoint) as cc:
            created = ca.create(room, nickname="ana")
            assert 2500 <= created["expires_at"] - created["created_at"] <= 3500, created
            member = created["member_id"]
            for n in nodes:
                wait_for("room in node %d" % n.index, lambda: room in n.rooms(), timeout=30)
            member_b = cb.join(room, nickname="bo")["member_id"]
            cc.send(room, member_b, "soon gone", "m1")
            # a long poll through b waits on the room as it expires
            start = time.monotonic()
            req_id = cb.new_req_id()
            cb.send_frame(pack([FRAME_REQUEST, req_id, "poll",
                                {"room_hash": room, "member_id": member_b, "since": 1,
                                 "wait_ms": 20000}, 0]))
            for n in nodes:
                wait_for("room to leave node %d's directory" % n.index,
                         lambda: room not in n.rooms(), timeout=60)
            status, body = cb.recv_reply(req_id, timeout=60)
            assert status == "room_not_found", (status, body)
            assert time.monotonic() - start < 20, "the poll waited out its wait"
            for client in (ca, cb, cc):
                expect_error("room_not_found", client.info, room)
                expect_error("room_not_found", client.join, room)
                expect_error("room_not_found", client.send, room, member, "late", "m2")
                expect_error("room_not_found", client.poll, room, member)
                expect_error("room_not_found", client.leave, room, member)
            for n in nodes:
                assert n.status()["rooms"] == 0
            # a room created later lives its own ttl
            cb.create(other, nickname="bo")
            wait_for("the new room in c", lambda: other in c.rooms(), timeout=30)
            assert cc.info(other)["owner"] == b.node_id


def test_expiry_across_restart():
    with Net() as net:
        a = net.add(extra=TTL).start()
        b = net.add().start()
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            created = ca.create(room, nickname="ana")
            old_member = created["member_id"]
            wait_for("room in b", lambda: room in b.rooms(), timeout=30)
            member_b = cb.join(room, nickname="bo")["member_id"]
            for k in range(3):
                ca.send(room, old_member, "old %d" % k, "old-%d" % k)
        a.stop()
        wait_until_ms(created["expires_at"] + 500)
        wait_for("room to leave b's directory", lambda: room not in b.rooms(), timeout=60)
        # the room keeps the expiry it was created with; the new one made below lives long
        a.extra = ["--room-ttl", "3600"]
        a.start()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            for client in (ca, cb):
                expect_error("room_not_found", client.info, room)
                expect_error("room_not_found", client.poll, room, member_b)
            # the owner dropped the room, members and messages: the hash is free again
            fresh = ca.create(room, nickname="new")
            assert fresh["members"] == ["new"]
            assert fresh["created_at"] > created["created_at"]
            wait_for("new room in b", lambda: room in b.rooms(), timeout=30)
            # b reconnects to the restarted owner in the background (with back-off)
            wait_for("b to reach the restarted owner", lambda: cb.info(room), timeout=60)
            for client in (ca, cb):
                info = client.info(room)
                assert info["members"] == ["new"] and info["message_count"] == 0, info
                expect_error("not_member", client.poll, room, old_member)
                expect_error("not_member", client.send, room, member_b, "x", "old-0")
            polled = cb.poll(room, fresh["member_id"])
            assert polled["messages"] == [] and polled["last_seq"] == 0, polled
            # old msg_ids are forgotten with the old room: the same id is a new message
            assert cb.send(room, fresh["member_id"], "new 0", "old-0")["seq"] == 1
            assert [m["content"] for m in ca.poll(room, fresh["member_id"])["messages"]] == [
                "new 0"]
            wait_for("room listed by a", lambda: room in a.rooms())


if __name__ == "__main__":
    run([test_room_expires_everywhere, test_expiry_across_restart])
