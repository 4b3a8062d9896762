"""test_rooms_order.py: message order under concurrency and long polls. Many senders at once,
through the owner and through other nodes, get one gap-free sequence in which every
acknowledged message appears exactly once and each sender's messages keep their order; a long
poll forwarded by another node wakes with the message sent meanwhile, and one that nothing
wakes ends with an empty batch after its wait."""

import threading
import time

from sosclient import Client, new_room_hash
from sosnet import Net, run, wait_for

SENDERS = 8
PER_SENDER = 50


def start_thread(fn, *args):
    """Run fn in a thread; return (thread, result dict with "value" or "error")."""
    result = {}

    def body():
        try:
            result["value"] = fn(*args)
        except BaseException as e:  # reported by the test thread
            result["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, result


def joined(t, result, timeout=120):
    t.join(timeout)
    assert not t.is_alive(), "thread did not finish"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_concurrent_senders():
    with Net() as net:
        nodes = [net.add(extra=["--history", "1000"]).start() for _ in range(3)]
        wait_for("convergence", net.converged)
        owner = nodes[0]
        room = new_room_hash()
        with Client(owner.endpoint) as c:
            creator = c.create(room, nickname="owner")["member_id"]
        for n in nodes:
            wait_for("room in node %d" % n.index, lambda: room in n.rooms())
        barrier = threading.Barrier(SENDERS)

        def sender(i):
            node = nodes[i % len(nodes)]  # senders 0, 3, 6 at the owner, the rest elsewhere
            acks = []
            with Client(node.endpoint, timeout=10) as c:
                member = c.join(room, nickname="s%d" % i)["member_id"]
                barrier.wait(60)
                for k in range(PER_SENDER):
                    # a send that times out is retried with the same msg_id, as a client would
                    ack = c.send(room, member, "%d:%d" % (i, k), "s%d-%d" % (i, k), _retries=3)
                    acks.append((ack["id"], ack["seq"]))
            return acks

        threads = [start_thread(sender, i) for i in range(SENDERS)]
        acks = {}
        for i, (t, result) in enumerate(threads):
            acks[i] = joined(t, result, timeout=300)
        total = SENDERS * PER_SENDER
        acked_seq = {mid: seq for a in acks.values() for mid, seq in a}
        assert len(acked_seq) == total
        assert sorted(acked_seq.values()) == list(range(1, total + 1)), "acks not one sequence"
        for i, a in acks.items():
            assert [mid for mid, _ in a] == ["s%d-%d" % (i, k) for k in range(PER_SENDER)]
            seqs = [seq for _, seq in a]
            assert seqs == sorted(seqs), "sender %d's acks out of order" % i

        views = []
        for n in nodes:
            with Client(n.endpoint) as c:
                msgs = c.poll_all(room, creator)
            seqs = [m["seq"] for m in msgs]
            assert seqs == list(range(1, total + 1)), "node %d: seqs not 1..%d without gaps" % (
                n.index, total)
            ids = [m["id"] for m in msgs]
            assert len(set(ids)) == total and set(ids) == set(acked_seq), "messages lost or doubled"
            for m in msgs:
                assert m["seq"] == acked_seq[m["id"]], m
                i, k = m["id"][1:].split("-")
                assert m["content"] == "%s:%s" % (i, k) and m["sender"] == "s%s" % i, m
            for i in range(SENDERS):
                mine = [m["content"] for m in msgs if m["sender"] == "s%d" % i]
                assert mine == ["%d:%d" % (i, k) for k in range(PER_SENDER)], "sender %d order" % i
            views.append([(m["id"], m["seq"], m["timestamp"]) for m in msgs])
        assert views[0] == views[1] == views[2]
        gossip = owner.status()["gossip"]
        assert gossip["sends"] == total, gossip


def parked_poll(node, room, member, since, wait_ms):
    """Start a long poll in a thread; return (thread, result) with the reply body and the
    seconds it took."""

    def poll():
        with Client(node.endpoint) as c:
            start = time.monotonic()
            body = c.poll(room, member, since=since, wait_ms=wait_ms, _timeout=wait_ms / 1000 + 30)
            return body, time.monotonic() - start

    return start_thread(poll)


def test_long_poll_wakes_through_non_owner():
    with Net() as net:
        a, b, c = net.start(3)
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca, Client(c.endpoint) as cc:
            member = ca.create(room, nickname="ana")["member_id"]
            wait_for("room in b and c", lambda: room in b.rooms() and room in c.rooms())
            first = cc.send(room, member, "before", "before")["seq"]
            wait_ms = 20000
            forwards = b.status()["gossip"]["forwards"]
            # two long polls forwarded by b, one by c, one at the owner itself
            polls = [parked_poll(n, room, member, first, wait_ms) for n in (b, b, c, a)]
            wait_for("b to forward its polls",
                     lambda: b.status()["gossip"]["forwards"] >= forwards + 2)
            time.sleep(0.5)
            # nothing new: no poll may have returned
            for t, result in polls:
                assert t.is_alive() and not result, "a long poll returned with nothing to say"
            ack = cc.send(room, member, "wake up", "wake")
            assert ack["seq"] == first + 1
            for t, result in polls:
                body, took = joined(t, result, timeout=wait_ms / 1000 + 60)
                assert [(m["seq"], m["id"], m["content"]) for m in body["messages"]] == [
                    (first + 1, "wake", "wake up")], body
                assert body["last_seq"] == first + 1
                # it returned because of the message, before its wait ran out
                assert took < wait_ms / 1000, "the long poll waited out its %d ms" % wait_ms


def test_long_poll_times_out_empty():
    with Net() as net:
        a, b = net.start(2)
        wait_for("convergence", net.converged)
        room = new_room_hash()
        with Client(a.endpoint) as ca:
            member = ca.create(room, nickname="ana")["member_id"]
            wait_for("room in b", lambda: room in b.rooms())
            seq = ca.send(room, member, "only", "only")["seq"]
            wait_ms = 1500
            polls = [parked_poll(n, room, member, seq, wait_ms) for n in (b, a)]
            for t, result in polls:
                body, took = joined(t, result, timeout=60)
                assert body["messages"] == [], body
                assert body["last_seq"] == seq and body["message_count"] == 1, body
                # an empty batch comes only once the wait is over
                assert took >= wait_ms / 1000 * 0.9, "returned after %.2fs" % took
            # a poll with since at the end and no wait returns at once, empty
            with Client(b.endpoint) as cb:
                assert cb.poll(room, member, since=seq)["messages"] == []


if __name__ == "__main__":
    run([test_concurrent_senders, test_long_poll_wakes_through_non_owner,
         test_long_poll_times_out_empty])
