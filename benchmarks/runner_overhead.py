"""The runner's timing against torch.utils.benchmark, and the runner's own overhead.

For each built-in model on the available device (CUDA when there is one, else CPU): the runner's
mean latency (runner.timing: CUDA events on GPU, perf_counter_ns on CPU) against
torch.utils.benchmark.Timer's on the very same callable, their ratio, and the runner's own cost
per iteration: an empty callable timed through the same loop, as a percentage of the model's mean.
Targets (issue 5): agreement within 5 %, overhead under 1 %.

    .venv/bin/python benchmarks/runner_overhead.py [--device cpu|cuda] [--precision fp16] [--check]

Each figure is the median over --rounds rounds, runner and Timer interleaved. --check exits 1 when
a target is missed."""

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.device import device_info
from runner.kinds.model_latency import LatencySpec, prepare
from runner.timing import time_iterations

AGREEMENT = 0.05
OVERHEAD = 0.01

# Sized for a few milliseconds per iteration: on a GPU the sweeps' sizes, on a CPU smaller ones.
MODELS = {
    "cuda": [
        LatencySpec("mlp", 256, (1024,), model_args={"hidden": 4096, "layers": 3}),
        LatencySpec("cnn", 32, (3, 224, 224)),
        LatencySpec("transformer", 32, (128, 512), model_args={"heads": 8, "layers": 2}),
    ],
    "cpu": [
        LatencySpec("mlp", 32, (1024,), model_args={"hidden": 1024, "layers": 3}),
        LatencySpec("cnn", 4, (3, 64, 64)),
        LatencySpec("transformer", 4, (64, 256), model_args={"heads": 8}),
    ],
}


def measure(spec: LatencySpec, device: torch.device, iterations: int, min_run_time: float) -> dict[str, float]:
    forward = prepare(spec, device)
    timer = benchmark.Timer(stmt="forward()", globals={"forward": forward}, num_threads=torch.get_num_threads())
    with torch.inference_mode():
        ns = time_iterations(forward, device, warmup=max(10, iterations // 10), iterations=iterations)
        runner_ms = statistics.fmean(ns) / 1e6
        reference_ms = timer.blocked_autorange(min_run_time=min_run_time).mean * 1e3
        empty_ns = time_iterations(lambda: None, device, warmup=100, iterations=max(iterations, 1000))
    overhead_ms = statistics.fmean(empty_ns) / 1e6
    return {"runner_ms": runner_ms, "reference_ms": reference_ms, "overhead_ms": overhead_ms}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds of torch.utils.benchmark per round")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args()

    device = torch.device(args.device)
    info = device_info(device)
    print(
        f"device: {info['gpu'] or info['cpu']} ({device.type}, torch {info['torch']}, CUDA {info['cuda']}, "
        f"driver {info['driver']}, {info['cpu_threads']} threads), precision {args.precision}, "
        f"{args.iterations} iterations x {args.rounds} rounds"
    )
    header = f"{'model':<12}{'runner ms':>11}{'t.u.bench ms':>14}{'ratio':>8}{'overhead':>10}  verdict"
    print(header)
    print("-" * len(header))
    rows, ok = [], True
    for base in MODELS[device.type]:
        spec = LatencySpec(**{**base.__dict__, "precision": args.precision})
        rounds = [measure(spec, device, args.iterations, args.min_run_time) for _ in range(args.rounds)]
        row = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        row["ratio"] = statistics.median(r["runner_ms"] / r["reference_ms"] for r in rounds)
        row["overhead"] = row["overhead_ms"] / row["runner_ms"]
        good = abs(row["ratio"] - 1) <= AGREEMENT and row["overhead"] < OVERHEAD
        ok &= good
        shape = "x".join(map(str, (spec.batch_size, *spec.input_shape)))
        rows.append({"model": spec.model, "shape": shape, **row, "ok": good})
        print(
            f"{spec.model:<12}{row['runner_ms']:>11.4f}{row['reference_ms']:>14.4f}{row['ratio']:>8.3f}"
            f"{row['overhead']:>9.3%}  {'ok' if good else 'MISS'} ({shape})"
        )
    print(f"targets: |ratio - 1| <= {AGREEMENT:.0%}, overhead < {OVERHEAD:.0%}: {'all met' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({"device": info, "precision": args.precision, "models": rows}, indent=2))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
