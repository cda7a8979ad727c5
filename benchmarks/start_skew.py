"""Start skew of the runner's start barrier (runner/barrier.py) across N local rank processes.

Each rank process joins the run as `python -m runner.ranks` would start it (RANK, WORLD_SIZE,
MASTER_ADDR=127.0.0.1, MASTER_PORT) and passes the start barrier ROUNDS times; at each round every
rank records the wall time at which it actually started. Skew of a round = max - min over the
ranks (one machine: one clock, so no clock offset in it). Target: p99 <= 10 ms.

    python benchmarks/start_skew.py [--ranks 4] [--rounds 100] [--lead-ms 100]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner import stats, world
from runner.ranks import free_port, rank_env


def worker(rounds: int) -> None:
    with world.joined(world.from_env()) as session:
        starts = [session.start_together() for _ in range(rounds)]
    print(json.dumps(starts), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--lead-ms", type=float, default=100.0)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.rounds)
        return 0
    port = free_port()
    base = {**os.environ, "KAIML_START_LEAD_MS": str(args.lead_ms)}
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", "--rounds", str(args.rounds)],
            stdout=subprocess.PIPE,
            text=True,
            env=rank_env(r, args.ranks, port, base),
        )
        for r in range(args.ranks)
    ]
    outs = [json.loads(proc.communicate(timeout=600)[0]) for proc in procs]
    skews_ms = sorted((max(col) - min(col)) / 1e6 for col in zip(*outs, strict=True))
    p50, p99 = stats.percentile(skews_ms, 50), stats.percentile(skews_ms, 99)
    print(
        f"start skew across {args.ranks} local ranks, {args.rounds} barriers, lead {args.lead_ms:g} ms "
        f"({time.monotonic() - t0:.1f} s, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):"
    )
    print(f"  p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {skews_ms[-1]:.3f} ms  min {skews_ms[0]:.3f} ms")
    print(f"  target p99 <= 10 ms: {'met' if p99 <= 10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
