"""Training throughput through the runner (kind `train`: progress lines, per-step timing,
checkpoints into a real S3-compatible store) against the same training loop written bare, on CPU.

    python benchmarks/train_throughput.py [--rounds 3] [--image-size 64] [--steps-per-epoch 12] [--epochs 2]

Both train the same torchvision model (no weights) on the same generated data with the same
optimizer, batch size and deterministic kernels. The runner's figure is its own record's
`throughput` (samples / wall time of its loop, checkpoint uploads and progress lines included;
setup, the held-out evaluation and the final upload are outside the loop in both), and the same
samples over the loop's CPU time (`metrics.loopCpuSeconds`), which other processes on a shared host
do not inflate. Rounds alternate which goes first; the ratio is runner / bare per round, and the
median is reported.
Target: >= 0.97. The local object store (moto on 127.0.0.1) is started for the run."""

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from deploy.cluster.objectstore import LocalObjectStore
from runner.kinds import train as train_kind
from runner.training import data, models, spec


def config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "framework": "torchvision",
        "model": args.model,
        "dataset": "synthetic",
        "datasetArgs": {"samples": args.batch * args.steps_per_epoch, "classes": 10, "imageSize": args.image_size},
        "epochs": args.epochs,
        "batchSize": args.batch,
        "learningRate": 0.01,
        "seed": 0,
        # One checkpoint per epoch (the last step's is skipped: the final model is uploaded instead).
        "checkpointEvery": args.steps_per_epoch,
        "logEvery": 10,
    }


def bare(cfg: dict[str, Any]) -> tuple[float, float]:
    """The loop as one writes it without the runner: DataLoader, forward, loss, backward, step."""
    s = spec.parse(cfg)
    torch.manual_seed(s.seed)
    model = models.build(s.model, s.classes, s.model_args, s.framework, s.channels)
    optimizer = torch.optim.SGD(model.parameters(), lr=s.learning_rate, momentum=0.9)
    pairs = data.synthetic(s.samples, s.classes, s.channels, s.image_size, s.seed)
    batches = DataLoader(
        TensorDataset(pairs.inputs, pairs.labels),
        batch_size=s.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(s.seed),
    )
    loss_fn = nn.CrossEntropyLoss()
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        model.train()
        samples = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(s.epochs):
            for inputs, labels in batches:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(inputs), labels).backward()
                optimizer.step()
                samples += int(labels.shape[0])
        return samples / (time.perf_counter() - start), samples / (time.process_time() - cpu_start)
    finally:
        torch.use_deterministic_algorithms(before)


def through_runner(cfg: dict[str, Any], run: str) -> tuple[float, float]:
    """The record's throughput (wall time of the loop, checkpoint uploads included), and the same
    samples over the loop's CPU time (metrics.loopCpuSeconds)."""
    os.environ["KAIML_RUN_ID"] = run
    with contextlib.redirect_stdout(io.StringIO()):  # the progress lines: written, not shown
        m = train_kind.run(cfg)
    assert m.throughput is not None and m.metrics is not None
    samples = m.metrics["stepsRun"] * cfg["batchSize"]
    return m.throughput, samples / m.metrics["loopCpuSeconds"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="mobilenet_v3_small")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps-per-epoch", type=int, default=12)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: less noise on a shared host)")
    args = p.parse_args()
    os.environ["KAIML_DEVICE"] = "cpu"
    torch.set_num_threads(args.threads)
    cfg = config(args)
    s = spec.parse(cfg)
    print(
        f"{s.model}, batch {s.batch_size}, {s.image_size}x{s.image_size}, {s.epochs} x {s.steps_per_epoch} steps, "
        f"checkpoint every {s.checkpoint_every} steps; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    with LocalObjectStore() as store, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(store.env())
        os.environ["KAIML_OBJECTSTORE_CREDENTIALS_DIR"] = str(store.write_secret_dir(Path(tmp) / "secret"))
        bare(cfg)  # warm-up: first-use costs (oneDNN primitives, allocator) out of the rounds
        rows: list[tuple[float, float, float, float]] = []
        for i in range(args.rounds):
            if i % 2 == 0:
                (r, r_cpu), (b, b_cpu) = through_runner(cfg, f"bench-{os.getpid()}-{i}"), bare(cfg)
            else:
                (b, b_cpu), (r, r_cpu) = bare(cfg), through_runner(cfg, f"bench-{os.getpid()}-{i}")
            rows.append((r, b, r_cpu, b_cpu))
            print(
                f"round {i + 1}: wall: runner {r:7.1f} bare {b:7.1f} samples/s, ratio {r / b:.3f}   "
                f"CPU time: runner {r_cpu:7.1f} bare {b_cpu:7.1f} samples/s, ratio {r_cpu / b_cpu:.3f}"
            )
    r, b, r_cpu, b_cpu = (statistics.median(col) for col in zip(*rows, strict=True))
    ratio = statistics.median(row[0] / row[1] for row in rows)
    ratio_cpu = statistics.median(row[2] / row[3] for row in rows)
    print(
        f"median over {args.rounds} rounds (target: ratio >= 0.97):\n"
        f"  wall time: runner {r:.1f} samples/s, bare {b:.1f} samples/s, ratio {ratio:.3f}\n"
        f"  CPU time:  runner {r_cpu:.1f} samples/s, bare {b_cpu:.1f} samples/s, ratio {ratio_cpu:.3f} "
        "(robust to other processes on a shared host; leaves out waiting on the store)"
    )


if __name__ == "__main__":
    main()
