"""test_rooms_limits.py: the per-client limits of room operations, and their switches.

  rate         joins and sends from one address pass a token bucket (--client-rate, in
               bursts of 10 s of it); over it, rate_limited with retry_after, counted as
               refused_rate; after the wait, sends pass again;
  client       the owner keys its limits on the address a forwarding node reports (the
               `client` argument of a forwarded request), not on the forwarder's own;
  pending      long polls and forwards waiting per address are capped (--max-pending):
               over it, unavailable with retry_after, counted as refused_pending; answered
               requests free their place;
  member cap   the counters of a full room: quiet members removed (members_idle) and joins
               refused (refused_full).
"""

import time

from sosclient import FLAG_FORWARDED, Client, new_room_hash
from sosnet import Net, run, wait_for


def gossip(node):
    return node.status()["gossip"]


def test_send_rate():
    with Net(extra=["--rate-limit", "on", "--client-rate", "1"]) as net:
        (a,) = net.start(1)
        room = new_room_hash()
        with Client(a.endpoint) as c:
            member = c.create(room)["member_id"]
            refused = None
            for i in range(40):
                status, body = c.call("send", {"room_hash": room, "member_id": member,
                                               "content": "x", "msg_id": "m%d" % i})
                if status != "ok":
                    refused = (i, status, body)
                    break
            assert refused is not None, "40 sends in a burst all passed"
            i, status, body = refused
            assert status == "rate_limited" and isinstance(body["retry_after"], int), refused
            assert 8 <= i <= 12, refused  # a burst of 10 s at 1 a second
            assert gossip(a)["refused_rate"] >= 1
            time.sleep(body["retry_after"] + 0.5)
            c.send(room, member, "after the wait", "m-late")
            # Joins count against the same bucket.
            refused_join = False
            for _ in range(20):
                status, body = c.call("join", {"room_hash": room})
                if status == "rate_limited":
                    refused_join = True
                    break
            assert refused_join


def test_owner_keys_on_the_reported_client():
    with Net(extra=["--rate-limit", "on", "--client-rate", "1"]) as net:
        (a,) = net.start(1)
        room = new_room_hash()
        with Client(a.endpoint) as owner:
            owner.create(room)
        # A forwarding node's requests carry the address it saw; the owner limits each
        # reported address on its own.
        with Client(a.endpoint) as fwd:
            def call(op, args, client):
                args = dict(args, room_hash=room, client=client)
                return fwd.call(op, args, flags=FLAG_FORWARDED)
            status, body = call("join", {}, "203.0.113.7")
            assert status == "ok", body
            member = body["member_id"]
            statuses = [call("send", {"member_id": member, "content": "x",
                                      "msg_id": "a%d" % i}, "203.0.113.7")[0]
                        for i in range(15)]
            assert "rate_limited" in statuses, statuses
            # Another client behind the same forwarder has its own bucket.
            status, body = call("send", {"member_id": member, "content": "y", "msg_id": "b"},
                                "203.0.113.8")
            assert status == "ok", body


def test_pending_caps():
    with Net(extra=["--rate-limit", "off", "--max-pending", "2"]) as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca:
            member = ca.create(room)["member_id"]
        wait_for("room in b", lambda: room in b.rooms())
        for entry in (a, b):  # a: long polls at the owner; b: forwards to it
            with Client(entry.endpoint) as c:
                poll = {"room_hash": room, "member_id": member, "since": 10 ** 6,
                        "wait_ms": 20000}
                waiting = [c.post("poll", poll) for _ in range(2)]
                time.sleep(1)
                before = gossip(entry)["refused_pending"]
                status, body = c.call("poll", poll)
                assert status == "unavailable" and body["retry_after"] >= 1, (status, body)
                assert gossip(entry)["refused_pending"] == before + 1
                # At the owner, a poll that does not wait is not pending work; through b it
                # is a forward, which is.
                status, body = c.call("poll", dict(poll, wait_ms=0))
                assert status == ("ok" if entry is a else "unavailable"), body
                replies = c.collect(waiting, timeout=40)
                assert all(s == "ok" for s, _ in replies.values()), replies
                # Their places are free again.
                status, body = c.call("poll", dict(poll, wait_ms=100))
                assert status == "ok", body


def test_member_idle():
    """Counters of the member cap: quiet members removed (members_idle) and joins refused by
    a full room (refused_full). (Which members go is tested with the eviction itself.)"""
    with Net(extra=["--rate-limit", "off", "--member-idle", "2"]) as net:
        (a,) = net.start(1)
        room = new_room_hash()
        with Client(a.endpoint) as c:
            c.create(room, nickname="first")
            ids = [c.post("join", {"room_hash": room, "nickname": "m"}) for _ in range(999)]
            replies = c.collect(ids, timeout=120)
            assert all(s == "ok" for s, _ in replies.values())
            assert len(c.info(room)["members"]) == 1000
            time.sleep(3)
            c.join(room, nickname="late")
            members = c.info(room)["members"]
            assert "late" in members and "first" not in members, sorted(set(members))
            assert gossip(a)["members_idle"] == 1000
    with Net(extra=["--rate-limit", "off", "--member-idle", "3600"]) as net:
        (a,) = net.start(1)
        room = new_room_hash()
        with Client(a.endpoint) as c:
            c.create(room)
            ids = [c.post("join", {"room_hash": room}) for _ in range(999)]
            c.collect(ids, timeout=120)
            status, body = c.call("join", {"room_hash": room})
            assert status == "too_large", (status, body)
            assert gossip(a)["refused_full"] == 1 and gossip(a)["members_idle"] == 0


if __name__ == "__main__":
    run([test_send_rate, test_owner_keys_on_the_reported_client, test_pending_caps,
         test_member_idle])
