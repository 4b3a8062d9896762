"""test_gossip_crowd.py: thirty nodes gossiping every 50 ms on this machine, started all at
once, converge and then remove no live worker while they go on, also under the sanitizers.

Thirty processes on two cores at twenty rounds a second keep every loop late now and then,
and at the start every DEALER dials while its peer is still coming up: this is where a
failure detector that blames its peers for its own slowness, or counts a socket still
dialing once per round, removes live workers (PROTOCOL.md, "Failures, removal,
tombstones"). The test asserts the outcome, not a time: every node lists all thirty and none
has removed a worker, checked until every node has run 200 more rounds. It prints the
detector's counters, which say how close the crowd came: suspicions raised and withheld,
refutations, probes and the ones a helper saved, sockets found down again, and the nodes'
health.

The nodes are asked in parallel: a node of the crowd answers `status` in seconds under the
sanitizers (its loop runs late throughout, health at its ceiling, so that there it withholds
nearly every failure and the run is the sanitizers' check of the crowd's code paths)."""

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from sosnet import CtlError, Net, run, wait_for

N = 30
ROUNDS = 200  # ten seconds of rounds on time; many more seconds in the crowd
COUNTERS = ("suspicions", "suspicions_withheld", "refutations", "probes", "probe_saves",
            "down_again", "health_late", "workers_removed")


def test_thirty_fast_nodes_remove_no_live_node():
    sanitized = "ASAN_OPTIONS" in os.environ  # tests/run_asan.sh
    with Net(interval=50, extra=("--rate-limit", "off")) as net, \
            ThreadPoolExecutor(max_workers=N) as pool:
        nodes = [net.add() for _ in range(N)]
        for n in nodes:  # together: the crowd dials before its peers are up
            n.start(wait=False)

        def statuses():
            return list(pool.map(lambda n: n.ctl("status", timeout_ms=20000), nodes))
        wait_for("%d nodes to answer status" % N, statuses, timeout=300, interval=1.0)
        want = {n.node_id for n in nodes}
        wait_for("%d nodes to list all %d" % (N, N),
                 lambda: all(st["workers"] == N for st in statuses()), timeout=900, interval=1.0)
        for n, listed in zip(nodes, pool.map(lambda n: set(n.workers()), nodes)):
            assert listed == want, "node %d lists other workers" % n.index

        # Every check asserts; only a status that did not come (a timeout) is asked again.
        start = None
        checks = 0
        deadline = time.monotonic() + 900
        while True:
            try:
                sts = statuses()
            except (CtlError, subprocess.TimeoutExpired) as e:
                assert time.monotonic() < deadline, "no status within the deadline: %r" % e
                continue
            bad = [(n.index, st["workers"], st["gossip"]["workers_removed"])
                   for n, st in zip(nodes, sts)
                   if st["workers"] != N or st["gossip"]["workers_removed"] != 0]
            assert not bad, "(node, listed, removed) after %d checks: %s" % (checks, bad)
            checks += 1
            rounds = [st["gossip"]["rounds"] for st in sts]
            start = start or rounds
            if all(r >= s + ROUNDS for r, s in zip(rounds, start)):
                break
            assert time.monotonic() < deadline, "%d rounds not run within 900 s" % ROUNDS
            time.sleep(1.0)
        total = {k: sum(st["gossip"][k] for st in sts) for k in COUNTERS}
        total["health_max"] = max(st["gossip"]["health"] for st in sts)
        print("%d nodes at 50 ms%s, %d checks: %s" % (
            N, " (sanitizers)" if sanitized else "", checks, total), flush=True)


if __name__ == "__main__":
    run([test_thirty_fast_nodes_remove_no_live_node])
