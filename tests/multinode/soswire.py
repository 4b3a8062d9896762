"""soswire.py: the node's wire formats built in Python, independently of the C code, for
tests that talk to a node directly: Ed25519 identities, signed worker and room records,
gossip bodies, signed envelopes, client requests, and a DEALER connection to a node.

Formats, protocol version 2 (msgpack, bin for bytes, str for text):
  envelope frame  [1, signed: bin, sig: bin(64) | bin(0)]  (nodes on CURVE send bin(0): the
                  connection proves the sender; a node takes it only on such a connection)
    signed        [proto_version, type, sender: bin(32), receiver: bin(32), timestamp_ms,
                   nonce: bin(16), body: bin]
  gossip body     [req_id, flags, hash: bin(16), n_origins, self: bin|nil,
                   suspects: [[id, version, age_ms]], digest: [[origin, version, removed]],
                   want: [[origin, version]], records: [bin]]
  record wire     [signed: bin, sig: bin(64)]
    worker        [1, origin: bin(32), version, prev, url, http_url]
    room          [2, origin, version, prev, url, room_hash, emojis: [str], description,
                   created_at, expires_at]
Signatures are Ed25519ph (libsodium's multi-part API) over a domain prefix and the signed
bytes: b"sosnode/2/envelope\0" for envelopes, b"sosnode/2/record\0" for records. The digest
hash is BLAKE2b-128 over b"sosnode/2/digest\0", the entry count (4 bytes big-endian) and
the entries sorted by origin, each origin, version (8 bytes big-endian), removed (1 byte).
  request         [2, req_id, op: str, args: map, flags]
  reply           [3, req_id, status: str, body: map]
Transport (ZMTP level): every connection is CURVE. A node's
key pair is its Ed25519 identity converted to X25519 (crypto_sign_ed25519_pk_to_curve25519),
so the server key of a node is derived from its id; a gossip envelope must come on a
connection whose client key is its sender's. Conn connects with the key of the identity
whose envelope it sends first (every Identity made here is remembered for that), clients
with throwaway keys. The ids of nodes started by sosnet.py are registered by endpoint
(register_node), so that a bare endpoint is enough here.
"""

import os
import socket
import threading
import time

import hashlib
import struct

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.signing
import zmq

PROTO_VERSION = 2
DOMAIN_ENVELOPE = b"sosnode/2/envelope\0"
DOMAIN_RECORD = b"sosnode/2/record\0"
DOMAIN_DIGEST = b"sosnode/2/digest\0"
NOBODY = bytes(32)  # the receiver of a first SYNC to an endpoint whose id is not known
FRAME_ENVELOPE, FRAME_REQUEST, FRAME_REPLY = 1, 2, 3
SYNC, SYNC_ACK, DELTA, DELTA_ACK, RUMOR, LEAVE = 1, 2, 3, 4, 5, 6
DIGEST, DIGEST_ACK = 11, 12  # the exchange by bucket (PROTOCOL.md, "Anti-entropy")
DOMAIN_BUCKET = b"sosnode/2/bucket\0"
REC_WORKER, REC_ROOM = 1, 2
FRAME_MAX = 1024 * 1024 + 128 * 1024  # the largest frame a node accepts
REPLAY_WINDOW_MS = 300 * 1000

_CTX = zmq.Context.instance()

# endpoint -> node id (32 bytes) of the nodes whose ids the tests know (sosnet.py fills it)
_NODE_IDS = {}
# Ed25519 public key -> Identity, for every identity made here: a Conn sending an envelope
# signed by one connects with its CURVE key
_IDENTITIES = {}


def register_node(endpoint, node_id):
    """Remember that the node at endpoint has node_id (bytes or hex)."""
    _NODE_IDS[endpoint] = node_id_bytes(node_id)


def unregister_node(endpoint):
    """Forget the id registered for endpoint (a node on the NULL transport took its port)."""
    _NODE_IDS.pop(endpoint, None)


def node_id_for(endpoint):
    """The registered id (bytes) of the node at endpoint, or None."""
    return _NODE_IDS.get(endpoint)


def curve_public(node_id):
    """The CURVE (X25519) public key of the node whose id is node_id (bytes or hex)."""
    return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(node_id_bytes(node_id))


def curve_client(sock, server_id, ident=None):
    """Make sock a CURVE client of the node server_id, with ident's key pair (or a new
    throwaway one, as clients use)."""
    if ident is not None:
        pk, sk = ident.curve_keys()
    else:
        pk, sk = nacl.bindings.crypto_box_keypair()
    sock.setsockopt(zmq.CURVE_SERVERKEY, curve_public(server_id))
    sock.setsockopt(zmq.CURVE_PUBLICKEY, pk)
    sock.setsockopt(zmq.CURVE_SECRETKEY, sk)


def client_keys(sock, endpoint):
    """Before sock connects to endpoint: a CURVE client with a throwaway key of the node whose
    id is registered for endpoint (as sosctl); nothing for an unknown endpoint (NULL)."""
    node_id = node_id_for(endpoint)
    if node_id is not None:
        curve_client(sock, node_id)


def curve_server(sock, ident):
    """Make sock (before it binds) a CURVE server with ident's key pair, as a node's ROUTER."""
    pk, sk = ident.curve_keys()
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, pk)
    sock.setsockopt(zmq.CURVE_SECRETKEY, sk)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def now_ms():
    return int(time.time() * 1000)


class Identity:
    """An Ed25519 key pair; pk is the 32-byte node id."""

    def __init__(self, seed=None):
        self.key = nacl.signing.SigningKey(seed if seed is not None else os.urandom(32))
        self.pk = bytes(self.key.verify_key)
        self.hex = self.pk.hex()
        _IDENTITIES.setdefault(self.pk, self)

    def curve_keys(self):
        """The CURVE key pair derived from this identity, as a node derives its own."""
        sk = self.key._signing_key  # libsodium's 64-byte secret key
        return (nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(self.pk),
                nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(sk))

    @classmethod
    def from_data_dir(cls, data_dir):
        """The identity of a node, from the key file in its data directory (libsodium's
        64-byte secret key: the seed, then the public key)."""
        with open(os.path.join(data_dir, "identity.key"), "rb") as f:
            sk = f.read()
        ident = cls(sk[:32])
        assert ident.pk == sk[32:], "identity.key: public half does not match the seed"
        return ident

    def sign(self, data, domain=None):
        """The signature of data behind domain (DOMAIN_ENVELOPE or DOMAIN_RECORD), as a node
        makes it; without a domain, a plain Ed25519 signature (version 1's, for tests that
        must be refused)."""
        if domain is None:
            return self.key.sign(data).signature
        st = nacl.bindings.crypto_sign_ed25519ph_state()
        nacl.bindings.crypto_sign_ed25519ph_update(st, domain)
        nacl.bindings.crypto_sign_ed25519ph_update(st, data)
        sk = self.key._signing_key  # libsodium's 64-byte secret key
        return nacl.bindings.crypto_sign_ed25519ph_final_create(st, sk)


def verify(pk, sig, data, domain=DOMAIN_ENVELOPE):
    st = nacl.bindings.crypto_sign_ed25519ph_state()
    nacl.bindings.crypto_sign_ed25519ph_update(st, domain)
    nacl.bindings.crypto_sign_ed25519ph_update(st, data)
    try:
        return nacl.bindings.crypto_sign_ed25519ph_final_verify(st, sig, pk)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False


def node_id_bytes(node_id):
    """A node id as 32 bytes, from bytes or hex (sosctl status's node_id)."""
    if isinstance(node_id, str):
        node_id = bytes.fromhex(node_id)
    assert len(node_id) == 32, "a node id is 32 bytes"
    return node_id


def digest_hash(entries):
    """The digest hash of [(origin, version)] or [(origin, version, removed)] as a node
    computes it (removed False when left out)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(DOMAIN_DIGEST)
    h.update(struct.pack(">I", len(entries)))
    for e in sorted(entries):
        removed = e[2] if len(e) > 2 else False
        h.update(e[0] + struct.pack(">QB", e[1], 1 if removed else 0))
    return h.digest()


# ------------------------------------------------------------------ records ----

def record_wire(signer, fields, domain=DOMAIN_RECORD):
    signed = pack(fields)
    return pack([signed, signer.sign(signed, domain)])


def worker_record(ident, version, url, prev=None, signer=None, origin=None, http_url=""):
    """A worker record of ident (or of origin), signed by signer (default: ident)."""
    fields = [REC_WORKER, origin or ident.pk, version,
              version - 1 if prev is None else prev, url, http_url]
    return record_wire(signer or ident, fields)


def room_record(ident, version, url, room_hash, emojis=(), description="", created_at=None,
                lifetime_ms=3600 * 1000, prev=None, signer=None):
    """A room record; emojis is a list of strings (a single string is one emoji, "" none)."""
    if isinstance(emojis, str):
        emojis = [emojis] if emojis else []
    created = now_ms() if created_at is None else created_at
    fields = [REC_ROOM, ident.pk, version, version - 1 if prev is None else prev, url,
              room_hash, list(emojis), description, created, created + lifetime_ms]
    return record_wire(signer or ident, fields)


def decode_record(wire):
    """(fields, signature_ok) of a record's wire form."""
    signed, sig = unpack(wire)
    fields = unpack(signed)
    return fields, verify(fields[1], sig, signed, DOMAIN_RECORD)


# ------------------------------------------------------------ gossip bodies ----

def gmsg(req_id=0, flags=0, digest_hash=bytes(16), n_origins=0, self_rec=None, suspects=(),
         digest=(), want=(), records=(), buckets=None):
    """A gossip body. suspects: (id, version) pairs or (id, version, age_ms) triples, or bare
    ids (version 0; age 0 where not given). buckets: the
    tenth element of the exchange by bucket, (nb, bucket numbers, sums as bytes), or None;
    a fourth part asks for (DIGEST) or covers (DIGEST_ACK) a piece of one bucket:
    (bucket, from origin, to origin or None for the bucket's end)."""
    suspects = [[s, 0, 0] if isinstance(s, bytes) else [s[0], s[1], s[2] if len(s) > 2 else 0]
                for s in suspects]
    body = [req_id, flags, digest_hash, n_origins, self_rec, suspects,
            [[e[0], e[1], bool(e[2]) if len(e) > 2 else False] for e in digest],
            [[o, v] for o, v in want], list(records)]
    if buckets is not None:
        element = [buckets[0], list(buckets[1]), bytes(buckets[2])]
        if len(buckets) > 3:
            piece = buckets[3]
            element.append([piece[0], bytes(piece[1]),
                            None if piece[2] is None else bytes(piece[2])])
        body.append(element)
    return pack(body)


def bucket_of(origin, nb):
    """The bucket of an origin among nb (a power of two): the top bits of its first two
    bytes."""
    bits = nb.bit_length() - 1
    return ((origin[0] << 8) | origin[1]) >> (16 - bits) if bits else 0


def bucket_first(nb, b):
    """The lowest origin of bucket b among nb: its prefix bits, then zeros."""
    bits = nb.bit_length() - 1
    prefix = b << (16 - bits) if bits else 0
    return bytes([prefix >> 8, prefix & 0xff]) + bytes(30)


def bucket_hash(entries):
    """A bucket's hash: BLAKE2b-128 of the domain and its (origin, version, removed)
    entries in origin order."""
    h = hashlib.blake2b(digest_size=16)
    h.update(DOMAIN_BUCKET)
    for e in sorted(entries, key=lambda e: e[0]):
        h.update(e[0] + struct.pack(">Q", e[1]) + (b"\x01" if len(e) > 2 and e[2] else b"\x00"))
    return h.digest()


def envelope(ident, msg_type, body, ts=None, nonce=None, sender=None, version=PROTO_VERSION,
             signer=None, receiver=None, domain=DOMAIN_ENVELOPE, unsigned=False):
    """A signed envelope frame, bound to receiver: the id of the node it is sent to (32
    bytes, or hex as sosctl status gives it); None binds it to nobody (NOBODY), which a node
    takes only in a SYNC, and then only answers it. sender and signer default to ident: give
    another sender to claim to be someone else, another signer to sign with the wrong key,
    another domain (None: none) to sign as something else than an envelope. unsigned=True
    leaves sig empty, as a node does on CURVE (a node takes that on a CURVE connection whose
    key is the sender's only)."""
    receiver = NOBODY if receiver is None else node_id_bytes(receiver)
    signed = pack([version, msg_type, sender if sender is not None else ident.pk, receiver,
                   now_ms() if ts is None else ts,
                   nonce if nonce is not None else os.urandom(16), body])
    return pack([FRAME_ENVELOPE, signed, b"" if unsigned else (signer or ident).sign(signed, domain)])


def envelope_v1(ident, msg_type, body, ts=None):
    """An envelope of protocol version 1 (no receiver, no domain), which nodes refuse."""
    signed = pack([1, msg_type, ident.pk, now_ms() if ts is None else ts, os.urandom(16), body])
    return pack([FRAME_ENVELOPE, signed, ident.sign(signed)])


def decode_envelope(frame):
    """The fields of an envelope frame as a dict, with body decoded. sig_ok: it is signed and
    the sender's signature verifies. unsigned: sig is empty, as a node on CURVE sends it.
    authentic: either. An unsigned envelope is only as good as the connection it came on:
    a Conn dials a node with the key of its id, so a reply on it is that node's; a Worker's
    ROUTER is a CURVE server that does not check its clients' keys, so there "authentic"
    says only that the frame is well formed."""
    kind, signed, sig = unpack(frame)
    assert kind == FRAME_ENVELOPE, "not an envelope: kind %r" % kind
    version, msg_type, sender, receiver, ts, nonce, body = unpack(signed)
    fields = unpack(body)
    keys = ["req_id", "flags", "hash", "n_origins", "self", "suspects", "digest", "want",
            "records", "buckets"]
    return {"version": version, "type": msg_type, "sender": sender, "receiver": receiver,
            "ts": ts, "nonce": nonce, "sig_ok": bool(sig) and verify(sender, sig, signed),
            "unsigned": sig == b"", "authentic": sig == b"" or verify(sender, sig, signed),
            "body": dict(zip(keys, fields))}


def request(req_id, op, args, flags=0):
    return pack([FRAME_REQUEST, req_id, op, args, flags])


# --------------------------------------------------------------- connection ----

def _envelope_sender(frame):
    """The sender id of an envelope frame, or None if frame is no envelope."""
    try:
        top = unpack(frame)
        if isinstance(top, list) and top and top[0] == FRAME_ENVELOPE:
            signed = unpack(top[1])
            return signed[2] if isinstance(signed[2], bytes) else None
    except Exception:
        pass
    return None


def identity_of(frame):
    """The Identity made here that signed envelope frame, or None."""
    sender = _envelope_sender(frame)
    return _IDENTITIES.get(sender) if sender else None


class Conn:
    """A DEALER connected to a node's public endpoint, as a peer or a client would be.

    CURVE, with the server key of the node's id (server_id, else the one registered for
    endpoint). The client key is ident's if given; else the connection is made at the first
    send, with the key of the identity that signed that frame if it is an envelope of one
    made here, else with a throwaway key (a client's, or a forger's). null=True speaks the
    NULL mechanism (a version 1 node's), which a node refuses."""

    def __init__(self, endpoint, ident=None, server_id=None, null=False):
        self.endpoint = endpoint
        self.server_id = server_id if server_id is not None else node_id_for(endpoint)
        self.null = null or self.server_id is None
        self.sock = None
        if ident is not None or self.null:
            self._open(ident)

    def _open(self, ident):
        self.sock = _CTX.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if not self.null:
            curve_client(self.sock, self.server_id, ident)
        self.sock.connect(self.endpoint)

    def _ensure(self, frame=None):
        if self.sock is None:
            sender = _envelope_sender(frame) if frame is not None else None
            self._open(_IDENTITIES.get(sender) if sender else None)

    def send(self, frame):
        self._ensure(frame)
        self.sock.send(frame)

    def send_multipart(self, frames):
        self._ensure(frames[0] if frames else None)
        self.sock.send_multipart(frames)

    def recv(self, timeout=10.0):
        """The next frame, or None after timeout seconds."""
        self._ensure()
        if self.sock.poll(int(timeout * 1000)):
            return self.sock.recv()
        return None

    def recv_where(self, pred, timeout=10.0):
        """The next frame for which pred(frame) is true (others are skipped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            frame = self.recv(left)
            if frame is None:
                return None
            try:
                if pred(frame):
                    return frame
            except Exception:
                pass

    def close(self):
        if self.sock is not None:
            self.sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Worker:
    """A worker run in Python, as an attacker would: a CURVE ROUTER with the key of its own
    identity on a free port of 127.0.0.1, served by a thread. Each envelope that decodes
    goes to answer(frame, env), which returns the reply frame to send back, or None. Nodes
    reach it once they list its worker record (self.record, version 1 at self.url):
    introduce() sends a node that record in a SYNC, as a joining worker does."""

    # (option, value) pairs a subclass sets on the ROUTER before it binds (ZMQ_RCVBUF, ...)
    sockopts = ()

    def __init__(self, ident=None):
        self.ident = ident or Identity()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.url = "tcp://127.0.0.1:%d" % s.getsockname()[1]
        self.record = worker_record(self.ident, 1, self.url)
        self.stopping = False
        self.sock = _CTX.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        for opt, value in self.sockopts:
            self.sock.setsockopt(opt, value)
        curve_server(self.sock, self.ident)  # nodes connect with the key of its id
        self.sock.bind(self.url)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def answer(self, frame, env):
        return None

    def may_read(self):
        """False to leave frames unread for now (a peer that has stopped reading); called
        before each poll, it may block briefly."""
        return True

    def _serve(self):
        while not self.stopping:
            if not self.may_read() or not self.sock.poll(100):
                continue
            parts = self.sock.recv_multipart()
            if len(parts) != 2:
                continue
            routing, frame = parts
            try:
                env = decode_envelope(frame)
            except Exception:
                continue
            reply = self.answer(frame, env)
            if reply is not None:
                self.sock.send_multipart([routing, reply])
        self.sock.close(0)

    def introduce(self, node, record=None):
        """Send node a SYNC carrying our worker record (or record)."""
        with Conn(node.endpoint) as c:
            c.send(envelope(self.ident, SYNC, gmsg(req_id=1, self_rec=record or self.record),
                            receiver=node.node_id))
            assert c.recv(15) is not None, "node %d did not answer our SYNC" % node.index

    def close(self):
        self.stopping = True
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
