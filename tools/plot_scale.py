#!/usr/bin/python3
"""plot_scale.py: the README's scale figures from tools/sossim runs: rounds to full
membership and to spread a new room against N (with log2 N), bytes per node per round,
memory per simulated node and false removals at 5 % loss, as docs/scale.svg and a table.

Needs python3-matplotlib (Debian: apt-get install python3-matplotlib); CI does not run it.

    tools/plot_scale.py [--sossim build/sossim] [--nodes 100,1000,3000,10000] [--data docs/scale]
                        [--out docs/scale.svg] [--reuse]

Each N runs `sossim room` and `sossim loss --loss 0.05` (cheap signatures, seed 1) and keeps
their output in --data/N-room.txt and N-loss.txt, and the same two with --active-view (a
bounded view of connections) in N-room-view.txt and N-loss-view.txt; --reuse reads those
instead of running again (10,000 nodes take the better part of an hour on 2 cores).
--cheap-digest passes sossim's switch of that name: the same runs, with the digest hashes
kept as sums (README, Scale).
"""
import argparse
import math
import os
import subprocess
import sys


def run(sossim, args, path, reuse):
    if reuse and os.path.exists(path):
        with open(path) as f:
            text = f.read()
    elif reuse:
        return {}  # not run: left out of the table and the plot
    else:
        proc = subprocess.run([sossim] + args, capture_output=True, text=True)
        text = proc.stdout
        with open(path, "w") as f:
            f.write(text)
    figures = {}
    #  A run kept by hand says its command on a first "#" line; its --rounds is the loss rounds
    first = text.splitlines()[0] if text else ""
    if first.startswith("#") and "--rounds " in first:
        figures["loss_rounds"] = first.split("--rounds ")[1].split()[0]
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                figures[parts[0]] = float(parts[1])
            except ValueError:
                figures[parts[0]] = parts[1]
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sossim", default="build/sossim")
    ap.add_argument("--nodes", default="100,1000,3000,10000")
    ap.add_argument("--data", default="docs/scale")
    ap.add_argument("--out", default="docs/scale.svg")
    ap.add_argument("--loss-rounds", default="60")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--cheap-digest", action="store_true",
                    help="pass --cheap-digest to sossim (the same runs, cheaper at 10,000 nodes)")
    a = ap.parse_args()
    os.makedirs(a.data, exist_ok=True)
    rows, view_rows = [], []
    cheap = ["--cheap-digest"] if a.cheap_digest else []
    for n in [int(x) for x in a.nodes.split(",")]:
        for flags, suffix, out in (([], "", rows), (["--active-view"], "-view", view_rows)):
            room = run(a.sossim, ["room", "--nodes", str(n), "--cheap-crypto", "--seed", "1"] +
                       flags + cheap, os.path.join(a.data, "%d-room%s.txt" % (n, suffix)), a.reuse)
            loss = run(a.sossim, ["loss", "--nodes", str(n), "--loss", "0.05", "--cheap-crypto",
                                  "--seed", "1", "--rounds", a.loss_rounds] + flags + cheap,
                       os.path.join(a.data, "%d-loss%s.txt" % (n, suffix)), a.reuse)
            out.append((n, room, loss))

    print("| nodes | log2 N | rounds to full membership (after the last join) | rounds to spread a room "
          "| bytes/node/round at rest | while joining | memory per node | false removals at 5 % loss "
          "| connections at a node: most, mean |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, table in (("", rows), (" view", view_rows)):
        for n, room, loss in table:
            if not room:
                continue  # --reuse and not run
            conn = ("%d, %.1f" % (room["conn.max_at_a_node"], room["conn.mean_per_node"])
                    if "conn.max_at_a_node" in room else "%d, %d (one per worker)" % (n - 1, n - 1))
            lost = ("%d of %d in %s rounds" % (loss["loss.false_removals"], n,
                                                loss.get("loss_rounds", a.loss_rounds))
                    if "loss.false_removals" in loss else "not run")
            print("| %d%s | %.1f | %d (%d) | %d | %d | %d | %.0f KiB | %s | %s |" % (
                n, label, math.log2(n), room.get("join.rounds_full_membership", -1),
                room.get("join.rounds_after_last_join", -1), room.get("room.rounds_to_everyone", -1),
                room.get("bytes_per_node_round.rest", 0), room.get("bytes_per_node_round.changing", 0),
                room.get("memory_per_node.total", 0) / 1024, lost, conn))

    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "sossim"  # the same SVG for the same figures
    ns = [r[0] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(ns, [r[1].get("join.rounds_full_membership", float("nan")) for r in rows], "o-",
             label="join: every node lists every node (from the first join)")
    ax1.plot(ns, [r[1].get("join.rounds_after_last_join", float("nan")) for r in rows], "s-",
             label="... after the last join")
    ax1.plot(ns, [r[1].get("room.rounds_to_everyone", float("nan")) for r in rows], "^-",
             label="a new room reaches every node")
    vrows = [r for r in view_rows if r[1]]
    if vrows:
        vns = [r[0] for r in vrows]
        ax1.plot(vns, [r[1].get("join.rounds_full_membership", float("nan")) for r in vrows], "o--",
                 label="join, with a bounded active view (--active-view)")
        ax1.plot(vns, [r[1].get("room.rounds_to_everyone", float("nan")) for r in vrows], "^--",
                 label="a new room, with --active-view")
    ax1.plot(ns, [math.log2(n) for n in ns], "k:", label="log2 N")
    ax1.set_xscale("log")
    ax1.set_xlabel("nodes N")
    ax1.set_ylabel("gossip rounds")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=7)
    ax1.set_title("rounds against N (sossim, seed 1)", fontsize=9)
    ax2.plot(ns, [r[1].get("bytes_per_node_round.rest", float("nan")) for r in rows], "o-",
             label="bytes/node/round at rest")
    ax2.plot(ns, [r[1].get("bytes_per_node_round.changing", float("nan")) for r in rows], "s-",
             label="bytes/node/round while joining")
    ax2.plot(ns, [r[1].get("memory_per_node.total", float("nan")) for r in rows], "^-",
             label="memory per simulated node (bytes)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("nodes N")
    ax2.legend(fontsize=7)
    ax2.set_title("traffic and memory", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out, metadata={"Date": None})
    print("wrote %s" % a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
