"""Cached start-up time of the local control plane to a Ready cluster (API answering, every
fake node Ready, default ServiceAccount made), and the memory its processes hold.

    .venv/bin/python benchmarks/cluster_startup.py [--env dev] [--runs 3]
"""

import argparse
import statistics
import time

from deploy.cluster.controlplane import LocalCluster
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="dev")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pools = node_pools(load_environment(args.env))
    cluster = LocalCluster("kaiml-bench")
    times, rss = [], []
    for run in range(args.runs):
        cluster.down()
        start = time.monotonic()
        cluster.up(pools, log=lambda _m: None, build=False)
        times.append(time.monotonic() - start)
        time.sleep(5)  # let the controllers settle before reading memory
        usage = cluster.memory_rss()
        rss.append(sum(usage.values()))
        print(
            f"run {run + 1}: ready in {times[-1]:.2f}s, RSS {rss[-1] / 2**20:.0f} MiB "
            + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sorted(usage.items()))
        )
    cluster.down()
    nodes = sum(p.test_nodes for p in pools.values())
    print(
        f"env {args.env}: {nodes} fake nodes; start-up to Ready median {statistics.median(times):.2f}s "
        f"(min {min(times):.2f}s, max {max(times):.2f}s); "
        f"control-plane RSS median {statistics.median(rss) / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
