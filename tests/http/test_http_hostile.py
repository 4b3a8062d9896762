"""test_http_hostile.py: hostile HTTP against a node: oversized bodies (announced and
chunked), broken JSON, a client that sends half a request and waits, 10,000 connections at
once, and more long polls than the node lets wait. Each gets a clear error or is cut off,
each refusal is counted in `status`, and the node keeps serving."""

import os
import resource
import socket
import threading
import time

from soshttp import add_http_node, check_json, get, post, request
from sosnet import Net, Skip, run, wait_for


def new_room_hash():
    return os.urandom(8).hex()


def http_stats(node):
    return node.status()["http"]


def test_bodies():
    with Net() as net:
        a = add_http_node(net, extra=["--http-body-max", "65536"]).start()
        p = a.http
        room = new_room_hash()
        c = check_json(post(p, "/room", {"room_hash": room}), 200)
        # announced too large: refused before the body is read
        big = b'{"content":"' + b"x" * 70000 + b'"}'
        check_json(post(p, "/room/%s/send" % room, raw=big), 413, "too_large")
        # chunked, no Content-Length: refused when it passes the ceiling
        conn = socket.create_connection(("127.0.0.1", p), timeout=30)
        head = ("POST /room/%s/send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                "Content-Type: application/json\r\n\r\n" % room).encode()
        chunk = b"x" * 8192
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
        conn.sendall(head + body)
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = conn.recv(65536)
            if not data:
                break
            reply += data
        conn.close()
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        # 60 KiB of content fits under a 64 KiB body
        ok = check_json(post(p, "/room/%s/send" % room,
                             {"member_id": c["member_id"], "content": "y" * 60000}), 200)
        assert ok["timestamp"] > 0
        # broken JSON counts as an empty body
        for raw in (b"{", b"[1,2]", b"\xff\xfe", b'{"content": "a", "content": "b"}', b"null"):
            check_json(post(p, "/room/%s/send" % room, raw=raw), 400, "missing_content")
            check_json(post(p, "/room", raw=raw), 400, "invalid_room_hash")
        check_json(post(p, "/room/%s/join" % room, raw=b"{{{"), 200)
        # an unparsable query is no cursor at all
        q = check_json(get(p, "/room/%s/poll?since=abc&since_seq=-1&wait=x&member_id=%s" % (
            room, c["member_id"])), 200)
        assert len(q["messages"]) == 1, q
        st = http_stats(a)
        assert st["too_large"] >= 2 and st["bad_json"] >= 5, st
        assert a.alive()
        check_json(get(p, "/health"), 200)


def test_slow_client():
    """Half a request, then silence: the node closes it after --http-timeout and serves
    everyone else meanwhile."""
    with Net() as net:
        a = add_http_node(net, extra=["--http-timeout", "2"]).start()
        slow = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", a.http), timeout=60)
            s.sendall(b"POST /room HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ro")
            slow.append(s)
        check_json(get(a.http, "/health"), 200)
        for s in slow:
            data = s.recv(1024)  # the node closes (maybe after an error status)
            assert not data or data.startswith(b"HTTP/1.1"), data
        for s in slow:
            s.close()
        check_json(get(a.http, "/health"), 200)


def test_trickled_body():
    """A body sent a byte at a time, each in time for the idle timeout: the connection is
    closed once the request has taken --http-timeout in all, and counted."""
    with Net() as net:
        a = add_http_node(net, extra=["--http-timeout", "2"]).start()
        s = socket.create_connection(("127.0.0.1", a.http), timeout=60)
        s.sendall(b"POST /room HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        closed = False
        for _ in range(200):  # at most 100 s of trickling; the node cuts it long before
            try:
                s.sendall(b" ")
            except OSError:
                closed = True
                break
            time.sleep(0.5)
            s.setblocking(False)
            try:
                if s.recv(1024) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            finally:
                s.setblocking(True)
        s.close()
        assert closed, "the node kept a trickled request open"
        assert http_stats(a)["too_slow"] >= 1
        check_json(get(a.http, "/health"), 200)


CONNECTIONS = 10000


def test_many_connections():
    """10,000 connections at once against a cap of 1000: the node refuses or times out what
    is over its cap, answers again as soon as there is room, and is still up."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CONNECTIONS + 200
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        raise Skip("open files limit %d is below %d" % (soft, want))
    with Net() as net:
        a = add_http_node(net, extra=["--http-max-conns", "1000", "--http-timeout", "3"]).start()
        socks = []
        try:
            for _ in range(CONNECTIONS):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", a.http))
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    s.close()
                    continue
                socks.append(s)
            # While they are open: the node answers as soon as idle ones time out
            wait_for("an answer while 10,000 connections are open",
                     lambda: get(a.http, "/health", timeout=5).status == 200, timeout=120)
        finally:
            for s in socks:
                s.close()
        assert a.alive()
        check_json(get(a.http, "/health"), 200)
        st = http_stats(a)
        assert st["connections"] >= 1000 and st["conn_refused"] >= 1, st


def test_waiting_cap():
    """More long polls than --http-max-waiting: the ones over the cap get 503 unavailable at
    once, the rest wait, and the node counts the refusals."""
    with Net() as net:
        a = add_http_node(net, extra=["--http-max-waiting", "4"]).start()
        room = new_room_hash()
        c = check_json(post(a.http, "/room", {"room_hash": room}), 200)
        results = []

        def poll():
            results.append(get(a.http, "/room/%s/poll?since=0&member_id=%s&wait=3000" % (
                room, c["member_id"]), timeout=60))

        threads = [threading.Thread(target=poll) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(r.status for r in results)
        assert statuses.count(200) >= 4 and 503 in statuses, statuses
        for r in results:
            if r.status == 503:
                check_json(r, 503, "unavailable")
        assert http_stats(a)["waiting_full"] >= 1
        check_json(get(a.http, "/room/%s/info" % room), 200)


if __name__ == "__main__":
    run([test_bodies, test_slow_client, test_trickled_body, test_many_connections,
         test_waiting_cap])
