"""test_http_api.py: the seed's HTTP API on sosnode, endpoint by endpoint: statuses, error
bodies, CORS on every response, time units, defaults and cuts, the 409/404/429 paths,
forwarding through a node that does not own the room, and timestamps that strictly increase
in seq order under concurrent senders, across a restart too."""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import threading
import time

from soshttp import add_http_node, check_cors, check_json, get, post, request
from sosnet import Net, Skip, run, wait_for


def new_room_hash():
    return os.urandom(8).hex()


def create(port, room=None, **fields):
    room = room or new_room_hash()
    body = dict(fields, room_hash=room)
    return room, check_json(post(port, "/room", body), 200)


def test_endpoints():
    with Net() as net:
        a = add_http_node(net).start()
        p = a.http

        # /health: integer milliseconds
        before = int(time.time() * 1000)
        h = check_json(get(p, "/health"), 200)
        assert h["status"] == "ok" and isinstance(h["timestamp"], int), h
        assert before - 60000 < h["timestamp"] < before + 60000, h

        # OPTIONS on any path: 204, the CORS headers, no body
        for path in ("/room", "/nowhere", "/room/0123456789abcdef/send"):
            r = request(p, "OPTIONS", path)
            assert r.status == 204 and r.raw == b"", r
            check_cors(r)

        # /workers
        w = check_json(get(p, "/workers"), 200)["workers"]
        assert len(w) == 1, w
        me = w[0]
        for k in ("url", "last_seen", "last_ok", "fail_count", "is_genesis", "node_id",
                  "endpoint"):
            assert k in me, me
        assert me["url"] == "http://127.0.0.1:%d" % p and me["endpoint"] == a.endpoint, me
        assert me["node_id"] == a.node_id

        # POST /room: defaults and cuts, seconds with millisecond precision
        emojis = ["\U0001f198", "\U0001f3e0", "\U0001f525", "\U0001f4a7", "\U0001f30d",
                  "\u2b50", "\U0001f319"]
        room, c = create(p, emojis=emojis, description="  " + "d" * 200 + "  ")
        for k in ("room_hash", "mode", "created_at", "expires_at", "member_id", "members"):
            assert k in c, c
        assert c["room_hash"] == room and c["mode"] == "fixed", c
        assert c["members"] == ["creator"], c
        assert isinstance(c["created_at"], float), c
        assert abs(c["created_at"] - time.time()) < 60, c
        assert abs(c["expires_at"] - c["created_at"] - 3600) < 0.01, c
        assert round(c["created_at"] * 1000) == c["created_at"] * 1000 or \
            abs(round(c["created_at"] * 1000) - c["created_at"] * 1000) < 1e-3, c
        creator = c["member_id"]
        rooms = check_json(get(p, "/rooms"), 200)["rooms"]
        listed = [x for x in rooms if x["room_hash"] == room]
        assert len(listed) == 1, rooms
        assert listed[0]["emojis"] == emojis[:6], listed  # the list, exactly as sent
        assert listed[0]["description"] == "d" * 140, listed
        assert listed[0]["created_at"] == c["created_at"], (listed, c)
        assert listed[0]["expires_at"] == c["expires_at"], (listed, c)
        assert listed[0]["worker"] == "http://127.0.0.1:%d" % p, listed

        # a long nickname is cut to 20 characters (multi-byte ones too, within 20 bytes)
        _, c2 = create(p, nickname="n" * 30)
        assert c2["members"] == ["n" * 20], c2

        # 409, 400 (body and path), 404s
        check_json(post(p, "/room", {"room_hash": room}), 409, "room_exists")
        for bad in ("0123", "0123456789ABCDEF", "0123456789abcdeg", 12, None):
            check_json(post(p, "/room", {"room_hash": bad}), 400, "invalid_room_hash")
        check_json(post(p, "/room", raw=b"{broken"), 400, "invalid_room_hash")
        check_json(get(p, "/room/xyz/info"), 400, "invalid_room_hash")
        check_json(post(p, "/room/0123456789ABCDEF/join", {}), 400, "invalid_room_hash")
        gone = new_room_hash()
        check_json(get(p, "/room/%s/info" % gone), 404, "room_not_found")
        check_json(post(p, "/room/%s/join" % gone, {}), 404, "room_not_found")
        check_json(get(p, "/room/%s/nothing" % room), 404, "not_found")
        check_json(get(p, "/room/%s/join" % room), 404, "not_found")  # wrong method
        check_json(post(p, "/room/%s/info" % room, {}), 404, "not_found")
        check_json(get(p, "/nowhere"), 404, "not_found")
        check_json(request(p, "DELETE", "/room/%s/info" % room), 404, "not_found")

        # join: a new member each time, message_count and last_message_ts 0 when empty
        j = check_json(post(p, "/room/%s/join" % room, {}), 200)
        assert j["members"].count("anon") == 1 and "creator" in j["members"], j
        assert j["message_count"] == 0 and j["last_message_ts"] == 0, j
        assert j["created_at"] == c["created_at"] and j["mode"] == "fixed", (j, c)
        anon = j["member_id"]
        j2 = check_json(post(p, "/room/%s/join" % room, {"nickname": "ben"}), 200)
        assert j2["member_id"] != anon and "ben" in j2["members"], j2

        # send: missing_content, not_member, sender replaced, content byte-exact (16 KiB)
        check_json(post(p, "/room/%s/send" % room, {"member_id": creator}), 400,
                   "missing_content")
        check_json(post(p, "/room/%s/send" % room, {"member_id": creator, "content": ""}),
                   400, "missing_content")
        check_json(post(p, "/room/%s/send" % room, {"content": "x"}), 403, "not_member")
        check_json(post(p, "/room/%s/send" % room, {"content": "x", "member_id": "f" * 32}),
                   403, "not_member")
        big = "".join(chr(0x41 + (i % 26)) for i in range(16 * 1024)) + "\u00e9\U0001f198"
        s1 = check_json(post(p, "/room/%s/send" % room,
                             {"content": big, "member_id": creator, "sender": "mallory"}), 200)
        assert set(s1) >= {"id", "timestamp"} and isinstance(s1["timestamp"], float), s1
        s2 = check_json(post(p, "/room/%s/send" % room,
                             {"content": "two", "member_id": anon}), 200)
        assert s2["timestamp"] > s1["timestamp"], (s1, s2)

        # poll: timestamp > since, strictly; the sender is the member's nickname
        q = check_json(get(p, "/room/%s/poll?since=0&member_id=%s" % (room, anon)), 200)
        for k in ("messages", "members", "expires_at", "message_count"):
            assert k in q, q
        assert [m["content"] for m in q["messages"]] == [big, "two"], q["messages"][1:]
        assert [m["sender"] for m in q["messages"]] == ["creator", "anon"], q
        assert [m["timestamp"] for m in q["messages"]] == [s1["timestamp"], s2["timestamp"]]
        assert q["message_count"] == 2 and q["expires_at"] == c["expires_at"], q
        for m in q["messages"]:
            assert set(m) >= {"id", "sender", "content", "timestamp", "seq"}, m
        q = check_json(get(p, "/room/%s/poll?since=%r&member_id=%s" % (
            room, s1["timestamp"], anon)), 200)
        assert [m["content"] for m in q["messages"]] == ["two"], q
        q = check_json(get(p, "/room/%s/poll?since=%r&member_id=%s" % (
            room, s2["timestamp"], anon)), 200)
        assert q["messages"] == [], q
        q = check_json(get(p, "/room/%s/poll?since_seq=1&member_id=%s" % (room, anon)), 200)
        assert [m["seq"] for m in q["messages"]] == [2], q
        check_json(get(p, "/room/%s/poll?since=0&member_id=%s" % (room, "0" * 32)), 403,
                   "not_member")
        j3 = check_json(post(p, "/room/%s/join" % room, {}), 200)
        assert j3["message_count"] == 2 and j3["last_message_ts"] == s2["timestamp"], j3

        # info
        i = check_json(get(p, "/room/%s/info" % room), 200)
        for k in ("room_hash", "mode", "created_at", "expires_at", "members", "message_count",
                  "time_remaining"):
            assert k in i, i
        assert isinstance(i["time_remaining"], int) and 3500 < i["time_remaining"] <= 3600, i
        assert i["created_at"] == c["created_at"] and i["message_count"] == 2, i

        # leave: idempotent, also for an unknown member or none
        for body in ({"member_id": j2["member_id"]}, {"member_id": j2["member_id"]},
                     {"member_id": "nobody"}, {}):
            assert check_json(post(p, "/room/%s/leave" % room, body), 200) == {"status": "left"}
        check_json(post(p, "/room/%s/leave" % gone, {}), 404, "room_not_found")
        assert "ben" not in check_json(get(p, "/room/%s/info" % room), 200)["members"]

        # /metrics: Prometheus text with HELP and TYPE, the send histogram
        m = get(p, "/metrics")
        assert m.status == 200 and m.headers["content-type"].startswith("text/plain"), m
        text = m.raw.decode()
        assert "# TYPE sosnode_uptime_seconds gauge" in text, text[:400]
        assert "# TYPE sosnode_gossip_rounds_total counter" in text, text[:400]
        assert "sosnode_drops_malformed_total" in text
        assert "sosnode_http_send_latency_seconds_count 2" in text, text[-600:]
        assert 'sosnode_http_send_latency_seconds_bucket{le="+Inf"} 2' in text
        # every numeric field of `sosctl status` is there, with HELP and TYPE lines
        st = a.status()
        fields = ["status %s" % k for k, v in st.items() if isinstance(v, int)]
        for group in ("gossip", "drops", "http"):
            fields += ["status %s.%s" % (group, k) for k in st[group]]
        for f in fields:
            assert "# HELP " in text and (" %s\n" % f) in text, "%s missing from /metrics" % f
        assert text.count("# TYPE ") >= len(fields) + 2, text

        # the page
        page = get(p, "/")
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        check_cors(page)


def test_rate_limit():
    """Room creation from one address waits 10 s after the first: 429 with retry_after."""
    with Net(extra=()) as net:
        a = add_http_node(net).start()
        create(a.http)
        r = check_json(post(a.http, "/room", {"room_hash": new_room_hash()}), 429,
                       "rate_limited")
        assert isinstance(r["retry_after"], int) and 1 <= r["retry_after"] <= 10, r
        # X-Forwarded-For is anyone's to write: without --trust-proxy it changes nothing
        check_json(post(a.http, "/room", {"room_hash": new_room_hash()},
                        headers={"X-Forwarded-For": "198.51.100.7"}), 429, "rate_limited")
    with Net(extra=()) as net:
        # behind a proxy, each client's address is its own
        a = add_http_node(net, extra=["--trust-proxy"]).start()
        for client in ("198.51.100.7", "198.51.100.8, 10.0.0.1"):
            check_json(post(a.http, "/room", {"room_hash": new_room_hash()},
                            headers={"X-Forwarded-For": client}), 200)
        check_json(post(a.http, "/room", {"room_hash": new_room_hash()},
                        headers={"X-Forwarded-For": "198.51.100.7"}), 429, "rate_limited")


def test_forwarding():
    """Every room operation through a node that does not own the room, and created_at the
    same in every reply on every node."""
    with Net() as net:
        a = add_http_node(net).start()
        b = add_http_node(net).start()
        wait_for("convergence", net.converged)
        room, c = create(a.http, nickname="ana")
        wait_for("the room on b", lambda: any(
            x["room_hash"] == room for x in check_json(get(b.http, "/rooms"), 200)["rooms"]))
        listed = [x for x in check_json(get(b.http, "/rooms"), 200)["rooms"]
                  if x["room_hash"] == room][0]
        assert listed["created_at"] == c["created_at"], (listed, c)
        # the records carry each node's HTTP base URL: b lists a's, and a's room names it
        assert listed["worker"] == "http://127.0.0.1:%d" % a.http, listed
        ws = {w["node_id"]: w for w in check_json(get(b.http, "/workers"), 200)["workers"]}
        assert ws[a.node_id]["url"] == "http://127.0.0.1:%d" % a.http, ws
        assert ws[a.node_id]["endpoint"] == a.endpoint, ws
        j = check_json(post(b.http, "/room/%s/join" % room, {"nickname": "ben"}), 200)
        assert j["created_at"] == c["created_at"] and set(j["members"]) == {"ana", "ben"}, j
        s = check_json(post(b.http, "/room/%s/send" % room,
                            {"member_id": j["member_id"], "content": "via b"}), 200)
        q = check_json(get(a.http, "/room/%s/poll?since=0&member_id=%s" % (
            room, c["member_id"])), 200)
        assert [(m["sender"], m["content"], m["timestamp"]) for m in q["messages"]] == \
            [("ben", "via b", s["timestamp"])], q
        i = check_json(get(b.http, "/room/%s/info" % room), 200)
        assert i["created_at"] == c["created_at"] and i["message_count"] == 1, i
        check_json(post(b.http, "/room/%s/send" % room, {"content": "x"}), 403, "not_member")
        # a long poll through b wakes with a message sent through a
        out = {}
        t = threading.Thread(target=lambda: out.update(r=get(b.http, "/room/%s/poll?since=%r"
                             "&member_id=%s&wait=20000" % (room, s["timestamp"],
                                                           j["member_id"]))))
        t.start()
        time.sleep(0.5)
        s2 = check_json(post(a.http, "/room/%s/send" % room,
                             {"member_id": c["member_id"], "content": "wake"}), 200)
        t.join(60)
        q = check_json(out["r"], 200)
        assert [m["timestamp"] for m in q["messages"]] == [s2["timestamp"]], q
        wait_for("gossip exchange times in /metrics", lambda: "sosnode_gossip_exchange_seconds_count 0"
                 not in get(b.http, "/metrics").raw.decode())
        assert "# TYPE sosnode_gossip_exchange_seconds histogram" in get(b.http, "/metrics").raw.decode()
        assert check_json(post(b.http, "/room/%s/leave" % room,
                               {"member_id": j["member_id"]}), 200) == {"status": "left"}


SENDERS = 6
PER_SENDER = 25


def test_concurrent_timestamps():
    """Senders on two nodes at once: timestamps strictly increase in seq order, and polling
    by timestamp in pages sees every message exactly once; the last timestamp survives a
    restart."""
    with Net() as net:
        a = add_http_node(net, extra=["--history", "1000"]).start()
        b = add_http_node(net).start()
        wait_for("convergence", net.converged)
        room, c = create(a.http)
        wait_for("the room on b", lambda: check_json(
            get(b.http, "/room/%s/info" % room), 200))
        members = [check_json(post((a, b)[i % 2].http, "/room/%s/join" % room, {}), 200)
                   ["member_id"] for i in range(SENDERS)]
        acks, errors = [], []
        barrier = threading.Barrier(SENDERS)

        def sender(i):
            port = (a, b)[i % 2].http
            barrier.wait()
            for k in range(PER_SENDER):
                r = post(port, "/room/%s/send" % room,
                         {"member_id": members[i], "content": "%d-%d" % (i, k)})
                if r.status != 200:
                    errors.append(r)
                else:
                    acks.append((r.json["seq"], r.json["timestamp"], "%d-%d" % (i, k)))

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors[:3]
        acks.sort()
        stamps = [ts for _, ts, _ in acks]
        assert len(acks) == SENDERS * PER_SENDER
        assert all(x < y for x, y in zip(stamps, stamps[1:])), "timestamps not increasing"
        # read it all back by timestamp, as the seed's app does
        seen, since = [], 0
        while True:
            q = check_json(get(b.http, "/room/%s/poll?since=%r&member_id=%s" % (
                room, since, members[1])), 200)
            if not q["messages"]:
                break
            seen += [(m["seq"], m["timestamp"], m["content"]) for m in q["messages"]]
            since = q["messages"][-1]["timestamp"]
        assert seen == acks, "poll by timestamp lost or repeated messages"
        last = stamps[-1]
        # restart the owner: the next message is stamped above the last one served
        a.stop()
        a.start()
        j = check_json(post(a.http, "/room/%s/join" % room, {}), 200)
        assert j["last_message_ts"] == last, (j, last)
        s = check_json(post(a.http, "/room/%s/send" % room,
                            {"member_id": j["member_id"], "content": "after"}), 200)
        assert s["timestamp"] > last, (s, last)


def test_member_cap():
    """The seed's app joins again on every visit: a full room (1000 members) refuses a join
    with 413 too_large until a member leaves, or, on a node with a short --member-idle,
    makes room by removing members that went quiet, never one that still polls."""
    from concurrent.futures import ThreadPoolExecutor
    with Net() as net:
        a = add_http_node(net).start()
        b = add_http_node(net, extra=["--member-idle", "1"]).start()
        room, c = create(a.http)
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda i: post(a.http, "/room/%s/join" % room, {}).status,
                                  range(999)))
        assert codes == [200] * 999, sorted(set(codes))
        check_json(post(a.http, "/room/%s/join" % room, {}), 413, "too_large")
        check_json(post(a.http, "/room/%s/leave" % room, {"member_id": c["member_id"]}), 200)
        check_json(post(a.http, "/room/%s/join" % room, {}), 200)

        room, c = create(b.http)
        creator = c["member_id"]

        def join():
            # the creator polls before every attempt: it is never idle, and never removed
            check_json(get(b.http, "/room/%s/poll?since=0&member_id=%s" % (room, creator)), 200)
            return post(b.http, "/room/%s/join" % room, {}).status == 200

        for i in range(1200):
            wait_for("join %d" % i, join)
        info = check_json(get(b.http, "/room/%s/info" % room), 200)
        assert len(info["members"]) <= 1000, len(info["members"])
        check_json(get(b.http, "/room/%s/poll?since=0&member_id=%s" % (room, creator)), 200)


def test_poll_pages():
    """A poll's reply is capped in bytes, oldest first: a client behind by more than the cap
    catches up in pages by timestamp, without losing or repeating a message."""
    with Net() as net:
        a = add_http_node(net).start()
        room, c = create(a.http)
        m = c["member_id"]
        sent = [check_json(post(a.http, "/room/%s/send" % room,
                                {"member_id": m, "content": "%02d" % i + "p" * 60000}), 200)
                ["timestamp"] for i in range(20)]
        pages, got, since = 0, [], 0
        while True:
            q = check_json(get(a.http, "/room/%s/poll?since=%r&member_id=%s" % (room, since, m)),
                           200)
            if not q["messages"]:
                break
            pages += 1
            got += [x["timestamp"] for x in q["messages"]]
            since = q["messages"][-1]["timestamp"]
        assert got == sent, (len(got), len(sent))
        assert pages >= 2, pages


def test_node_errors():
    """The node's own errors through HTTP: a content over the node's 64 KiB is 413
    too_large (with a body limit above it), an owner that is gone is 503 owner_unreachable."""
    with Net() as net:
        a = add_http_node(net).start()
        b = add_http_node(net, extra=["--http-body-max", "262144"]).start()
        wait_for("convergence", net.converged)
        room, c = create(a.http)
        wait_for("the room on b", lambda: check_json(get(b.http, "/room/%s/info" % room), 200))
        j = check_json(post(b.http, "/room/%s/join" % room, {}), 200)
        check_json(post(b.http, "/room/%s/send" % room,
                        {"member_id": j["member_id"], "content": "z" * 70000}), 413, "too_large")
        a.kill()
        check_json(post(b.http, "/room/%s/send" % room,
                        {"member_id": j["member_id"], "content": "hello"}), 503,
                   "owner_unreachable")
        check_json(get(b.http, "/health"), 200)


def test_tls():
    """--http-cert/--http-key: the same API over HTTPS, and the advertised URL says so."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise Skip("needs openssl to make a certificate")
    with Net() as net:
        crt, key = os.path.join(net.dir, "tls.crt"), os.path.join(net.dir, "tls.key")
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1"], check=True,
                       capture_output=True)
        a = add_http_node(net, extra=["--http-cert", crt, "--http-key", key]).start()
        ctx = ssl.create_default_context(cafile=crt)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", a.http, context=ctx, timeout=30)
        conn.request("GET", "/workers")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        assert resp.status == 200, resp.status
        assert body["workers"][0]["url"] == "https://127.0.0.1:%d" % a.http, body


if __name__ == "__main__":
    run([test_endpoints, test_rate_limit, test_forwarding, test_concurrent_timestamps, test_member_cap,
         test_poll_pages, test_node_errors, test_tls])
