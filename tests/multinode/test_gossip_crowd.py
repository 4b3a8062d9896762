"""test_gossip_crowd.py: thirty nodes gossiping every 50 ms on this machine, started all at
once, converge and then remove no live worker while they go on, also under the sanitizers.

Thirty processes on two cores at twenty rounds a second keep every loop late now and then,
and at the start every DEALER dials while its peer is still coming up: this is where a
failure detector that blames its peers for its own slowness, or counts a socket still
dialing once per round, removes live workers (PROTOCOL.md, "Failure detection"). The test
asserts the outcome, not a time: every node lists all thirty and none has removed a worker,
checked over forty rounds of every node. It prints the detector's counters, which say how
close the crowd came: suspicions raised and withheld, refutations, probes and the ones a
helper saved, sockets found down again."""

import os

from sosnet import Net, hold_for_rounds, run, wait_for

N = 30
COUNTERS = ("suspicions", "suspicions_withheld", "refutations", "probes", "probe_saves",
            "down_again", "health_late", "workers_removed")


def test_thirty_fast_nodes_remove_no_live_node():
    sanitized = "ASAN_OPTIONS" in os.environ  # tests/run_asan.sh
    with Net(interval=50, extra=("--rate-limit", "off")) as net:
        nodes = [net.add() for _ in range(N)]
        for n in nodes:  # together: the crowd dials before its peers are up
            n.start(wait=False)
        for n in nodes:
            wait_for("node %d to answer status" % n.index,
                     lambda: n.ctl("status", timeout_ms=2000), timeout=300)
        want = {n.node_id for n in nodes}

        def listed():
            return all(n.status()["workers"] == N for n in nodes)
        wait_for("%d nodes to list all %d" % (N, N), listed, timeout=900, interval=1.0)
        for n in nodes:
            assert set(n.workers()) == want, "node %d lists other workers" % n.index

        def all_listed_none_removed():
            bad = []
            for n in nodes:
                st = n.status()
                if st["workers"] != N or st["gossip"]["workers_removed"] != 0:
                    bad.append((n.index, st["workers"], st["gossip"]["workers_removed"]))
            if bad:
                print("(node, listed, removed): %s" % bad, flush=True)
            return not bad
        hold_for_rounds("%d nodes listing all and removing nobody" % N, all_listed_none_removed,
                        nodes, 40, timeout=900, interval=1.0)
        total = {k: 0 for k in COUNTERS}
        for n in nodes:
            g = n.status()["gossip"]
            for k in COUNTERS:
                total[k] += g[k]
        print("%d nodes at 50 ms%s: %s" % (N, " (sanitizers)" if sanitized else "", total),
              flush=True)
        assert total["workers_removed"] == 0


if __name__ == "__main__":
    run([test_thirty_fast_nodes_remove_no_live_node])
