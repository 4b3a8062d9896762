"""test_faults_storage.py: storage faults: a full LMDB map, a full disk, corrupt and foreign
data directories, two nodes on one directory, and kill -9 of a room's owner during a stream
of sends.

- test_map_full: a node with a 1 MiB map is filled through the raw client until a write
  fails; every write from then on is answered (ok, or unavailable naming the full map, never
  silence), the node keeps running and serving reads, everything acknowledged before is
  intact; restarted with a 64 MiB map everything is there and writable.
- test_disk_full: the same on a 2 MiB tmpfs (skipped, with the reason, where mounting is not
  permitted): unavailable naming the full device, no crash, reads served, a restart on the
  full disk serves reads; a new node on the full disk exits 1 with one line and leaves no
  half-made store (and starts there once there is room); the directory copied to a roomier
  file system restarts with every acknowledged message.
- test_corrupt_data_dir, test_foreign_data_dir: garbage, truncated and zeroed data files, a
  damaged identity key, and LMDB environments that are not sosnode stores (made with
  mdb_load) make sosnode exit 1 with one line on stderr naming the directory or file, and
  leave every file as it was.
- test_second_node_same_dir: a second sosnode on a directory in use exits 1 with one line
  saying it is locked; the first keeps running, with its data, and writable.
- test_kill_owner_during_sends: five client threads (three on the owner, two through another
  node) send to one room while the owner is killed with SIGKILL, three times over; after each
  restart every acknowledged send is there exactly once with its acknowledged seq, seqs run
  1..N without gaps, and every message is whole (its exact content and sender) and was really
  sent; unacknowledged sends are whole or absent, and a retry with the same msg_id stores
  nothing twice."""

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from sosclient import Client, NoReply, new_room_hash
from sosnet import SOSNODE, Net, Skip, free_port, run, wait_for


def content_of(msg_id, size=2000):
    """A message body that can be told from any other and checked whole: derived from its
    msg_id, size bytes of hex."""
    seed = hashlib.sha256(msg_id.encode()).hexdigest()
    return (seed * (size // len(seed) + 1))[:size]


class Book:
    """What a client was told: per room its creator and the acknowledged messages."""

    def __init__(self):
        self.rooms = {}  # room -> [member, [(seq, msg_id, content)]]

    def check(self, client):
        """Every acknowledged message is there, in order, whole, and nothing else is."""
        for room, (member, acked) in self.rooms.items():
            got = [(m["seq"], m["id"], m["content"]) for m in client.poll_all(room, member)]
            assert got == acked, "room %s: %d messages acknowledged, %d found%s" % (
                room, len(acked), len(got), "" if len(got) == len(acked) else "")


def fill(client, book, content_size=2000, room_every=40, limit=20000):
    """Create rooms and send messages until a write fails; return (op, status, body) of the
    failed write. Every acknowledged write goes into book."""
    room = None
    for i in range(limit):
        if room is None or i % room_every == 0:
            new = new_room_hash()
            status, body = client.call("create", {"room_hash": new, "nickname": "filler"})
            if status != "ok":
                return "create", status, body
            room = new
            book.rooms[room] = [body["member_id"], []]
            continue
        member, acked = book.rooms[room]
        msg_id = "f%d" % i
        content = content_of(msg_id, content_size)
        status, body = client.call("send", {"room_hash": room, "member_id": member,
                                            "content": content, "msg_id": msg_id})
        if status != "ok":
            return "send", status, body
        assert body["seq"] == len(acked) + 1, body
        acked.append((body["seq"], msg_id, content))
    raise AssertionError("%d writes and the store is not full" % limit)


def writes_after_full(client, book, phrase):
    """Once full, every write is answered at once: ok (LMDB may reuse a freed page for a small
    one) or unavailable naming the cause; a large one fails. Returns the count refused."""
    room, (member, acked) = next(iter(book.rooms.items()))
    refused = 0
    attempts = [("create", {"room_hash": new_room_hash()}),
                ("join", {"room_hash": room, "nickname": "late"})]
    attempts += [("send", {"room_hash": room, "member_id": member, "msg_id": "big%d" % k,
                           "content": content_of("big%d" % k, 60000)}) for k in range(5)]
    for op, args in attempts:
        status, body = client.call(op, args)  # a timeout raises NoReply: a failure
        if status == "ok":
            if op == "send":
                acked.append((body["seq"], args["msg_id"], args["content"]))
            elif op == "create":
                book.rooms[args["room_hash"]] = [body["member_id"], []]
            continue
        assert status == "unavailable", (op, status, body)
        assert body["error"] == "unavailable", body
        assert phrase in body["message"], body
        refused += 1
    assert refused >= 5, "large writes into a full store succeeded"
    return refused


def reads_served(node, client, book):
    """A full node still answers reads: status, the directory, room info and polls."""
    st = node.status()
    assert st["gossip"]["commit_failures"] > 0, st["gossip"]
    listed = node.rooms()
    assert set(book.rooms) <= set(listed), "rooms missing from the directory"
    for room in book.rooms:
        assert client.info(room)["message_count"] == len(book.rooms[room][1])
    book.check(client)


def after_restart(node, book):
    """Restarted with room to spare: everything acknowledged is there, and writable."""
    with Client(node.endpoint, timeout=20) as c:
        book.check(c)
        for room, (member, acked) in book.rooms.items():
            msg_id = "after-restart-%s" % room
            ack = c.send(room, member, "after the restart", msg_id)
            assert ack["seq"] == len(acked) + 1, ack
            acked.append((ack["seq"], msg_id, "after the restart"))
        room = new_room_hash()
        book.rooms[room] = [c.create(room)["member_id"], []]
        book.check(c)


def test_map_full():
    with Net(extra=["--rate-limit", "off", "--history", "100000", "--room-quota", "0"]) as net:
        node = net.add(extra=["--map-size", "1"]).start()
        book = Book()
        with Client(node.endpoint, timeout=20) as c:
            op, status, body = fill(c, book)
            assert status == "unavailable", (op, status, body)
            assert "database map is full" in body["message"], body
            n_msgs = sum(len(a) for _, a in book.rooms.values())
            print("map full after %d rooms, %d messages: %s" % (
                len(book.rooms), n_msgs, body["message"]), flush=True)
            writes_after_full(c, book, "database map is full")
            assert node.alive(), "the node died when its map filled"
            reads_served(node, c, book)
        assert node.stop() == 0, "a node with a full map did not stop cleanly"
        node.extra = ["--map-size", "64"]
        node.start()
        after_restart(node, book)


def _mount_tmpfs(size):
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root (euid %d)" % os.geteuid())
    mnt = tempfile.mkdtemp(prefix="sosfull-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(mnt)
        raise Skip("cannot mount a tmpfs: %s" % (p.stderr.strip() or "mount failed"))
    return mnt


def _umount(mnt):
    for _ in range(50):
        if subprocess.run(["umount", mnt], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    os.rmdir(mnt)


def test_disk_full():
    mnt = _mount_tmpfs("2m")
    try:
        with Net(extra=["--rate-limit", "off", "--history", "100000", "--room-quota", "0"]) as net:
            node = net.add()
            node.data = os.path.join(mnt, "data")
            node.start()
            with open(os.path.join(node.data, "identity.key"), "rb") as f:
                key = f.read()
            book = Book()
            phrase = "no space left"
            with Client(node.endpoint, timeout=20) as c:
                op, status, body = fill(c, book)
                assert status == "unavailable", (op, status, body)
                assert phrase in body["message"], body
                n_msgs = sum(len(a) for _, a in book.rooms.values())
                print("disk full after %d rooms, %d messages: %s" % (
                    len(book.rooms), n_msgs, body["message"]), flush=True)
                writes_after_full(c, book, phrase)
                assert node.alive(), "the node died when its disk filled"
                reads_served(node, c, book)
            assert node.stop() == 0, "a node on a full disk did not stop cleanly"

            # Started again on the still full disk: it runs and serves reads (its start-up
            # record cannot be stored), or refuses with a clear error; it never crashes.
            node.start(wait=False)

            def up_or_exited():
                if not node.alive():
                    return "exited"
                node.ctl("status", timeout_ms=1000)
                return "up"
            state = wait_for("the node on a full disk to answer or exit", up_or_exited,
                             timeout=60)
            print("restarted on the full disk: %s" % state, flush=True)
            if state == "up":
                with Client(node.endpoint, timeout=20) as c:
                    book.check(c)
                assert node.stop() == 0
            else:
                assert node.proc.returncode == 1, "exit %r on a full disk" % node.proc.returncode
                assert phrase in node.log_text().splitlines()[-1], node.log_text()[-500:]

            with open(os.path.join(node.data, "identity.key"), "rb") as f:
                assert f.read() == key, "the identity key changed"

            # A new node on the full disk: exit 1 with one line (LMDB's lock file would
            # otherwise take the process down with SIGBUS), and no half-made store left.
            fresh = os.path.join(mnt, "fresh")
            p = subprocess.run([SOSNODE, "--data", fresh, "--listen",
                                "tcp://127.0.0.1:%d" % free_port()],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 1, "exit %d on a full disk: %r" % (p.returncode, p.stderr)
            assert len(p.stderr.splitlines()) == 1, p.stderr
            assert phrase in p.stderr and fresh in p.stderr, p.stderr
            assert not os.path.exists(os.path.join(fresh, "data.mdb")), os.listdir(fresh)
            print("new node on the full disk: %s" % p.stderr.strip(), flush=True)

            copy = os.path.join(net.dir, "copy")
            shutil.copytree(node.data, copy)
            shutil.rmtree(node.data)
            node.data = copy
            node.start()
            after_restart(node, book)

            # With room on the disk again, the new node starts in the same directory.
            late = net.add()
            late.data = fresh
            late.start()
            assert late.status()["node_id"] == late.node_id
    finally:
        _umount(mnt)


# ------------------------------------------------------------ bad directories ----

LOCK_FILES = {"lock", "lock.mdb"}  # made by any open of a directory: sosnode's and LMDB's


def sums(d):
    out = {}
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def refuses(data, phrase, what=None, listen=None):
    """Run sosnode on data: it must exit 1 with one line on stderr that says phrase and names
    what (the directory, by default), and change no file (LMDB's lock.mdb aside: LMDB resets
    its reader table on every open). Returns the line."""
    before = sums(data)
    listen = listen or "tcp://127.0.0.1:%d" % free_port()
    p = subprocess.run([SOSNODE, "--data", data, "--listen", listen], capture_output=True,
                       text=True, timeout=60)
    lines = p.stderr.splitlines()
    assert p.returncode == 1, "exit %d on %s (stderr %r)" % (p.returncode, data, p.stderr)
    assert len(lines) == 1, "stderr is not one line: %r" % p.stderr
    line = lines[0]
    assert line.startswith("sosnode: cannot start: "), line
    assert phrase in line, line
    assert (what or data) in line, line
    after = sums(data)
    for name, digest in before.items():
        if name != "lock.mdb":
            assert after.get(name) == digest, "%s changed in %s" % (name, data)
    assert set(after) - set(before) <= LOCK_FILES, "new files: %s" % (set(after) - set(before))
    return line


def make_store(net):
    """A real store with rooms and messages, made by a node that then stopped."""
    node = net.add(extra=["--rate-limit", "off"])
    node.start()
    with Client(node.endpoint, timeout=20) as c:
        for r in range(10):
            room = new_room_hash()
            member = c.create(room)["member_id"]
            for k in range(20):
                c.send(room, member, content_of("m%d-%d" % (r, k), 3000), "m%d-%d" % (r, k))
    assert node.stop() == 0
    return node.data


CORRUPT = "data directory is corrupt or not a sosnode store"


def test_corrupt_data_dir():
    with Net() as net:
        base = os.path.join(net.dir, "bad")
        os.mkdir(base)
        cases = []

        def case(name):
            d = os.path.join(base, name)
            os.mkdir(d)
            cases.append(d)
            return d

        with open(os.path.join(case("garbage"), "data.mdb"), "wb") as f:
            f.write(os.urandom(64 * 1024))
        with open(os.path.join(case("short-garbage"), "data.mdb"), "wb") as f:
            f.write(os.urandom(100))
        real = make_store(net)
        size = os.path.getsize(os.path.join(real, "data.mdb"))
        assert size > 64 * 1024, size
        for name, damage in (("truncated", "cut"), ("half", "half"), ("zeroed", "zero")):
            d = os.path.join(base, name)
            shutil.copytree(real, d)
            cases.append(d)
            path = os.path.join(d, "data.mdb")
            if damage == "cut":
                os.truncate(path, 4 * 4096)  # the meta pages and a little more
            elif damage == "half":
                os.truncate(path, size // 2)
            else:
                with open(path, "r+b") as f:  # everything after the meta pages
                    f.seek(2 * 4096)
                    f.write(b"\0" * (size - 2 * 4096))
        for d in cases:
            line = refuses(d, CORRUPT)
            print("%s: %s" % (os.path.basename(d), line), flush=True)

        # A store whose identity key is damaged: the key file is named, and left alone.
        d = os.path.join(base, "bad-key")
        shutil.copytree(real, d)
        with open(os.path.join(d, "identity.key"), "wb") as f:
            f.write(os.urandom(10))
        line = refuses(d, "cannot load the identity", what=os.path.join(d, "identity.key"))
        print("bad-key: %s" % line, flush=True)

        # The undamaged original still opens, with its rooms.
        node = net.nodes[0]
        node.start()
        assert len(node.rooms()) == 10


def mdb_load(target, text, subdb=None):
    os.makedirs(target, exist_ok=True)
    cmd = ["mdb_load", "-T"] + (["-s", subdb] if subdb else []) + [target]
    p = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_foreign_data_dir():
    if not shutil.which("mdb_load"):
        raise Skip("mdb_load (lmdb-utils) is not installed")
    with Net() as net:
        plain = os.path.join(net.dir, "plain")
        mdb_load(plain, "hello\nworld\nanswer\n42\n")
        # Looks like ours at a glance: a named database "meta", without our format key.
        lookalike = os.path.join(net.dir, "lookalike")
        mdb_load(lookalike, "version\n\\01\\00\\00\\00\\00\\00\\00\\00\n", subdb="meta")
        # Our format key in the main database rather than in "meta".
        wrong_place = os.path.join(net.dir, "wrong-place")
        mdb_load(wrong_place, "format\nsosnode-store-1\n")
        for d in (plain, lookalike, wrong_place):
            line = refuses(d, CORRUPT)
            print("%s: %s" % (os.path.basename(d), line), flush=True)
            assert not os.path.exists(os.path.join(d, "identity.key"))


def test_second_node_same_dir():
    with Net(extra=["--rate-limit", "off"]) as net:
        first = net.add().start()
        book = Book()
        with Client(first.endpoint, timeout=20) as c:
            room = new_room_hash()
            book.rooms[room] = [c.create(room)["member_id"], []]
            for k in range(20):
                ack = c.send(room, book.rooms[room][0], content_of("s%d" % k), "s%d" % k)
                book.rooms[room][1].append((ack["seq"], "s%d" % k, content_of("s%d" % k)))
        with open(os.path.join(first.data, "identity.key"), "rb") as f:
            key = f.read()
        for listen in (None, first.endpoint):  # its own endpoint, and the first one's
            before = sums(first.data)
            p = subprocess.run([SOSNODE, "--data", first.data, "--listen",
                                listen or "tcp://127.0.0.1:%d" % free_port()],
                               capture_output=True, text=True, timeout=60)
            lines = p.stderr.splitlines()
            assert p.returncode == 1, (p.returncode, p.stderr)
            assert len(lines) == 1, p.stderr
            assert "locked by another process" in lines[0] and first.data in lines[0], lines
            print("second node: %s" % lines[0], flush=True)
            after = sums(first.data)
            assert after["identity.key"] == before["identity.key"]
            assert set(after) == set(before)
        assert first.alive(), "the first node died"
        with open(os.path.join(first.data, "identity.key"), "rb") as f:
            assert f.read() == key
        assert first.status()["node_id"] == first.node_id
        after_restart(first, book)  # reads and writes still work (no restart needed)


# --------------------------------------------------------- kill during sends ----

class Sender(threading.Thread):
    """One client sending to a room until a send fails (the owner died)."""

    def __init__(self, name, endpoint, room, ledger):
        super().__init__(daemon=True)
        self.name_ = name
        self.endpoint = endpoint
        self.room = room
        self.ledger = ledger
        self.sent = 0
        self.error = None

    def run(self):
        try:
            with Client(self.endpoint, timeout=5) as c:
                member = wait_for("%s to join" % self.name_,
                                  lambda: c.join(self.room, nickname=self.name_)["member_id"],
                                  timeout=60, interval=0.2)
                k = 0
                while True:
                    msg_id = "%s-%d" % (self.name_, k)
                    content = content_of(msg_id, 16 + (k * 397) % 3000)
                    self.ledger.attempt(msg_id, self.name_, content)
                    try:
                        status, body = c.call("send", {"room_hash": self.room,
                                                       "member_id": member,
                                                       "content": content, "msg_id": msg_id})
                    except NoReply:
                        return
                    if status != "ok":
                        assert status in ("owner_unreachable", "unavailable"), (status, body)
                        return
                    assert body["id"] == msg_id, body
                    self.ledger.ack(msg_id, body["seq"])
                    self.sent += 1
                    k += 1
        except Exception as e:  # reported by the test
            self.error = e


class Ledger:
    """Every send attempted (msg_id -> sender, content) and every one acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = {}
        self.acked = {}

    def attempt(self, msg_id, sender, content):
        with self.lock:
            self.attempted[msg_id] = (sender, content)

    def ack(self, msg_id, seq):
        with self.lock:
            self.acked[msg_id] = seq

    def n_acked(self):
        with self.lock:
            return len(self.acked)

    def check(self, messages):
        """The room's messages against what was sent and acknowledged; returns how many
        unacknowledged sends are there."""
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(1, len(messages) + 1)), "seqs are not 1..N: %s" % seqs[:50]
        ids = [m["id"] for m in messages]
        assert len(set(ids)) == len(ids), "a message is stored twice"
        by_id = {m["id"]: m for m in messages}
        for m in messages:
            assert m["id"] in self.attempted, "a message nobody sent: %r" % m["id"]
            sender, content = self.attempted[m["id"]]
            assert m["sender"] == sender and m["content"] == content, \
                "message %s is not whole" % m["id"]
        for msg_id, seq in self.acked.items():
            assert msg_id in by_id, "acknowledged send %s (seq %d) is lost" % (msg_id, seq)
            assert by_id[msg_id]["seq"] == seq, "send %s moved from seq %d to %d" % (
                msg_id, seq, by_id[msg_id]["seq"])
        return len(set(by_id) - set(self.acked))


def test_kill_owner_during_sends():
    cycles, per_cycle = 3, 150
    with Net(extra=["--rate-limit", "off", "--history", "100000", "--room-quota", "0"]) as net:
        owner = net.add().start()
        other = net.add().start()
        wait_for("two nodes to converge", net.converged)
        with Client(owner.endpoint, timeout=20) as c:
            room = new_room_hash()
            creator = c.create(room, nickname="creator")["member_id"]
        wait_for("the room on the other node", lambda: room in other.rooms())
        ledger = Ledger()
        in_doubt_there = 0
        for cycle in range(cycles):
            senders = [Sender("c%d%d" % (cycle, i), (owner if i < 3 else other).endpoint, room,
                              ledger) for i in range(5)]
            start = ledger.n_acked()
            for s in senders:
                s.start()
            # Kill while every sender is streaming: each has had sends acknowledged (those
            # through the other node wait for its connection to the restarted owner).
            wait_for("%d acknowledged sends in cycle %d, some from every sender" % (
                per_cycle, cycle),
                lambda: (ledger.n_acked() - start >= per_cycle and
                         all(s.sent >= 10 for s in senders)) or
                not all(s.is_alive() for s in senders), timeout=120)
            assert all(s.is_alive() for s in senders), \
                "a sender stopped before the kill: %r" % [(s.name_, s.error) for s in senders]
            owner.proc.send_signal(signal.SIGKILL)
            owner.proc.wait()
            for s in senders:
                s.join(timeout=60)
                assert not s.is_alive(), "sender %s is stuck" % s.name_
                assert s.error is None, "sender %s: %r" % (s.name_, s.error)
                assert s.sent > 0, "sender %s never got an acknowledgement" % s.name_
            owner.start()
            with Client(owner.endpoint, timeout=20) as c:
                messages = c.poll_all(room, creator)
            in_doubt_there = ledger.check(messages)
            print("cycle %d: %d sends acknowledged in all, %d attempted, %d messages stored "
                  "(%d of them unacknowledged)" % (cycle, len(ledger.acked),
                                                   len(ledger.attempted), len(messages),
                                                   in_doubt_there), flush=True)
        # A retry of every unacknowledged send, with its msg_id: stored at most once.
        with Client(owner.endpoint, timeout=20) as c:
            member = c.join(room, nickname="retrier")["member_id"]
            messages = c.poll_all(room, creator)
            there = {m["id"]: m["seq"] for m in messages}
            for msg_id, (sender, content) in sorted(ledger.attempted.items()):
                if msg_id in ledger.acked:
                    continue
                ack = c.send(room, member, content, msg_id)
                if msg_id in there:
                    assert ack["seq"] == there[msg_id], "a retried send was stored again"
                else:
                    ledger.attempted[msg_id] = ("retrier", content)
                ledger.ack(msg_id, ack["seq"])
            ledger.check(c.poll_all(room, creator))
        assert other.alive()


if __name__ == "__main__":
    run([test_map_full, test_disk_full, test_corrupt_data_dir, test_foreign_data_dir,
         test_second_node_same_dir, test_kill_owner_during_sends])
