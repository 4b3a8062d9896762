"""test_rooms_ops.py: every room operation (create, join, send, poll, leave, info) works the
same through a room's owner and through every other node of three; leaving revokes a member;
a retried send (same msg_id) is stored once; the history limit keeps the last N messages
while seq numbers go on; polls come in bounded batches; a hash created on two nodes that had
not met ends up with the earlier creation on every node."""

import time

from sosclient import Client, ReplyError, new_room_hash
from sosnet import Net, run, wait_for


def expect_error(code, fn, *args, **kw):
    try:
        body = fn(*args, **kw)
    except ReplyError as e:
        assert e.code == code, "expected %s, got %s %r" % (code, e.code, e.body)
        assert e.body.get("error") == code, e.body
        return e.body
    raise AssertionError("expected %s, got ok %r" % (code, body))


def msg_view(m):
    return (m["id"], m["seq"], m["sender"], m["content"], m["timestamp"])


def test_every_op_through_every_node():
    with Net() as net:
        nodes = net.start(3)
        wait_for("convergence", net.converged)
        clients = [Client(n.endpoint) for n in nodes]
        try:
            for owner_index, owner in enumerate(nodes):
                room = new_room_hash()
                oc = clients[owner_index]
                created = oc.create(room, emojis="🆘🏠", description="shelter %d" % owner_index,
                                    nickname="owner")
                assert created["room_hash"] == room
                assert created["members"] == ["owner"]
                assert created["expires_at"] > created["created_at"]
                creator = created["member_id"]
                for n in nodes:
                    wait_for("room in node %d's directory" % n.index, lambda: room in n.rooms())
                    listed = n.rooms()[room]
                    assert listed["description"] == "shelter %d" % owner_index, listed
                    assert listed["owner"] == owner.node_id, listed

                # join, info and send through each node, the owner and the others alike
                members = {"owner": creator}
                sent = []
                for i, c in enumerate(clients):
                    nick = "via%d" % i
                    joined = c.join(room, nickname=nick)
                    assert joined["room_hash"] == room
                    assert joined["created_at"] == created["created_at"]
                    assert joined["expires_at"] == created["expires_at"]
                    assert nick in joined["members"]
                    assert joined["last_seq"] == len(sent)
                    members[nick] = joined["member_id"]
                    info = c.info(room)
                    assert info["owner"] == owner.node_id, info
                    assert sorted(info["members"]) == sorted(members), info
                    assert info["message_count"] == len(sent)
                    assert info["created_at"] == created["created_at"]
                    ack = c.send(room, joined["member_id"], "content %d via node %d" % (i, i),
                                 "m-%d" % i)
                    assert ack["id"] == "m-%d" % i
                    assert ack["seq"] == len(sent) + 1, ack
                    sent.append((ack["id"], ack["seq"], nick, "content %d via node %d" % (i, i),
                                 ack["timestamp"]))

                # every member polls through every node and sees the same messages
                for nick, member in members.items():
                    for c in clients:
                        polled = c.poll(room, member)
                        assert [msg_view(m) for m in polled["messages"]] == sent, polled
                        assert sorted(polled["members"]) == sorted(members)
                        assert polled["last_seq"] == len(sent)
                        assert polled["message_count"] == len(sent)
                        tail = c.poll(room, member, since=2)["messages"]
                        assert [msg_view(m) for m in tail] == sent[2:]

                # leave through each node; the member id then stops working everywhere
                for i, c in enumerate(clients):
                    nick = "via%d" % i
                    member = members.pop(nick)
                    assert c.leave(room, member)["status"] == "left"
                    for other in clients:
                        expect_error("not_member", other.send, room, member, "after leaving",
                                     "late-%d" % i)
                        expect_error("not_member", other.poll, room, member)
                        expect_error("not_member", other.leave, room, member)
                        assert sorted(other.info(room)["members"]) == sorted(members)
                # the messages of those who left stay
                assert [msg_view(m) for m in clients[(owner_index + 1) % 3].poll(
                    room, creator)["messages"]] == sent
        finally:
            for c in clients:
                c.close()


def test_sosctl_through_every_node():
    """sosctl end to end: encrypted text sent through any node decrypts the same from all."""
    with Net() as net:
        a, b, c = net.start(3)
        wait_for("convergence", net.converged)
        pin = ["--emojis", "🔥🌊🦊", "--pin", "2468"]
        room = a.ctl("room", "create", "--nickname", "ana", *pin[:2])["room_hash"]
        for n in (b, c):
            wait_for("room in node %d's directory" % n.index, lambda: room in n.rooms())
        # sosctl sent the emojis as a list; the directory shows the creator's emojis
        for n in (a, b, c):
            assert n.rooms()[room]["emojis"] == "🔥🌊🦊", n.rooms()[room]
        member = {}
        for n, nick in ((a, "ana2"), (b, "bo"), (c, "cy")):
            member[nick] = n.ctl("room", "join", room, "--nickname", nick)["member_id"]
        texts = []
        for n, nick in ((c, "ana2"), (a, "bo"), (b, "cy")):
            text = "from %s through node %d" % (nick, n.index)
            n.ctl("room", "send", room, "--member", member[nick], *pin, text)
            texts.append((nick, text))
        for n in (a, b, c):
            for m in member.values():
                polled = n.ctl("room", "poll", room, "--member", m, *pin)
                assert [(x["sender"], x["text"]) for x in polled["messages"]] == texts, polled
        info = b.ctl("room", "info", room)
        assert info["owner"] == a.node_id
        assert sorted(info["members"]) == sorted(["ana", "ana2", "bo", "cy"])


def test_idempotent_retry():
    with Net() as net:
        a, b, c = net.start(3)
        wait_for("convergence", net.converged)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb, Client(c.endpoint) as cc:
            room = new_room_hash()
            ca.create(room, nickname="ana")
            wait_for("room in b and c", lambda: room in b.rooms() and room in c.rooms())
            member = cb.join(room, nickname="bo")["member_id"]
            first = cb.send(room, member, "hello", "retry-1")
            # the same msg_id again: through the same node, the owner, and another node
            for client in (cb, ca, cc):
                again = client.send(room, member, "hello", "retry-1")
                assert again == first, (again, first)
            # the next message gets the next seq: the retries took none
            second = cc.send(room, member, "world", "retry-2")
            assert second["seq"] == first["seq"] + 1
            assert cc.send(room, member, "world", "retry-2")["seq"] == second["seq"]
            for client in (ca, cb, cc):
                msgs = client.poll(room, member)["messages"]
                assert [(m["id"], m["seq"], m["content"]) for m in msgs] == [
                    ("retry-1", first["seq"], "hello"), ("retry-2", second["seq"], "world")], msgs
                assert client.info(room)["message_count"] == 2
            gossip = a.status()["gossip"]
            assert gossip["sends"] == 2 and gossip["send_dups"] == 4, gossip
            # a message without a msg_id is never taken for a retry
            one = ca.request("send", room_hash=room, member_id=member, content="x")
            two = ca.request("send", room_hash=room, member_id=member, content="x")
            assert two["seq"] == one["seq"] + 1 and one["id"] != two["id"]


def test_retry_ids_kept_by_the_owner():
    """The owner keeps a room's message ids in memory, built from the stored history: a retry
    in the same batch as its first attempt, after hundreds of other ids, and after kill -9 and
    a restart (the table built again from the store) gets the first seq; a retry of a message
    that fell out of the history is stored anew; a room made again under its hash after a
    drop does not answer with the old room's seqs."""
    with Net() as net:
        a = net.add(extra=["--history", "100"]).start()
        with Client(a.endpoint) as ca:
            room = new_room_hash()
            member = ca.create(room, nickname="ana")["member_id"]
            # one batch: the same id three times among others is stored once
            ids = [ca.post("send", {"room_hash": room, "member_id": member, "content": "c%d" % k,
                                    "msg_id": "twice" if k % 7 == 0 else "id-%d" % k})
                   for k in range(60)]
            replies = ca.collect(ids, timeout=60)
            seqs = {}
            for k, req in enumerate(ids):
                status, body = replies[req]
                assert status == "ok", body
                seqs.setdefault(body["id"], set()).add(body["seq"])
            assert len(seqs["twice"]) == 1, seqs["twice"]
            assert sorted(s for v in seqs.values() for s in v) == list(range(1, 53))
            for k in range(60, 150):
                assert ca.send(room, member, "c%d" % k, "id-%d" % k)["seq"] == k - 7
            kept = ca.send(room, member, "late", "id-120")  # a retry, not a new message
            assert kept["seq"] == 120 - 7, kept
        a.kill()
        a.start()
        with Client(a.endpoint) as ca:
            for k in (100, 149):
                assert ca.send(room, member, "c%d" % k, "id-%d" % k)["seq"] == k - 7
            status = a.status()["gossip"]
            assert status["send_dups"] == 2 and status["msgid_tables_dropped"] == 0, status
            # seqs 1..42 fell out of the history (100 kept of 142): their ids are stored anew
            again = ca.send(room, member, "c1", "id-1")
            assert again["seq"] == 143, again
            assert ca.send(room, member, "c1", "id-1")["seq"] == 143
            assert [m["seq"] for m in ca.poll_all(room, member)][-2:] == [142, 143]


def test_history_limit():
    with Net() as net:
        a = net.add(extra=["--history", "5"]).start()
        b = net.add().start()
        wait_for("convergence", net.converged)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            room = new_room_hash()
            member = ca.create(room, nickname="ana")["member_id"]
            wait_for("room in b", lambda: room in b.rooms())
            for k in range(1, 9):
                client = ca if k % 2 else cb
                assert client.send(room, member, "m%d" % k, "id-%d" % k)["seq"] == k
            for client in (ca, cb):
                polled = client.poll(room, member)
                assert [(m["seq"], m["content"]) for m in polled["messages"]] == [
                    (k, "m%d" % k) for k in range(4, 9)], polled
                assert polled["message_count"] == 5 and polled["last_seq"] == 8
                # since below the kept range gives what is kept, no more
                assert [m["seq"] for m in client.poll(room, member, since=2)["messages"]] == [
                    4, 5, 6, 7, 8]
                assert [m["seq"] for m in client.poll(room, member, since=6)["messages"]] == [7, 8]
                assert client.info(room)["message_count"] == 5
            # a retry of a kept message still gets its seq; nothing is added
            assert cb.send(room, member, "m7", "id-7")["seq"] == 7
            # seq goes on after the oldest fell out
            assert cb.send(room, member, "m9", "id-9")["seq"] == 9
            polled = ca.poll(room, member)
            assert [m["seq"] for m in polled["messages"]] == [5, 6, 7, 8, 9]
            assert polled["message_count"] == 5 and polled["last_seq"] == 9


def test_poll_batches():
    """A poll returns a bounded batch (at most 1000 messages or 1 MiB of content); polling on
    from the last seq of each batch gets the rest, in order, through any node."""
    with Net() as net:
        a = net.add(extra=["--history", "1500"]).start()
        b = net.add().start()
        wait_for("convergence", net.converged)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            big, many = new_room_hash(), new_room_hash()
            mbig = ca.create(big)["member_id"]
            mmany = ca.create(many)["member_id"]
            wait_for("rooms in b", lambda: big in b.rooms() and many in b.rooms())
            contents = [("%02d" % k) * (32 * 1024) for k in range(20)]  # 64 KiB each
            for k, text in enumerate(contents):
                assert cb.send(big, mbig, text, "big-%d" % k)["seq"] == k + 1
            for client in (ca, cb):
                first = client.poll(big, mbig)["messages"]
                assert 1 <= len(first) < 20, len(first)
                assert sum(len(m["content"]) for m in first) <= 1024 * 1024
                assert [m["content"] for m in client.poll_all(big, mbig)] == contents
            ids = [ca.post("send", {"room_hash": many, "member_id": mmany, "content": "m%d" % k,
                                    "msg_id": "many-%d" % k}) for k in range(1200)]
            replies = ca.collect(ids, timeout=120)
            assert [replies[i][1]["seq"] for i in ids] == list(range(1, 1201))
            for client in (ca, cb):
                first = client.poll(many, mmany)
                assert [m["seq"] for m in first["messages"]] == list(range(1, 1001))
                assert first["last_seq"] == 1200 and first["message_count"] == 1200
                rest = client.poll(many, mmany, since=1000)["messages"]
                assert [m["content"] for m in rest] == ["m%d" % k for k in range(1000, 1200)]


def test_conflicting_creates():
    """The same room hash created on two nodes that had not heard of each other: once they
    meet, every node gives the room to the earlier creation; the losing owner drops its copy,
    so its members get not_member (also a poll waiting there) and join again on the winner."""
    with Net() as net:
        a = net.add(genesis=[]).start()
        b = net.add(genesis=[]).start()  # a separate network, for now
        room = new_room_hash()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            won = ca.create(room, nickname="first")
            wait_for("a later millisecond", lambda: time.time() * 1000 > won["created_at"] + 5)
            lost = cb.create(room, nickname="second")
            assert lost["created_at"] > won["created_at"]
            ca.send(room, won["member_id"], "kept", "kept")
            cb.send(room, lost["member_id"], "lost", "lost")
            waiting = cb.post("poll", {"room_hash": room, "member_id": lost["member_id"],
                                       "since": 1, "wait_ms": 25000})
            # c knows both: the two networks become one
            c = net.add(genesis=[a.endpoint, b.endpoint]).start()
            wait_for("one network of three", net.converged)
            for n in (a, b, c):
                wait_for("node %d to give the room to a" % n.index,
                         lambda: n.rooms().get(room, {}).get("owner") == a.node_id)
            status, body = cb.collect([waiting], timeout=60)[waiting]
            assert status == "not_member", (status, body)
            with Client(c.endpoint) as cc:
                for client in (ca, cb, cc):
                    wait_for("the owner to answer", lambda: client.info(room), timeout=30)
                    info = client.info(room)
                    assert info["owner"] == a.node_id and info["members"] == ["first"], info
                    assert info["created_at"] == won["created_at"]
                    polled = client.poll(room, won["member_id"])
                    assert [m["content"] for m in polled["messages"]] == ["kept"]
                    for op, args in (("send", {"content": "x", "msg_id": "x"}),
                                     ("poll", {"since": 0}), ("leave", {})):
                        args = dict(args, room_hash=room, member_id=lost["member_id"])
                        status, body = client.call(op, args)
                        assert status == "not_member", (op, status, body)
                again = cb.join(room, nickname="second")
                assert sorted(again["members"]) == ["first", "second"]
                assert cc.send(room, again["member_id"], "hello", "hello")["seq"] == 2


if __name__ == "__main__":
    run([test_every_op_through_every_node, test_sosctl_through_every_node, test_idempotent_retry,
         test_retry_ids_kept_by_the_owner,
         test_history_limit, test_poll_batches, test_conflicting_creates])
