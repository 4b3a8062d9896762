"""test_gossip_view.py: the bounded active view. 16 nodes with fanout 2 (a view of at most
2 + round(ln 16) = 5 peers, well below the 15 others) all come to list all, while no node
ever holds more gossip connections than its view's cap plus the short-lived limit, as its
`status` reports them; a node killed with SIGKILL is still removed by every other node
(those that did not hold it in their view probe it over short-lived connections once others
name it a suspect), and the bound holds throughout. A node that connected to every worker
it lists holds 15 connections here, and fails the bound."""

from sosnet import Net, hold_for_rounds, run, wait_for

N = 16
FANOUT = 2


def gossip(node):
    return node.status()["gossip"]


def bounded(node, seen):
    """Check node's connections against its bounds; remember the most seen at once."""
    g = gossip(node)
    view, short = g["connections_view"], g["connections_short"]
    cap, short_max = g["view_cap"], g["connections_short_max"]
    assert g["view_size"] == view <= cap, g
    # no rooms, so no connection is held for a forward: every open one is counted
    assert g["connections_open"] == view + short, g
    assert view + short <= cap + short_max, "node %d: %d + %d connections, cap %d + %d" % (
        node.index, view, short, cap, short_max)
    seen[node.index] = max(seen.get(node.index, 0), view + short)
    return True


def test_bounded_view_converges_and_removes_the_dead():
    extra = ("--rate-limit", "off", "--fanout", str(FANOUT), "--max-failures", "3")
    with Net(interval=200, extra=extra) as net:
        nodes = net.start(N)
        seen = {}
        wait_for("%d nodes to converge" % N, net.converged, timeout=180)
        for n in nodes:
            g = gossip(n)
            # the bound must be below N - 1, or this test shows nothing
            assert g["view_cap"] + g["connections_short_max"] < N - 1, g
            assert g["view_size"] >= 1, g
        hold_for_rounds("the connections stay bounded",
                        lambda: all(bounded(n, seen) for n in nodes), nodes, 10)
        # The view opened fewer connections than the directory has workers, and some rounds
        # went outside it (short-lived connections, opened and closed).
        for n in nodes:
            g = gossip(n)
            assert g["exchanges_outside"] > 0 or g["short_opened"] > 0, g
            assert g["short_closed"] <= g["short_opened"], g

        victim = nodes[7]
        vid = victim.node_id
        others = [n for n in nodes if n is not victim]
        victim.kill()
        wait_for("every other node to remove the killed node",
                 lambda: all(bounded(n, seen) and vid not in n.workers() for n in others),
                 timeout=180)
        wait_for("the others to agree", lambda: net.converged(others), timeout=60)
        hold_for_rounds("the connections stay bounded",
                        lambda: all(bounded(n, seen) for n in others), others, 5)
        print("most gossip connections seen at a node: %s" % max(seen.values()))


if __name__ == "__main__":
    run([test_bounded_view_converges_and_removes_the_dead])
