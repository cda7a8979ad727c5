"""10,000 concurrent streaming connections held by several loadgen worker processes (issue 16).

loadgen's target (several processes sharing one listening socket) streams slowly — TTFT 2 s, one
token every 4 s, 8 tokens: about 30 s per request — so that every connection is open at once; the
concurrency ramps up over --ramp-up seconds (a burst of 10,000 connects overflows the accept
backlog). Each worker raises its own open-file limit (resource.setrlimit up to the hard limit).
Printed: the target's peak of simultaneously open streams, the run's accounting and errors, and the
workers' number. Target: peak = 10,000, no errors.

    .venv/bin/python benchmarks/loadgen_connections.py [--connections 10000] [--per-worker 2500]"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen_common import Target, load_average, run_loadgen


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--per-worker", type=int, default=2500, help="connections per worker process")
    p.add_argument("--ramp-up", type=float, default=20.0)
    p.add_argument("--target-processes", type=int, default=4)
    a = p.parse_args()
    target = Target(
        "--ttft-ms",
        "2000",
        "--itl-ms",
        "4000",
        "--output-tokens",
        "8",
        "--processes",
        str(a.target_processes),
        "--max-connections",
        str(a.connections + 1000),
    )
    print(f"cores {os.cpu_count()}, load average at start {load_average()}")
    try:
        s, wall = run_loadgen(
            target.url,
            "--streaming",
            "--concurrency",
            str(a.connections),
            "--requests",
            str(a.connections),
            "--connections-per-worker",
            str(a.per_worker),
            "--osl",
            "8",
            "--ramp-up",
            str(a.ramp_up),
        )
        stats = target.stats()
    finally:
        target.stop()
    acc = s["accounting"]
    print(f"workers {s['engine']['workers']}, record processors {s['engine']['record_processors']}, wall {wall:.0f} s")
    print(f"peak simultaneous streams at the target: {stats['peak_active']} of {a.connections}")
    print(f"sent {acc['sent']} = recorded {acc['recorded']} + errors {acc['errors']} (lost {acc['lost']})")
    print(
        f"TTFT p50 {s['time_to_first_token']['p50']:.0f} ms p99 {s['time_to_first_token']['p99']:.0f} ms "
        f"(configured 2000); ITL p50 {s['inter_token_latency']['p50']:.0f} ms (configured 4000)"
    )
    if s["error_summary"]:
        print("errors:", s["error_summary"][:3])
    print(f"load average at end {load_average()}")
    return 0 if acc["errors"] == 0 and acc["lost"] == 0 and stats["peak_active"] == a.connections else 1


if __name__ == "__main__":
    sys.exit(main())
