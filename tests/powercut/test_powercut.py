"""test_powercut.py: power loss under load. A room's owner runs under powercut_shim.so while
clients send to it and create rooms, and a second node gossips with it; at a random point the
shim "loses power": it undoes every write that was not synced and kills the node. The node
then restarts on what remains, and every cut must leave: a store that opens; every
acknowledged send there exactly once, with the seq it was acknowledged with, in order; every
acknowledged room in both directories; a worker record whose version grew past what the other
node saw before the cut.

Usage: test_powercut.py [--cuts N] [--seed S]   (default 8 cuts: the CI run; more for soak)
Environment: SOS_BIN (the build directory), SOS_POWERCUT_SHIM (the shim's path),
SOS_POWERCUT_CUTS (the default for --cuts), SOS_POWERCUT_KEEP (a directory that gets a copy
of the owner's data directory as the last cut left it)."""

import argparse
import os
import random
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "multinode"))

from sosclient import Client, NoReply, ReplyError, new_room_hash  # noqa: E402
from sosnet import BIN, Net, Node, Skip, run, wait_for  # noqa: E402

SHIM = os.environ.get("SOS_POWERCUT_SHIM", os.path.join(BIN, "powercut_shim.so"))
SENDERS = 4
WINDOW = 4
ROOM_CUTS = 2       # cuts whose sends one room takes: under the node's history limit
SENDS_PER_CUT = 10000  # per sender


class PowerNode(Node):
    """A node whose next start runs under the shim when self.cut is set."""

    cut = None  # {"after_ms": .., "skip": .., "seed": ..} for the next start, or None

    def args(self):
        a = super().args()
        if not self.cut:
            return a
        env = ["env", "LD_PRELOAD=" + SHIM, "SOS_POWERCUT_DIR=" + self.data,
               "SOS_POWERCUT_AFTER_MS=%d" % self.cut["after_ms"],
               "SOS_POWERCUT_SKIP=%d" % self.cut["skip"],
               "SOS_POWERCUT_SEED=%d" % self.cut["seed"],
               "SOS_POWERCUT_LOG=" + self.cut["log"]]
        return env + a


def start_or_die(node, timeout=30):
    """Start node; True once it answers status, False if it died first (a cut at start-up)."""
    node.start(wait=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            return False
        try:
            node.node_id = node.ctl("status", timeout_ms=500)["node_id"]
            return True
        except Exception:
            time.sleep(0.05)
    raise AssertionError("node %d neither answered status nor died" % node.index)


class Load:
    """Senders (each its own client, WINDOW sends outstanding) and a room creator, until the
    node stops answering. Records what was acknowledged, and only that."""

    def __init__(self, node, room, members, next_no, created):
        self.node = node
        self.room = room
        self.members = members
        self.next_no = next_no      # per sender: the number of its next message
        self.acked = {}             # msg id -> seq, acknowledged in this run
        self.created = created      # rooms whose create was acknowledged (shared, grows)
        self.errors = []
        self.lock = threading.Lock()

    def sender(self, k):
        with Client(self.node.endpoint, timeout=3.0) as c:
            try:
                for _ in range(SENDS_PER_CUT // WINDOW):
                    posted = {}
                    for _ in range(WINDOW):
                        no = self.next_no[k]
                        self.next_no[k] += 1
                        mid = "s%d-%d" % (k, no)
                        rid = c.post("send", {"room_hash": self.room, "member_id": self.members[k],
                                              "content": "message %s" % mid, "msg_id": mid})
                        posted[rid] = mid
                    replies = c.collect(list(posted))
                    for rid, (status, body) in replies.items():
                        if status != "ok":
                            # an error reply (a failed commit) is not an acknowledgement
                            continue
                        with self.lock:
                            self.acked[posted[rid]] = body["seq"]
            except NoReply:
                return  # the node is gone
            except Exception as e:  # noqa: BLE001
                self.errors.append("sender %d: %r" % (k, e))

    def creator(self):
        with Client(self.node.endpoint, timeout=3.0) as c:
            try:
                while True:
                    room = new_room_hash()
                    c.create(room, nickname="maker")
                    with self.lock:
                        self.created.append(room)
                    time.sleep(0.02)
            except NoReply:
                return
            except ReplyError as e:
                if e.code != "unavailable":
                    self.errors.append("creator: %r" % (e,))
            except Exception as e:  # noqa: BLE001
                self.errors.append("creator: %r" % (e,))

    def run(self, deadline_s):
        threads = [threading.Thread(target=self.sender, args=(k,)) for k in range(SENDERS)]
        threads.append(threading.Thread(target=self.creator))
        for t in threads:
            t.daemon = True
            t.start()
        deadline = time.monotonic() + deadline_s
        while self.node.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        cut = not self.node.alive()
        if not cut:
            self.node.kill()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a load thread did not stop"
        return cut


def check_room(node, room, reader, acked_all):
    """Every acknowledged send is there once, with its seq; seqs grow; each sender's
    messages are in the order it sent them."""
    with Client(node.endpoint) as c:
        msgs = c.poll_all(room, reader)
    seen = {}
    last_seq = 0
    last_no = {}
    for m in msgs:
        assert m["seq"] > last_seq, "seq %d after %d" % (m["seq"], last_seq)
        last_seq = m["seq"]
        mid = m["id"]
        assert mid not in seen, "message %s stored twice (seq %d and %d)" % (
            mid, seen.get(mid), m["seq"])
        seen[mid] = m["seq"]
        if mid.startswith("s"):
            k, no = (int(x) for x in mid[1:].split("-"))
            assert no > last_no.get(k, -1), "sender %d's %d after its %d" % (k, no, last_no[k])
            last_no[k] = no
    lost = [mid for mid in acked_all if mid not in seen]
    assert not lost, "%d acknowledged sends lost, e.g. %s" % (len(lost), sorted(lost)[:5])
    wrong = [(mid, s, seen[mid]) for mid, s in acked_all.items() if seen[mid] != s]
    assert not wrong, "acknowledged seqs changed: %r" % wrong[:5]
    return len(msgs)


def powercut(cuts, seed):
    if not os.path.exists(SHIM):
        raise Skip("no shim at %s" % SHIM)
    if "ASAN_OPTIONS" in os.environ:
        raise Skip("the shim cannot be preloaded ahead of AddressSanitizer's runtime")
    rng = random.Random(seed)
    print("powercut: %d cuts, seed %d" % (cuts, seed), flush=True)
    with Net() as net:
        a = PowerNode(net, 0, extra=["--history", "100000"])
        net.nodes.append(a)
        a.start()
        b = net.add(genesis=[a.endpoint])
        b.start()
        wait_for("a and b to list each other", net.converged)
        # Each later cut checks every room again
        rooms = []  # (room, reader member, {msg id: acknowledged seq})
        created = []
        next_no = [0] * SENDERS
        log = os.path.join(net.dir, "powercut.log")
        cut_count = 0
        for i in range(cuts):
            if i % ROOM_CUTS == 0:
                room = new_room_hash()
                with Client(a.endpoint) as c:
                    reader = c.create(room, nickname="reader")["member_id"]
                    members = [c.join(room, nickname="s%d" % k)["member_id"]
                               for k in range(SENDERS)]
                rooms.append((room, reader, {}))
            acked_all = rooms[-1][2]
            version_b = b.workers()[a.node_id]["version"]
            a.stop()
            a.cut = {"after_ms": rng.randint(300, 2500), "skip": rng.randint(0, 30),
                     "seed": rng.randint(1, 2**31), "log": log}
            up = start_or_die(a)
            a.cut = None
            load = Load(a, room, members, next_no, created)
            if up:
                did_cut = load.run(deadline_s=15)
            else:
                did_cut = True
            assert not load.errors, load.errors
            for mid, s in load.acked.items():
                assert mid not in acked_all
                acked_all[mid] = s
            cut_count += did_cut
            with open(log) if os.path.exists(log) else open(os.devnull) as f:
                lines = f.read().splitlines()
            print("cut %d: %s; %d sends and %d rooms acknowledged so far" % (
                i, lines[-1] if did_cut and lines else "no cut (killed)",
                sum(len(r[2]) for r in rooms), len(created)), flush=True)

            if did_cut and rng.random() < 0.3:
                # Power fails again while the node recovers (the log's meta page restored,
                # its records replayed, the checkpoint): recovery must survive its own cut
                a.cut = {"after_ms": rng.randint(1, 80), "skip": rng.randint(0, 8),
                         "seed": rng.randint(1, 2**31), "log": log}
                n_lines = len(lines)
                if start_or_die(a):
                    a.kill()  # the cut fell after start-up: no cut this time
                a.cut = None
                with open(log) if os.path.exists(log) else open(os.devnull) as f:
                    lines = f.read().splitlines()
                print("  at restart: %s" % (lines[-1] if len(lines) > n_lines else "no cut"),
                      flush=True)

            if os.environ.get("SOS_POWERCUT_KEEP"):
                # what the cut left, kept for a post-mortem (mdb_stat, the log)
                shutil.rmtree(os.environ["SOS_POWERCUT_KEEP"], ignore_errors=True)
                shutil.copytree(a.data, os.environ["SOS_POWERCUT_KEEP"])
            # Back on what remains: the store opens, nothing acknowledged is lost
            a.start()
            n = sum(check_room(a, r, m, acked) for r, m, acked in rooms)
            have = a.rooms()
            missing = [r for r in created if r not in have]
            assert not missing, "%d acknowledged rooms lost, e.g. %s" % (len(missing), missing[0])
            # The other node takes the restarted owner's record: its version grew
            wait_for("b to see a's new record", lambda: b.workers()[a.node_id]["version"] >
                     version_b, timeout=60)
            wait_for("b to list every acknowledged room",
                     lambda: all(r in b.rooms() for r in created), timeout=60)
            wait_for("a and b to list each other", net.converged)
            print("  check ok: %d messages in %d rooms" % (n, len(rooms)), flush=True)
        assert cut_count >= cuts // 2, "only %d of %d runs cut power" % (cut_count, cuts)
        log_text = a.log_text().lower()
        assert "corrupt" not in log_text, "the owner's log speaks of corruption"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cuts", type=int, default=int(os.environ.get("SOS_POWERCUT_CUTS", "8")))
    p.add_argument("--seed", type=int, default=int(os.environ.get("SOS_POWERCUT_SEED_RUN",
                                                                  str(int(time.time())))))
    args = p.parse_args()

    def test_powercut():
        powercut(args.cuts, args.seed)

    run([test_powercut])


if __name__ == "__main__":
    main()
