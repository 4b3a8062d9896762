"""test_rooms_errors.py: every error code of the room operations, reached through the owner and
through other nodes: room_not_found, room_exists, invalid_room_hash, not_member, too_large,
rate_limited (with retry_after; a join does not reset it), owner_unreachable and
bad_request (unknown operations, ill-typed arguments, frames that do not decode but carry a
request id); and sosctl's exit status with its one line on stderr, for an error reply, for a
node that does not answer and for bad arguments."""

import os
import subprocess

import msgpack

from sosclient import FLAG_FORWARDED, FRAME_REQUEST, Client, new_member_id, new_room_hash, pack
from sosnet import SOSCTL, Net, free_port, run, wait_for, with_id

CONTENT_MAX = 64 * 1024


def check_error(code, reply):
    status, body = reply
    assert status == code, "expected %s, got %s %r" % (code, status, body)
    assert body.get("error") == code and isinstance(body.get("message"), str), body
    return body


def three_nodes_with_room(net):
    nodes = net.start(3)
    wait_for("convergence", net.converged)
    room = new_room_hash()
    with Client(nodes[0].endpoint) as c:
        member = c.create(room, nickname="ana")["member_id"]
    for n in nodes:
        wait_for("room in node %d" % n.index, lambda: room in n.rooms())
    return nodes, room, member


def test_room_not_found_and_room_exists():
    with Net() as net:
        (a, b, c), room, member = three_nodes_with_room(net)
        clients = [Client(n.endpoint) for n in (a, b, c)]
        try:
            unknown = new_room_hash()
            for cl in clients:
                check_error("room_not_found", cl.call("info", {"room_hash": unknown}))
                check_error("room_not_found", cl.call("join", {"room_hash": unknown}))
                check_error("room_not_found", cl.call("send", {
                    "room_hash": unknown, "member_id": member, "content": "x", "msg_id": "1"}))
                check_error("room_not_found", cl.call("poll", {
                    "room_hash": unknown, "member_id": member, "since": 0, "wait_ms": 1000}))
                check_error("room_not_found", cl.call("leave", {
                    "room_hash": unknown, "member_id": member}))
            # a request marked as forwarded, at a node that does not own the room, is not
            # forwarded again
            check_error("room_not_found", clients[1].call("info", {"room_hash": room},
                                                          flags=FLAG_FORWARDED))
            # room_exists: at the owner, and at another node that knows the room by gossip
            for cl in clients:
                check_error("room_exists", cl.call("create", {"room_hash": room}))
            assert clients[2].info(room)["members"] == ["ana"]
        finally:
            for cl in clients:
                cl.close()


def test_invalid_room_hash():
    with Net() as net:
        (a, b, c), room, member = three_nodes_with_room(net)
        bad = ["", "abc", room.upper(), room + "0", room[:15], "0123456789abcdeg", 12345, None,
               ["0123456789abcdef"]]
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            for cl in (ca, cb):
                for h in bad:
                    for op in ("create", "join", "send", "poll", "leave", "info"):
                        args = {"room_hash": h, "member_id": member, "content": "x",
                                "msg_id": "1", "since": 0, "wait_ms": 0}
                        check_error("invalid_room_hash", cl.call(op, args))
                check_error("invalid_room_hash", cl.call("info", {}))


def test_not_member():
    with Net() as net:
        (a, b, c), room, member = three_nodes_with_room(net)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            mb = cb.join(room, nickname="bo")["member_id"]
            strangers = [new_member_id(), mb.upper(), mb[:31], mb + "0", "", 42, None]
            for cl in (ca, cb):
                for m in strangers:
                    check_error("not_member", cl.call("send", {
                        "room_hash": room, "member_id": m, "content": "x", "msg_id": "x"}))
                    check_error("not_member", cl.call("poll", {
                        "room_hash": room, "member_id": m, "since": 0, "wait_ms": 0}))
                    check_error("not_member", cl.call("leave", {"room_hash": room,
                                                                "member_id": m}))
                check_error("not_member", cl.call("send", {"room_hash": room, "content": "x",
                                                           "msg_id": "x"}))
            # a member that left, through the other node
            cb.leave(room, mb)
            check_error("not_member", ca.call("send", {
                "room_hash": room, "member_id": mb, "content": "x", "msg_id": "y"}))
            assert ca.poll(room, member)["messages"] == []

            # a long poll of a member who leaves while it waits ends with not_member, not
            # room_not_found: woken by a message (through b), or at the end of its wait (at a)
            with Client(c.endpoint) as cc:
                leaver = cc.join(room, nickname="leaver")["member_id"]
                forwards = b.status()["gossip"]["forwards"]
                woken = cb.post("poll", {"room_hash": room, "member_id": leaver, "since": 0,
                                         "wait_ms": 20000})
                timed = ca.post("poll", {"room_hash": room, "member_id": leaver, "since": 0,
                                         "wait_ms": 1000})
                wait_for("b to forward the poll",
                         lambda: b.status()["gossip"]["forwards"] > forwards)
                cc.leave(room, leaver)
                cc.send(room, member, "wake", "wake")
                check_error("not_member", cb.collect([woken], timeout=60)[woken])
                check_error("not_member", ca.collect([timed], timeout=60)[timed])


def test_too_large():
    with Net() as net:
        (a, b, c), room, member = three_nodes_with_room(net)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            for i, cl in enumerate((ca, cb)):
                check_error("too_large", cl.call("send", {
                    "room_hash": room, "member_id": member, "content": "x" * (CONTENT_MAX + 1),
                    "msg_id": "big-%d" % i}))
                # exactly the limit is fine
                ack = cl.send(room, member, "y" * CONTENT_MAX, "max-%d" % i)
                check_error("too_large", cl.call("send", {
                    "room_hash": room, "member_id": member, "content": "z",
                    "msg_id": "m" * 64 + "%d" % i}))
                assert cl.send(room, member, "z", "m" * 63 + "%d" % i)["seq"] == ack["seq"] + 1
                check_error("too_large", cl.call("join", {"room_hash": room,
                                                          "nickname": "n" * 21}))
                assert "n" * 20 in cl.join(room, nickname="n" * 20)["members"]
            # create limits are checked by the node that gets the create
            for cl in (ca, cb):
                check_error("too_large", cl.call("create", {"room_hash": new_room_hash(),
                                                            "description": "d" * 141}))
                check_error("too_large", cl.call("create", {"room_hash": new_room_hash(),
                                                            "description": "é" * 71}))
                check_error("too_large", cl.call("create", {"room_hash": new_room_hash(),
                                                            "nickname": "n" * 21}))
                check_error("too_large", cl.call("create", {"room_hash": new_room_hash(),
                                                            "emojis": "x" * 65}))
                fresh = new_room_hash()
                cl.create(fresh, description="d" * 140)
                wait_for("fresh room in c", lambda: fresh in c.rooms())
                assert c.rooms()[fresh]["description"] == "d" * 140
            msgs = ca.poll_all(room, member)
            assert [len(m["content"]) for m in msgs] == [CONTENT_MAX, 1, CONTENT_MAX, 1]
            # nothing of the refused requests was stored
            assert sorted(ca.info(room)["members"]) == sorted(["ana", "n" * 20, "n" * 20])
            # a room holds 1000 members: fill it with pipelined joins at the owner, then one
            # more through each node is refused. Joins go 50 at a time: each reply lists up
            # to 1000 nicknames, and a connection may hold only 4 MiB of unread replies.
            ids, replies = [], {}
            for start in range(0, 1000 - 3, 50):
                batch = [ca.post("join", {"room_hash": room})
                         for _ in range(min(50, 1000 - 3 - start))]
                replies.update(ca.collect(batch, timeout=120))
                ids += batch
            assert [replies[i][0] for i in ids] == ["ok"] * (1000 - 3), {
                r[0] for r in replies.values()}
            for cl in (ca, cb):
                check_error("too_large", cl.call("join", {"room_hash": room}))
            assert len(ca.info(room)["members"]) == 1000
            # leaving makes room again
            cb.leave(room, replies[ids[0]][1]["member_id"])
            assert cb.join(room, nickname="last")["members"].count("last") == 1


def test_bad_request():
    with Net() as net:
        (a, b, c), room, member = three_nodes_with_room(net)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            for cl in (ca, cb):
                check_error("bad_request", cl.call("frobnicate", {"room_hash": room}))
                check_error("bad_request", cl.call("frobnicate", {}))
                base = {"room_hash": room, "member_id": member}
                for args in ({"since": "x", "wait_ms": 0}, {"since": -1}, {"since": 1.5},
                             {"wait_ms": "soon"}, {"wait_ms": -5}):
                    check_error("bad_request", cl.call("poll", dict(base, **args)))
                for args in ({"content": 5, "msg_id": "a"}, {"msg_id": "a"},
                             {"content": b"bytes", "msg_id": "a"}, {"content": None},
                             {"content": "x", "msg_id": 7}):
                    check_error("bad_request", cl.call("send", dict(base, **args)))
                check_error("bad_request", cl.call("join", {"room_hash": room, "nickname": 5}))
                for args in ({"nickname": 5}, {"description": ["x"]}, {"emojis": 1},
                             {"emojis": "🆘🏠🔥🌊🦊🐟🚑"}):
                    args["room_hash"] = new_room_hash()
                    check_error("bad_request", cl.call("create", args))
                # nickname that is not UTF-8: a msgpack str with bytes that do not decode
                rid = cl.new_req_id()
                frame = b"\x95" + msgpack.packb(FRAME_REQUEST) + msgpack.packb(rid) + \
                    msgpack.packb("join") + b"\x82" + msgpack.packb("room_hash") + \
                    msgpack.packb(room) + msgpack.packb("nickname") + b"\xa2\xff\xfe" + \
                    msgpack.packb(0)
                cl.send_frame(frame)
                check_error("bad_request", cl.recv_reply(rid))
                # a create that claims to be forwarded
                check_error("bad_request", cl.call("create", {"room_hash": new_room_hash()},
                                                   flags=FLAG_FORWARDED))
            # the refused requests changed nothing
            info = ca.info(room)
            assert info["members"] == ["ana"] and info["message_count"] == 0, info
            assert len(a.rooms()) == 1


def test_bad_request_for_frames_that_do_not_decode():
    """A frame that is not a valid request but whose request id can be read gets bad_request,
    so that the client does not wait for a timeout; one without a readable id is dropped and
    counted."""
    with Net() as net:
        (a, b, c), room, member = three_nodes_with_room(net)
        with Client(b.endpoint) as cb:
            for fields in (["info", ["not", "a", "map"], 0], ["info", {"room_hash": room}, "0"],
                           [7, {"room_hash": room}, 0], ["x" * 17, {}, 0],
                           ["info", {"room_hash": room}]):
                rid = cb.new_req_id()
                cb.send_frame(pack([FRAME_REQUEST, rid] + fields))
                check_error("bad_request", cb.recv_reply(rid, timeout=10))
            drops = b.drops()["bad_request"]
            cb.send_frame(pack([FRAME_REQUEST, "no id", "info", {}, 0]))
            wait_for("the frame to be dropped", lambda: b.drops()["bad_request"] > drops)
            # the node still serves
            assert cb.info(room)["owner"] == a.node_id


def test_rate_limited():
    with Net(extra=["--rate-limit", "on"]) as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            first = new_room_hash()
            ca.create(first, nickname="ana")
            second = new_room_hash()
            body = check_error("rate_limited", ca.call("create", {"room_hash": second}))
            assert isinstance(body["retry_after"], int) and 0 < body["retry_after"] <= 10, body
            assert a.status()["gossip"]["refused_create"] == 1
            # asking again while limited does not make the wait longer
            again = check_error("rate_limited", ca.call("create", {"room_hash": second}))
            assert 0 < again["retry_after"] <= body["retry_after"], again
            # sosctl shows the code and the wait
            r = a.ctl("room", "create", "--emojis", "🆘🏠", check=False)
            assert r["_rc"] == 1 and r["_stderr"].startswith("sosctl: rate_limited"), r
            assert "retry after" in r["_stderr"], r
            # a join does not reset the limit (it used to, and one address could then make
            # a room after each join)
            ca.join(first, nickname="again")
            check_error("rate_limited", ca.call("create", {"room_hash": second}))
            # the limit is per node: b has its own, and a join that b forwards to the owner
            # resets nothing either
            cb.create(new_room_hash())
            third = new_room_hash()
            check_error("rate_limited", cb.call("create", {"room_hash": third}))
            wait_for("first room in b", lambda: first in b.rooms())
            cb.join(first, nickname="bo")
            check_error("rate_limited", cb.call("create", {"room_hash": third}))
            check_error("room_not_found", cb.call("join", {"room_hash": new_room_hash()}))
            check_error("rate_limited", cb.call("create", {"room_hash": new_room_hash()}))


def test_owner_unreachable():
    with Net() as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca:
            member = ca.create(room)["member_id"]
        wait_for("room in b", lambda: room in b.rooms())
        a.kill()
        with Client(b.endpoint) as cb:
            body = check_error("owner_unreachable", cb.call("info", {"room_hash": room},
                                                           timeout=30))
            assert body["owner"] == a.node_id
            body = check_error("owner_unreachable", cb.call("send", {
                "room_hash": room, "member_id": member, "content": "x", "msg_id": "1"},
                timeout=30))
            assert body["owner"] == a.node_id
        r = b.ctl("room", "join", room, check=False, timeout_ms=30000)
        assert r["_rc"] == 1 and r["_stderr"].startswith("sosctl: owner_unreachable"), r


def sosctl(*args):
    env = dict(os.environ, SOSCTL_KNOWN_NODES="/dev/null")
    return subprocess.run([SOSCTL] + list(args), capture_output=True, text=True, timeout=60,
                          env=env)


def test_sosctl_exit_status():
    with Net() as net:
        a = net.start(1)[0]
        # an error reply: status 1, one line on stderr starting with the code, nothing on stdout
        for json_flag in ([], ["--json"]):
            p = sosctl("--node", with_id(a.endpoint), *json_flag, "room", "info", new_room_hash())
            assert p.returncode == 1, p
            assert p.stdout == "", p
            lines = p.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("sosctl: room_not_found"), p.stderr
        p = sosctl("--node", with_id(a.endpoint), "room", "info", "NOTAHASH")
        assert p.returncode in (1, 2) and len(p.stderr.splitlines()) == 1, p
        # a node that does not answer
        dead_endpoint = "tcp://127.0.0.1:%d" % free_port()
        dead = "%s@%s" % (a.node_id, dead_endpoint)
        p = sosctl("--node", dead, "--timeout", "500", "status")
        assert p.returncode == 1 and p.stdout == "", p
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sosctl: "), p.stderr
        assert dead_endpoint in lines[0], p.stderr
        # bad arguments
        for args in (["frobnicate"], ["room", "send"], ["--timeout", "soon", "status"]):
            p = sosctl("--node", with_id(a.endpoint), *args)
            assert p.returncode == 2, p
            assert len(p.stderr.splitlines()) == 1 and p.stderr.startswith("sosctl: "), p
        # and success is 0
        assert sosctl("--node", with_id(a.endpoint), "status").returncode == 0


if __name__ == "__main__":
    run([test_room_not_found_and_room_exists, test_invalid_room_hash, test_not_member,
         test_too_large, test_bad_request, test_bad_request_for_frames_that_do_not_decode,
         test_rate_limited, test_owner_unreachable, test_sosctl_exit_status])
