"""sosclient.py: a raw client for a node's public endpoint, for multi-node tests that need
requests sosctl cannot make: many concurrent senders, chosen msg_ids, long polls, malformed
or ill-typed arguments, and frames built by hand.

One Client is one ZeroMQ DEALER socket; use one per thread. Requests are msgpack frames
[2, req_id, op, args, flags] and replies [3, req_id, status, body], as in
protocol/sos_client.h."""

import os
import time

import msgpack
import zmq

import soswire

FRAME_REQUEST = 2
FRAME_REPLY = 3
FLAG_FORWARDED = 1


class ReplyError(Exception):
    """An error reply: code is its status (room_not_found, ...), body its map."""

    def __init__(self, code, body):
        message = body.get("message", "") if isinstance(body, dict) else body
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.body = body


class NoReply(Exception):
    """No reply came within the timeout."""


def new_room_hash():
    """A random, valid room hash: 16 lower-case hex characters."""
    return os.urandom(8).hex()


def new_member_id():
    """A well-formed member id (32 lower-case hex characters) that no node handed out."""
    return os.urandom(16).hex()


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


class Client:
    """endpoint: "tcp://..." of a node whose id soswire knows (sosnet.py registers them), or
    "NODEID@tcp://...". CURVE with a throwaway client key, as sosctl; null=True speaks the
    NULL mechanism instead (refused by a node unless it runs --transport null)."""

    def __init__(self, endpoint, timeout=15.0, null=False):
        server_id = None
        if "@" in endpoint:
            server_id, endpoint = endpoint.split("@", 1)
        elif not null:
            server_id = soswire.node_id_for(endpoint)
        self.endpoint = endpoint
        self.timeout = timeout
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if server_id is not None and not null:
            soswire.curve_client(self.sock, server_id)
        self.sock.connect(endpoint)
        # Start the request ids at a random point, as a real client would.
        self.next_id = int.from_bytes(os.urandom(4), "big") + 1

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def new_req_id(self):
        self.next_id += 1
        return self.next_id

    def send_frame(self, frame):
        """Send one frame (bytes) as it is."""
        self.sock.send(frame)

    def recv_reply(self, req_id, timeout=None):
        """Wait for the reply to req_id, dropping replies to others; return (status, body).
        Raise NoReply after timeout seconds."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                if time.monotonic() >= deadline:
                    raise NoReply("no reply to request %d from %s within %.1fs" % (
                        req_id, self.endpoint, timeout))
                continue
            frame = self.sock.recv()
            reply = msgpack.unpackb(frame, raw=False)
            assert isinstance(reply, list) and len(reply) == 4 and reply[0] == FRAME_REPLY, reply
            if reply[1] == req_id:
                assert isinstance(reply[2], str) and isinstance(reply[3], dict), reply
                return reply[2], reply[3]

    def call(self, op, args=None, flags=0, timeout=None, retries=0):
        """Send a request and return (status, body). On a timeout, send the same frame (same
        req_id) again up to retries times: for idempotent requests only, as sosctl does."""
        req_id = self.new_req_id()
        frame = pack([FRAME_REQUEST, req_id, op, {} if args is None else args, flags])
        for attempt in range(retries + 1):
            self.send_frame(frame)
            try:
                return self.recv_reply(req_id, timeout)
            except NoReply:
                if attempt == retries:
                    raise

    def post(self, op, args=None, flags=0):
        """Send a request without waiting; return its req_id (see collect)."""
        req_id = self.new_req_id()
        self.send_frame(pack([FRAME_REQUEST, req_id, op, {} if args is None else args, flags]))
        return req_id

    def collect(self, req_ids, timeout=None):
        """The replies to posted requests, in any order: {req_id: (status, body)}."""
        timeout = self.timeout if timeout is None else timeout
        want, out = set(req_ids), {}
        deadline = time.monotonic() + timeout
        while want:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                if time.monotonic() >= deadline:
                    raise NoReply("%d of %d replies missing from %s after %.1fs" % (
                        len(want), len(req_ids), self.endpoint, timeout))
                continue
            reply = msgpack.unpackb(self.sock.recv(), raw=False)
            assert isinstance(reply, list) and len(reply) == 4 and reply[0] == FRAME_REPLY, reply
            if reply[1] in want:
                want.discard(reply[1])
                out[reply[1]] = (reply[2], reply[3])
        return out

    def request(self, op, **args):
        """call(op, args) and return the body of an ok reply; raise ReplyError otherwise.
        Keyword arguments starting with an underscore go to call: _timeout, _retries, _flags."""
        kw = {k[1:]: args.pop(k) for k in list(args) if k.startswith("_")}
        status, body = self.call(op, args, **kw)
        if status != "ok":
            raise ReplyError(status, body)
        return body

    def error(self, op, **args):
        """A request expected to fail: return (code, body); fail if the reply is ok."""
        kw = {k[1:]: args.pop(k) for k in list(args) if k.startswith("_")}
        status, body = self.call(op, args, **kw)
        assert status != "ok", "%s %r unexpectedly succeeded: %r" % (op, args, body)
        return status, body

    # Room operations, for readability in tests.

    def create(self, room_hash, **kw):
        return self.request("create", room_hash=room_hash, **kw)

    def join(self, room_hash, **kw):
        return self.request("join", room_hash=room_hash, **kw)

    def send(self, room_hash, member_id, content, msg_id, **kw):
        return self.request("send", room_hash=room_hash, member_id=member_id, content=content,
                            msg_id=msg_id, **kw)

    def poll(self, room_hash, member_id, since=0, wait_ms=0, **kw):
        if wait_ms and "_timeout" not in kw:
            kw["_timeout"] = wait_ms / 1000 + self.timeout
        return self.request("poll", room_hash=room_hash, member_id=member_id, since=since,
                            wait_ms=wait_ms, **kw)

    def poll_all(self, room_hash, member_id, since=0):
        """Every message after since, over as many batches as it takes."""
        out = []
        while True:
            batch = self.poll(room_hash, member_id, since=since)["messages"]
            if not batch:
                return out
            out += batch
            since = batch[-1]["seq"]

    def leave(self, room_hash, member_id):
        return self.request("leave", room_hash=room_hash, member_id=member_id)

    def info(self, room_hash):
        return self.request("info", room_hash=room_hash)
