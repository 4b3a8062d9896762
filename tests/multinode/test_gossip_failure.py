"""test_gossip_failure.py: failure detection and removal. A worker killed with SIGKILL is
removed by every other node after --max-failures failed exchanges, stays removed although
stale copies of its record are offered again (its tombstone refuses them), and is back
everywhere once it restarts with its store. A genesis node is never removed, only retried,
and is healthy again after a restart. A node stopped with SIGTERM exits 0 and says LEAVE,
so its peers remove it without waiting for failures."""

import shutil
import signal
import time

from sosnet import Net, hold_for_rounds, run, wait_for
import soswire as w

MAX_FAILURES = 3


def failure_net(max_failures=MAX_FAILURES):
    return Net(interval=200, extra=("--rate-limit", "off", "--max-failures", str(max_failures)))


def gossip(node):
    return node.status()["gossip"]


def converge(net):
    wait_for("%d nodes to converge" % len(net.nodes), net.converged)


def test_dead_worker_removed_and_stays_removed():
    with failure_net() as net:
        nodes = net.start(5)
        converge(net)
        victim, others = nodes[4], nodes[:4]
        vid = victim.node_id
        version = others[0].workers()[vid]["version"]
        removed0 = {n.index: gossip(n)["workers_removed"] for n in others}

        victim.kill()
        wait_for("every other node to remove the killed worker",
                 lambda: all(vid not in n.workers() for n in others), timeout=90)
        for n in others:
            g = gossip(n)
            assert g["workers_removed"] == removed0[n.index] + 1, \
                "node %d: workers_removed %d" % (n.index, g["workers_removed"])
            assert g["exchanges_failed"] >= 1
            assert set(n.workers()) == {m.node_id for m in others}

        # Offer each node the victim's last record again, as a peer that missed the removal
        # would: signed by the victim (its key is in its data directory), no newer than the
        # removal. The tombstone refuses it.
        ident = w.Identity.from_data_dir(victim.data)
        assert ident.hex == vid
        stale = w.worker_record(ident, version, victim.endpoint)
        relay = w.Identity()
        tomb0 = {n.index: gossip(n)["merge_tombstoned"] for n in others}
        for n in others:
            with w.Conn(n.endpoint) as conn:
                conn.send(w.envelope(relay, w.RUMOR, w.gmsg(records=[stale]), receiver=n.node_id))
                # and in an anti-entropy batch
                conn.send(w.envelope(relay, w.DELTA, w.gmsg(req_id=1, records=[stale]),
                                     receiver=n.node_id))
                assert conn.recv(timeout=20) is not None, "no DELTA_ACK"
        wait_for("the stale copies refused by the tombstone", lambda: all(
            gossip(n)["merge_tombstoned"] >= tomb0[n.index] + 2 for n in others))

        # it stays removed while the others gossip for 20 more rounds
        hold_for_rounds("the killed worker stays removed",
                        lambda: all(vid not in n.workers() for n in others), others, 20)
        for n in others:
            assert gossip(n)["workers_removed"] == removed0[n.index] + 1

        # restarted with its store (same id), it signs a newer record and is back everywhere
        victim.start()
        assert victim.node_id == vid
        assert victim.status()["record_version"] > version
        wait_for("the restarted worker back on every node",
                 lambda: all(vid in n.workers() for n in others))
        converge(net)
        wait_for("exchanges with it succeed again", lambda: all(
            n.workers()[vid]["fail_count"] == 0 for n in others))


def test_frozen_worker():
    """A worker that stops answering without closing its connections (SIGSTOP: exchanges
    time out instead of failing to send) is removed the same way, and is back everywhere
    when it thaws (SIGCONT) and talks to the others again."""
    with failure_net() as net:
        nodes = net.start(5)
        converge(net)
        frozen, others = nodes[3], [n for n in nodes if n is not nodes[3]]
        fid = frozen.node_id
        removed0 = {n.index: gossip(n)["workers_removed"] for n in others}
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for("every other node to remove the frozen worker",
                     lambda: all(fid not in n.workers() for n in others), timeout=90)
            for n in others:
                assert gossip(n)["workers_removed"] == removed0[n.index] + 1
                assert "removed worker %s" % fid[:12] in n.log_text()
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        wait_for("the thawed worker back on every node",
                 lambda: all(fid in n.workers() for n in others))
        converge(net)
        wait_for("exchanges with it succeed again", lambda: all(
            n.workers()[fid]["fail_count"] == 0 for n in others))


def test_new_identity_at_old_endpoint():
    """A worker replaced at the same endpoint by a node with a new identity (its data
    directory lost): the old one is removed, the new one is gossiped with, and its own
    failure is detected like anyone's."""
    with failure_net() as net:
        nodes = net.start(4)
        converge(net)
        old, others = nodes[3], nodes[:3]
        old_id = old.node_id
        old.kill()
        shutil.rmtree(old.data)
        replaced_ms = time.time() * 1000
        old.start()
        new_id = old.node_id
        assert new_id != old_id
        wait_for("the old identity removed and the new one listed everywhere", lambda: all(
            old_id not in n.workers() and new_id in n.workers() for n in others))
        wait_for("every node exchanging with the new identity", lambda: all(
            n.workers()[new_id]["last_ok"] >= replaced_ms for n in others))
        converge(net)

        removed0 = {n.index: gossip(n)["workers_removed"] for n in others}
        old.kill()
        wait_for("every other node to remove the new identity once it is killed",
                 lambda: all(new_id not in n.workers() for n in others), timeout=90)
        for n in others:
            assert gossip(n)["workers_removed"] == removed0[n.index] + 1


def test_genesis_never_removed():
    with failure_net() as net:
        nodes = net.start(5)
        converge(net)
        genesis, others = nodes[0], nodes[1:]
        gid = genesis.node_id
        removed0 = {n.index: gossip(n)["workers_removed"] for n in others}

        genesis.kill()
        # more failures than would remove any other worker, and still listed as genesis
        wait_for("every node to count more than %d failures of the genesis" % MAX_FAILURES,
                 lambda: all(n.workers()[gid]["fail_count"] > MAX_FAILURES for n in others),
                 timeout=90)
        for n in others:
            g = n.workers()[gid]
            assert g["is_genesis"] is True and g["url"] == genesis.endpoint
            assert gossip(n)["workers_removed"] == removed0[n.index]
        # the others still gossip among themselves without it
        hold_for_rounds("the genesis stays listed",
                        lambda: all(gid in n.workers() for n in others), others, 10)
        assert all(set(n.workers()) == {m.node_id for m in nodes} for n in others)
        assert all(n.workers()[m.node_id]["fail_count"] == 0
                   for n in others for m in others if m is not n)

        genesis.start()
        assert genesis.node_id == gid
        wait_for("the genesis healthy again on every node", lambda: all(
            n.workers()[gid]["fail_count"] == 0 for n in others), timeout=90)
        converge(net)

        # stopped with SIGTERM, a genesis node is not removed on its LEAVE either
        assert genesis.stop() == 0
        wait_for("every node to mark the leaving genesis as failing",
                 lambda: all(n.workers()[gid]["fail_count"] > 0 for n in others))
        for n in others:
            assert n.workers()[gid]["is_genesis"] is True
            assert gossip(n)["workers_removed"] == removed0[n.index]
        genesis.start()
        wait_for("the genesis healthy again after SIGTERM", lambda: all(
            n.workers()[gid]["fail_count"] == 0 for n in others), timeout=90)
        converge(net)


def test_sigterm_leaves():
    # max-failures at its ceiling: failures alone cannot remove anyone in this test, so a
    # removal can only come from the LEAVE
    with failure_net(max_failures=1000) as net:
        nodes = net.start(4)
        converge(net)
        leaver, others = nodes[3], nodes[:3]
        lid = leaver.node_id
        removed0 = {n.index: gossip(n)["workers_removed"] for n in others}

        assert leaver.stop() == 0, "SIGTERM must exit 0"
        assert "stopping: telling peers" in leaver.log_text()
        wait_for("peers to remove the leaving node",
                 lambda: all(lid not in n.workers() for n in others))
        for n in others:
            assert gossip(n)["workers_removed"] == removed0[n.index] + 1
            assert "removed worker %s at %s: it is leaving" % (lid[:12], leaver.endpoint) \
                in n.log_text()
        hold_for_rounds("the leaving node stays removed",
                        lambda: all(lid not in n.workers() for n in others), others, 10)

        leaver.start()
        wait_for("the node back after a restart",
                 lambda: all(lid in n.workers() for n in others))
        converge(net)


if __name__ == "__main__":
    run([test_dead_worker_removed_and_stays_removed, test_frozen_worker,
         test_new_identity_at_old_endpoint,
         test_genesis_never_removed,
         test_sigterm_leaves])
