"""test_gossip_suspicion.py: the failure detector suspects before it removes. A node that
stands still for a little while (SIGSTOP, then SIGCONT) is suspected, hears of it, refutes
with a newer record of itself, and is removed nowhere. A killed node is removed everywhere
once its suspicion has outlived the suspicion timeout. The answers that the stopped node
sends once it runs again are taken as round-trip samples (replies_late). Thirty nodes at
50 ms, the crowd, are test_gossip_crowd.py."""

import signal

import soswire as w
from sosnet import Net, free_port, hold_for_rounds, run, wait_for


def gossip(node):
    return node.status()["gossip"]


def converge(net):
    wait_for("%d nodes to converge" % len(net.nodes), net.converged, timeout=60)


def removed(nodes):
    return {n.index: gossip(n)["workers_removed"] for n in nodes}


def env(ident, msg_type, body, node):
    """Every envelope of this file is built here, bound to the node it is sent to."""
    return w.envelope(ident, msg_type, body, receiver=node.node_id)


def test_suspects_do_not_multiply_a_round():
    """Twenty workers that never answer are all suspects at once, yet each round picks at
    most the fanout (3) and 2 probes: suspects never multiply a round's work."""
    with Net(interval=200, extra=("--rate-limit", "off", "--max-failures", "1000")) as net:
        node = net.start(1)[0]
        workers = [w.worker_record(w.Identity(), 1, "tcp://127.0.0.1:%d" % free_port())
                   for _ in range(20)]
        sender = w.Identity()  # one sender: a connection carries one node's key
        with w.Conn(node.endpoint) as c:
            c.send(env(sender, w.RUMOR, w.gmsg(records=workers), node))
            c.send(env(sender, w.SYNC, w.gmsg(req_id=9), node))
            assert c.recv_where(lambda f: w.decode_envelope(f)["type"] == w.SYNC_ACK, 60)
        wait_for("the node to list the 20 workers", lambda: len(node.workers()) == 21)
        wait_for("at least 10 of them suspected", lambda: gossip(node)["suspects"] >= 10,
                 timeout=120)
        hold_for_rounds("each round picking at most fanout + 2 peers",
                        lambda: gossip(node)["round_started"] <= 3 + 2, [node], 20,
                        interval=0.05)
        assert gossip(node)["probes"] > 0
        assert gossip(node)["workers_removed"] == 0


def test_slow_node_refutes():
    with Net(interval=200, extra=("--rate-limit", "off", "--max-failures", "5")) as net:
        nodes = net.start(5)
        converge(net)
        slow, others = nodes[2], [n for n in nodes if n is not nodes[2]]
        sid = slow.node_id
        version0 = slow.status()["record_version"]
        removed0 = removed(nodes)
        suspicions0 = {n.index: gossip(n)["suspicions"] for n in others}
        slow.proc.send_signal(signal.SIGSTOP)
        try:
            # as long as it takes some other node to suspect it and to send it the suspicion
            # (the exchange after the first counted failure carries it), and no longer
            wait_for("another node to suspect the stopped node", lambda: any(
                gossip(n)["suspicions"] > suspicions0[n.index] for n in others), timeout=60)
            wait_for("a suspicion sent to the stopped node", lambda: any(
                n.workers()[sid]["fail_count"] >= 2 for n in others), timeout=60)
        finally:
            slow.proc.send_signal(signal.SIGCONT)
        wait_for("the node to hear itself suspected and refute",
                 lambda: gossip(slow)["refutations"] >= 1 and gossip(slow)["suspected"] >= 1)
        # the SYNCs it was sent while it stood still are answered now, late: each such answer
        # is a round-trip sample for the peer's deadline, not an unexpected reply
        wait_for("a late answer taken as a round-trip sample",
                 lambda: sum(gossip(n)["replies_late"] for n in others) >= 1)
        wait_for("its record version to grow", lambda: slow.status()["record_version"] > version0)
        converge(net)
        version1 = slow.status()["record_version"]
        wait_for("the refuting record on every node", lambda: all(
            n.workers()[sid]["version"] >= version1 for n in others))
        wait_for("no node to suspect it any more", lambda: all(
            n.workers()[sid]["fail_count"] == 0 for n in others))
        # removed nowhere: neither it by the others, nor the others by it
        assert removed(nodes) == removed0, (removed(nodes), removed0)
        for n in others:
            assert "removed worker %s" % sid[:12] not in n.log_text()
        assert "refuting with a newer record" in slow.log_text()


def test_killed_node_removed_after_suspicion():
    with Net(interval=200, extra=("--rate-limit", "off", "--max-failures", "3")) as net:
        nodes = net.start(6)
        converge(net)
        victim, others = nodes[5], nodes[:5]
        vid = victim.node_id
        removed0 = removed(others)
        victim.kill()
        wait_for("every other node to remove the killed node",
                 lambda: all(vid not in n.workers() for n in others), timeout=90)
        for n in others:
            g = gossip(n)
            assert g["workers_removed"] == removed0[n.index] + 1
            assert g["suspicions"] >= 1
            assert "removed worker %s" % vid[:12] in n.log_text()
        converge(net)


if __name__ == "__main__":
    run([test_suspects_do_not_multiply_a_round, test_slow_node_refutes,
         test_killed_node_removed_after_suspicion])
