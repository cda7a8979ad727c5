"""All-reduce bus bandwidth: the runner's `allreduce` kind through `python -m runner.ranks` (the
harness) against `torch.distributed` called bare, with the same sizes, ranks, backend (gloo on
CPU), iterations and thread count. Rounds alternate harness and bare, so both see the same load;
per size the median of the rounds. busbw as nccl-tests define it, from the slowest rank's time.
Target: harness / bare >= 0.95.

    python benchmarks/allreduce_gloo.py [--ranks 4] [--rounds 3] [--iterations 20]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner import stats  # noqa: E402
from runner.ranks import free_port, rank_env  # noqa: E402

SIZES = [65536, 1 << 20, 4 << 20, 16 << 20]


def bare(sizes: list[int], warmup: int, iterations: int) -> None:
    """One rank of the bare baseline: init, then per size a timed loop of all_reduce."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="env://")
    out = []
    for size in sizes:
        buffer = torch.ones(size // 4, dtype=torch.float32)
        for _ in range(warmup):
            dist.all_reduce(buffer)
        dist.barrier()
        t0 = time.perf_counter_ns()
        for _ in range(iterations):
            dist.all_reduce(buffer)
        seconds = torch.tensor([(time.perf_counter_ns() - t0) / iterations / 1e9], dtype=torch.float64)
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # the slowest rank, as the harness's aggregate
        out.append(seconds.item())
    if dist.get_rank() == 0:
        print(json.dumps(out), flush=True)
    dist.destroy_process_group()


def run_bare(ranks: int, warmup: int, iterations: int) -> list[float]:
    port = free_port()
    procs = [
        subprocess.Popen([sys.executable, __file__, "--bare", "--warmup", str(warmup), "--iterations",
                          str(iterations)], stdout=subprocess.PIPE, text=True,
                         env=rank_env(r, ranks, port, dict(os.environ)))
        for r in range(ranks)
    ]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"bare all-reduce failed: exit codes {[proc.returncode for proc in procs]}")
    return [stats.bus_bandwidth(size, s, ranks)[1] for size, s in zip(SIZES, json.loads(outs[0]), strict=True)]


def run_harness(ranks: int, warmup: int, iterations: int, work: Path) -> list[float]:
    spec = work / "allreduce.json"
    spec.write_text(json.dumps({"name": "allreduce-bench", "kind": "allreduce", "config": {
        "sizes": SIZES, "warmup": warmup, "iterations": iterations}}))
    out = subprocess.run(
        [sys.executable, "-m", "runner.ranks", "--ranks", str(ranks), "--config", str(spec), "--output-dir",
         str(work / "out")], cwd=REPO, capture_output=True, text=True, env={**os.environ, "KAIML_DEVICE": "cpu"},
        timeout=600,
    )
    if out.returncode:
        raise SystemExit(f"harness failed:\n{out.stderr}")
    total = json.loads((work / "out" / "aggregate.json").read_text())
    return [row["busbw_gbps"] for row in total["metrics"]["allreduce"]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare:
        bare(SIZES, args.warmup, args.iterations)
        return 0
    # The launcher's thread split, for the baseline too.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // args.ranks)))
    harness, baseline = [], []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            harness.append(run_harness(args.ranks, args.warmup, args.iterations, Path(tmp)))
            baseline.append(run_bare(args.ranks, args.warmup, args.iterations))
    print(f"gloo all-reduce bus bandwidth, {args.ranks} local ranks, {args.iterations} iterations, median of "
          f"{args.rounds} alternating rounds ({time.monotonic() - t0:.0f} s, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs):")
    print(f"  {'bytes':>10}  {'harness GB/s':>12}  {'bare GB/s':>10}  {'ratio':>6}  (per-round ratios)")
    worst = float("inf")
    for i, size in enumerate(SIZES):
        h = statistics.median(r[i] for r in harness)
        b = statistics.median(r[i] for r in baseline)
        rounds = " ".join(f"{hr[i] / br[i]:.3f}" for hr, br in zip(harness, baseline, strict=True))
        worst = min(worst, h / b)
        print(f"  {size:>10}  {h:>12.4f}  {b:>10.4f}  {h / b:>6.3f}  ({rounds})")
    print(f"  target ratio >= 0.95: {'met' if worst >= 0.95 else 'MISSED'} (lowest {worst:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
