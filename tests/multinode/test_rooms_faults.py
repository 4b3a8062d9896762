"""test_rooms_faults.py: a room's owner dies and comes back. While it is down (kill -9), every
room operation through another node answers owner_unreachable naming the owner, also a long
poll that was waiting on it; once it is back its members and messages are intact and seq
numbers go on; every send it acknowledged before kill -9 is there after the restart, exactly
once, and a send whose fate the client never learned is settled by retrying its msg_id."""

import threading

from sosclient import FRAME_REQUEST, Client, NoReply, ReplyError, new_room_hash, pack
from sosnet import Net, run, wait_for


def expect_unreachable(owner, fn, *args, **kw):
    try:
        body = fn(*args, **kw)
    except ReplyError as e:
        assert e.code == "owner_unreachable", "expected owner_unreachable, got %s %r" % (
            e.code, e.body)
        assert e.body.get("owner") == owner.node_id, e.body
        return e.body
    raise AssertionError("expected owner_unreachable, got ok %r" % (body,))


def test_owner_killed_and_restarted():
    with Net() as net:
        a, b, c = net.start(3)
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb, Client(c.endpoint) as cc:
            creator = ca.create(room, nickname="ana")["member_id"]
            wait_for("room in b and c", lambda: room in b.rooms() and room in c.rooms())
            mb = cb.join(room, nickname="bo")["member_id"]
            mc = cc.join(room, nickname="cy")["member_id"]
            sent = []
            for k in range(6):
                client, member = ((cb, mb), (cc, mc), (ca, creator))[k % 3]
                ack = client.send(room, member, "before %d" % k, "before-%d" % k)
                sent.append((ack["seq"], ack["id"], "before %d" % k))
            assert [s for s, _, _ in sent] == list(range(1, 7))
            before = cb.info(room)

            # a long poll through b waits at the owner when it dies
            forwards = b.status()["gossip"]["forwards"]
            poll_id = cb.new_req_id()
            cb.send_frame(pack([FRAME_REQUEST, poll_id, "poll",
                                {"room_hash": room, "member_id": mb, "since": 6,
                                 "wait_ms": 5000}, 0]))
            wait_for("b to forward the poll", lambda: b.status()["gossip"]["forwards"] > forwards)
            a.kill()
            status, body = cb.recv_reply(poll_id, timeout=60)
            assert status == "owner_unreachable", (status, body)
            assert body["owner"] == a.node_id

            # every operation through b and c now fails, naming the owner
            for client, member in ((cb, mb), (cc, mc)):
                expect_unreachable(a, client.info, room)
                expect_unreachable(a, client.join, room, nickname="late")
                expect_unreachable(a, client.send, room, member, "while down", "down-1")
                expect_unreachable(a, client.poll, room, member)
                expect_unreachable(a, client.poll, room, member, since=6, wait_ms=1000)
                expect_unreachable(a, client.leave, room, member)
            # sosctl shows the same code
            r = b.ctl("room", "info", room, check=False, timeout_ms=20000)
            assert r["_rc"] == 1 and r["_stderr"].startswith("sosctl: owner_unreachable"), r

        a.start()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb, Client(c.endpoint) as cc:
            # b and c reconnect to the owner in the background
            for client in (cb, cc):
                wait_for("the owner to be reachable again", lambda: client.info(room), timeout=60)
            for client in (ca, cb, cc):
                info = client.info(room)
                assert sorted(info["members"]) == sorted(before["members"]) == ["ana", "bo", "cy"]
                assert info["message_count"] == 6 and info["owner"] == a.node_id, info
                assert info["created_at"] == before["created_at"]
                for member in (creator, mb, mc):
                    polled = client.poll(room, member)
                    assert [(m["seq"], m["id"], m["content"]) for m in polled["messages"]] == sent
            # seqs go on; the send that failed while the owner was down was never stored
            assert cc.send(room, mc, "after", "after-1")["seq"] == 7
            assert cb.send(room, mb, "while down", "down-1")["seq"] == 8
            assert cb.leave(room, mb)["status"] == "left"
            assert sorted(ca.info(room)["members"]) == ["ana", "cy"]


def test_acked_writes_survive_kill9():
    """Sends, then a join, a leave and a create, each acknowledged just before kill -9: all
    of them are there after the restart, each message exactly once."""
    with Net() as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        room, room2 = new_room_hash(), new_room_hash()
        n = 40
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            member = ca.create(room, nickname="ana")["member_id"]
            wait_for("room in b", lambda: room in b.rooms())
            leaver = cb.join(room, nickname="leaver")["member_id"]
            acked = []
            for k in range(n):
                client = ca if k % 2 else cb
                ack = client.send(room, member, "m%d" % k, "m-%d" % k)
                acked.append((ack["seq"], ack["id"]))
            joiner = cb.join(room, nickname="late")["member_id"]
            cb.leave(room, leaver)
            creator2 = ca.create(room2, nickname="two")["member_id"]
            ack = cb.send(room, joiner, "last", "last")
            acked.append((ack["seq"], ack["id"]))
            a.kill()  # at once after the last acknowledgement
        a.start()
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            msgs = ca.poll_all(room, member)
            assert [(m["seq"], m["id"]) for m in msgs] == acked == [
                (k + 1, "m-%d" % k) for k in range(n)] + [(n + 1, "last")]
            assert sorted(ca.info(room)["members"]) == ["ana", "late"]
            assert ca.poll(room, joiner, since=n)["messages"][0]["sender"] == "late"
            assert ca.call("poll", {"room_hash": room, "member_id": leaver})[0] == "not_member"
            assert ca.info(room2)["members"] == ["two"]
            assert ca.send(room2, creator2, "still here", "x")["seq"] == 1
            # a retry of an acknowledged send still finds it
            assert ca.send(room, joiner, "last", "last")["seq"] == n + 1
            wait_for("b to reach the restarted owner", lambda: cb.info(room), timeout=60)
            assert [(m["seq"], m["id"]) for m in cb.poll_all(room, member)] == acked
            wait_for("room2 in b", lambda: room2 in b.rooms())


def test_kill9_under_concurrent_sends():
    """Senders keep sending through the owner and through another node while the owner is
    killed: afterwards every acknowledged message is there once, at its acknowledged seq, in
    one gap-free sequence; the one message per sender whose reply never came is either there
    or not, and a retry with its msg_id settles it without a duplicate."""
    with Net() as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca:
            creator = ca.create(room, nickname="ana")["member_id"]
        wait_for("room in b", lambda: room in b.rooms())
        results = {}

        def sender(i, node):
            acked, pending = [], None
            with Client(node.endpoint, timeout=8) as c:
                member = c.join(room, nickname="s%d" % i)["member_id"]
                k = 0
                while True:
                    msg_id = "s%d-%d" % (i, k)
                    try:
                        ack = c.send(room, member, "%d:%d" % (i, k), msg_id)
                    except (ReplyError, NoReply) as e:
                        pending = (msg_id, "%d:%d" % (i, k))
                        results[i] = (member, acked, pending, e)
                        return
                    acked.append((ack["seq"], msg_id))
                    k += 1

        nodes = [a, b, a, b]
        threads = [threading.Thread(target=sender, args=(i, nd), daemon=True)
                   for i, nd in enumerate(nodes)]
        for t in threads:
            t.start()
        wait_for("some messages to be acknowledged",
                 lambda: a.status()["gossip"]["sends"] >= 60, interval=0.02)
        a.kill()
        for t in threads:
            t.join(120)
            assert not t.is_alive()
        assert sorted(results) == list(range(len(nodes))), "a sender failed before the kill"
        for i, (member, acked, pending, err) in results.items():
            assert pending is not None, "sender %d never saw the owner die" % i
            code = err.code if isinstance(err, ReplyError) else "no reply"
            # through a: no reply (the node is gone); through b: owner_unreachable
            assert code == ("no reply" if nodes[i] is a else "owner_unreachable"), (i, code)

        a.start()
        with Client(a.endpoint) as ca:
            msgs = ca.poll_all(room, creator)
            seqs = [m["seq"] for m in msgs]
            assert seqs == list(range(1, len(msgs) + 1)), "gap or repeat in %r" % seqs
            stored = {m["id"]: m["seq"] for m in msgs}
            assert len(stored) == len(msgs), "a message stored twice"
            acked_all = {mid: seq for _, acked, _, _ in results.values() for seq, mid in acked}
            for mid, seq in acked_all.items():
                assert stored.get(mid) == seq, "acknowledged %s at %d, found at %r" % (
                    mid, seq, stored.get(mid))
            pendings = {p[0] for _, _, p, _ in results.values()}
            assert set(stored) <= set(acked_all) | pendings, "a message nobody sent"
            # settle each pending send by retrying it, as a client would
            for i, (member, _, (msg_id, content), _) in results.items():
                ack = ca.send(room, member, content, msg_id)
                if msg_id in stored:
                    assert ack["seq"] == stored[msg_id], (msg_id, ack)
                else:
                    assert ack["seq"] > max(seqs), ack
            after = ca.poll_all(room, creator)
            ids = [m["id"] for m in after]
            assert len(ids) == len(set(ids)) == len(acked_all) + len(pendings)
            assert [m["seq"] for m in after] == list(range(1, len(after) + 1))
            for i in range(len(nodes)):
                mine = [int(m["id"].split("-")[1]) for m in after if m["sender"] == "s%d" % i]
                assert mine == list(range(len(mine))), "sender %d out of order" % i


if __name__ == "__main__":
    run([test_owner_killed_and_restarted, test_acked_writes_survive_kill9,
         test_kill9_under_concurrent_sends])
