"""All-reduce bus bandwidth: the runner's `allreduce` kind against `torch.distributed` called bare,
with the same sizes, ranks, backend (gloo on CPU), iterations and thread count. busbw as
nccl-tests define it, from the slowest rank's time. Target: harness / bare >= 0.95.

Default: interleaved. N rank processes in one gloo group run, per size and repetition, the kind's
measurement (`runner.kinds.allreduce.time_size`: a barrier, per-iteration timing) and a bare timed
loop of `dist.all_reduce`, a few all-reduces each, alternating which goes first; the ratio of the
summed times, and a control arm (the bare loop again) whose ratio to the bare one is the noise floor
of the machine at the time. On a shared machine this is the only fair comparison: both see the same load.
`--end-to-end`: `python -m runner.ranks` (the harness's aggregate) against separately launched bare
processes, rounds alternating; it includes the machine's load swings between launches.

    python benchmarks/allreduce_gloo.py [--ranks 4] [--reps 30] [--iterations 3]
    python benchmarks/allreduce_gloo.py --end-to-end --reps 3 --iterations 10
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


def bare_loop(size: int, warmup: int, iterations: int) -> float:
    """Seconds per all-reduce of `size` bytes (fp32): `dist.all_reduce` in a loop, timed whole."""
    import torch
    import torch.distributed as dist

    buffer = torch.ones(size // 4, dtype=torch.float32)
    for _ in range(warmup):
        dist.all_reduce(buffer)
    dist.barrier()
    t0 = time.perf_counter_ns()
    for _ in range(iterations):
        dist.all_reduce(buffer)
    return (time.perf_counter_ns() - t0) / iterations / 1e9


def slowest(seconds: float) -> float:
    import torch
    import torch.distributed as dist

    t = torch.tensor([seconds], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def interleaved(reps: int, warmup: int, iterations: int) -> None:
    """One rank of the interleaved comparison: per size a warm-up, then `reps` pairs of the kind's
    measurement and the bare loop, `iterations` all-reduces each, the order alternating; rank 0
    prints [[harness s, bare s, bare s] per size] per repetition (seconds per all-reduce, slowest
    rank); the second bare arm is the control."""
    import torch
    import torch.distributed as dist

    from runner.kinds.allreduce import time_size

    dist.init_process_group("gloo", init_method="env://")
    cpu = torch.device("cpu")

    def harness(size: int) -> float:
        durations = time_size(size, torch.float32, cpu, 0, iterations)
        return sum(durations) / len(durations) / 1e9

    for size in SIZES:
        bare_loop(size, warmup, 1)
    out = []
    arms = [harness, lambda size: bare_loop(size, 0, iterations), lambda size: bare_loop(size, 0, iterations)]
    for rep in range(reps):
        row = []
        for size in SIZES:
            # harness, bare, and bare again (the A/A control: the noise floor), in a rotating order
            times = [0.0, 0.0, 0.0]
            for k in range(3):
                arm = (rep + k) % 3
                times[arm] = slowest(arms[arm](size))
            row.append(times)
        out.append(row)
    if dist.get_rank() == 0:
        print(json.dumps(out), flush=True)
    dist.destroy_process_group()


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
    """Seconds per all-reduce, per size (the slowest rank's)."""
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--bare", "--warmup", str(warmup), "--iterations", str(iterations)],
            stdout=subprocess.PIPE,
            text=True,
            env=rank_env(r, ranks, port, dict(os.environ)),
        )
        for r in range(ranks)
    ]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"bare all-reduce failed: exit codes {[proc.returncode for proc in procs]}")
    return json.loads(outs[0])


def run_harness(ranks: int, warmup: int, iterations: int, work: Path) -> list[float]:
    """Seconds per all-reduce, per size, from the aggregate (the slowest rank's)."""
    spec = work / "allreduce.json"
    spec.write_text(
        json.dumps(
            {
                "name": "allreduce-bench",
                "kind": "allreduce",
                "config": {"sizes": SIZES, "warmup": warmup, "iterations": iterations},
            }
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner.ranks",
            "--ranks",
            str(ranks),
            "--config",
            str(spec),
            "--output-dir",
            str(work / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "KAIML_DEVICE": "cpu"},
        timeout=600,
    )
    if out.returncode:
        raise SystemExit(f"harness failed:\n{out.stderr}")
    total = json.loads((work / "out" / "aggregate.json").read_text())
    return [row["time_us"] / 1e6 for row in total["metrics"]["allreduce"]]


def spawn(ranks: int, args: list[str]) -> list[str]:
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *args],
            stdout=subprocess.PIPE,
            text=True,
            env=rank_env(r, ranks, port, dict(os.environ)),
        )
        for r in range(ranks)
    ]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"ranks failed: exit codes {[proc.returncode for proc in procs]}")
    return outs


def spread(ratios: list[float]) -> str:
    q = statistics.quantiles(ratios, n=4)
    return f"{q[0]:.2f}-{q[2]:.2f}"


def report(
    title: str, ranks: int, harness: list[list[float]], baseline: list[list[float]], control: list[list[float]] | None
) -> None:
    """Seconds per all-reduce per size, one list per repetition. The ratio is harness busbw / bare
    busbw over all repetitions together (bare time / harness time, summed; both bare arms pooled),
    so that a load swing hitting one repetition weighs on both sides; the control is one bare arm
    against the other, the noise floor."""
    print(title)
    print(
        f"  {'bytes':>10}  {'harness GB/s':>12}  {'bare GB/s':>10}  {'ratio':>6}  {'IQR':>9}"
        + ("  control (bare/bare)" if control else "")
    )
    worst = float("inf")
    for i, size in enumerate(SIZES):
        h = sum(r[i] for r in harness) / len(harness)
        # bare: both bare arms pooled when there is a control (each arm ran first as often)
        b = sum(r[i] for r in baseline + (control or [])) / len(baseline + (control or []))
        worst = min(worst, b / h)
        iqr = spread([br[i] / hr[i] for hr, br in zip(harness, baseline, strict=True)]) if len(harness) > 1 else ""
        line = (
            f"  {size:>10}  {stats.bus_bandwidth(size, h, ranks)[1]:>12.4f}  "
            f"{stats.bus_bandwidth(size, b, ranks)[1]:>10.4f}  {b / h:>6.3f}  {iqr:>9}"
        )
        if control:
            c = sum(r[i] for r in control) / len(control)
            b1 = sum(r[i] for r in baseline) / len(baseline)
            each = [br[i] / cr[i] for cr, br in zip(control, baseline, strict=True)]
            line += f"  {b1 / c:.3f} (IQR {spread(each)})"
        print(line)
    print(f"  target ratio >= 0.95: {'met' if worst >= 0.95 else 'MISSED'} (lowest {worst:.3f})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--reps", type=int, default=30, help="repetitions (launches with --end-to-end)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iterations", type=int, default=3, help="all-reduces per size and repetition")
    p.add_argument("--end-to-end", action="store_true")
    p.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--interleaved-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare:
        bare(SIZES, args.warmup, args.iterations)
        return 0
    if args.interleaved_worker:
        interleaved(args.reps, args.warmup, args.iterations)
        return 0
    # The launcher's thread split, for the baseline too.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // args.ranks)))
    t0 = time.monotonic()
    harness: list[list[float]] = []
    baseline: list[list[float]] = []
    control: list[list[float]] = []
    if args.end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.reps):  # which goes first alternates
                if rep % 2:
                    baseline.append(run_bare(args.ranks, args.warmup, args.iterations))
                harness.append(run_harness(args.ranks, args.warmup, args.iterations, Path(tmp)))
                if not rep % 2:
                    baseline.append(run_bare(args.ranks, args.warmup, args.iterations))
        how = f"end to end, {args.reps} alternating launches"
    else:
        out = spawn(
            args.ranks,
            [
                "--interleaved-worker",
                "--reps",
                str(args.reps),
                "--warmup",
                str(args.warmup),
                "--iterations",
                str(args.iterations),
            ],
        )
        for row in json.loads(out[0]):
            harness.append([t[0] for t in row])
            baseline.append([t[1] for t in row])
            control.append([t[2] for t in row])
        how = f"interleaved in one process group, {args.reps} repetitions"
    host = f"{time.monotonic() - t0:.0f} s, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    report(
        f"gloo all-reduce bus bandwidth, {args.ranks} local ranks, {args.iterations} iterations, {how}, "
        f"ratios of summed times ({host}):",
        args.ranks,
        harness,
        baseline,
        control or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
