"""soshttp.py: helpers for the HTTP tests: nodes with an HTTP listener (sosnet's harness) and
a small client on http.client that returns status, headers and the parsed JSON body."""

import http.client
import json

from sosnet import Net, free_port

CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Content-Type",
    "access-control-max-age": "3600",
}


class Reply:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.raw[:200])


def request(port, method, path, body=None, raw=None, headers=None, timeout=60):
    """One request on a new connection. body is JSON-encoded; raw is sent as it is."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return Reply(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


def post(port, path, body=None, **kw):
    return request(port, "POST", path, body=body, **kw)


def add_http_node(net, extra=(), **kw):
    """Add a node with an HTTP listener on a free port; its port is node.http."""
    port = free_port()
    node = net.add(extra=["--http", "127.0.0.1:%d" % port] + list(extra), **kw)
    node.http = port
    return node


def check_cors(reply):
    for k, v in CORS.items():
        assert reply.headers.get(k) == v, "header %s: %r in %r" % (k, reply.headers.get(k), reply)


def check_json(reply, status, error=None):
    """The status, the JSON content type, the CORS headers, and the error code if given."""
    assert reply.status == status, "expected %d, got %r" % (status, reply)
    assert reply.headers.get("content-type") == "application/json", reply.headers
    check_cors(reply)
    assert reply.json is not None, reply
    if error is not None:
        assert reply.json.get("error") == error, "expected error %s, got %r" % (error, reply)
    return reply.json
