"""The training loop of kind `train`: seeded, deterministic on CPU, checkpointed every
`checkpointEvery` steps, resumed from the store's latest checkpoint.

Exact resume: everything that decides a step's result is either a function of the config (data,
batch order per epoch) or in the checkpoint (weights, optimizer state, step/epoch/batch position,
RNG states, the running epoch loss). On CPU `torch.use_deterministic_algorithms(True)` is on, so a
run killed after a checkpoint and started again ends with bitwise the same weights as one that ran
through (same machine, same torch, same thread count). At most `checkpointEvery` steps are redone."""

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from runner import progress
from runner.errors import ConfigError
from runner.training import checkpoint, data, models
from runner.training.checkpoint import Position
from runner.training.spec import TrainSpec
from runner.training.store import RunStore

log = logging.getLogger("runner")
Emit = Callable[..., None]


@dataclass
class Outcome:
    durations_ns: list[int]
    samples: int
    seconds: float
    metrics: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)


@contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on CPU for the run, the caller's setting back afterwards (the runner's
    tests call kinds in one process)."""
    before = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def optimizer_for(spec: TrainSpec, model: nn.Module) -> torch.optim.Optimizer:
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=spec.learning_rate)
    return torch.optim.SGD(model.parameters(), lr=spec.learning_rate, momentum=0.9)


def setup(spec: TrainSpec, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer, data.TensorPairs]:
    """Seeds, then the model (its initialisation draws from the seeded RNG), optimizer and data:
    the same for a fresh run, a resumed one and benchmarks/train_throughput.py's bare loop."""
    seed_everything(spec.seed)
    model = models.build(spec.model, spec.classes, spec.model_args, spec.framework, spec.channels).to(device)
    dataset = data.synthetic(spec.samples, spec.classes, spec.channels, spec.image_size, spec.seed)
    return model, optimizer_for(spec, model), dataset


@torch.no_grad()
def accuracy(model: nn.Module, spec: TrainSpec, device: torch.device) -> float:
    """Top-1 accuracy on a held-out set of the same classes."""
    held = data.synthetic(
        max(spec.classes * 8, spec.samples // 4), spec.classes, spec.channels, spec.image_size, spec.seed, split=1
    )
    model.eval()
    right = 0
    for start in range(0, len(held), spec.batch_size):
        x = held.inputs[start : start + spec.batch_size].to(device)
        y = held.labels[start : start + spec.batch_size].to(device)
        right += int((model(x).argmax(dim=1) == y).sum().item())
    model.train()
    return right / len(held)


def train(spec: TrainSpec, device: torch.device, store: RunStore, emit: Emit = progress.emit) -> Outcome:
    with deterministic(device):
        return _train(spec, device, store, emit)


def _train(spec: TrainSpec, device: torch.device, store: RunStore, emit: Emit) -> Outcome:
    model, optimizer, dataset = setup(spec, device)
    sampler = data.EpochBatchSampler(len(dataset), spec.batch_size, spec.seed)
    batches = data.loader(dataset, sampler)
    position, epoch_loss = Position(), 0.0
    saved = store.latest()
    if saved is not None:
        state = checkpoint.load(saved.payload)
        if state["digest"] != spec.digest:
            raise ConfigError(
                "KAIML_RUN_ID",
                f"{store.base} holds checkpoints of another config; give this run its own KAIML_RUN_ID",
            )
        position, epoch_loss = checkpoint.restore(state, model, optimizer)
        log.info("resuming from %s (step %d of %d)", saved.key, position.step, spec.total_steps)
    resumed_from = position.step
    emit(
        "start", step=position.step, epoch=position.epoch, totalSteps=spec.total_steps, resumedFrom=saved and saved.key
    )

    loss_fn = nn.CrossEntropyLoss()
    durations: list[int] = []
    checkpoint_seconds = 0.0
    last_key = saved.key if saved else None
    window_start, window_samples = time.perf_counter(), 0
    started, cpu_started = time.perf_counter(), time.process_time()
    model.train()
    for epoch in range(position.epoch, spec.epochs):
        sampler.set_epoch(epoch, position.batch)
        for inputs, labels in batches:
            t0 = time.perf_counter_ns()
            inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), labels)
            loss.backward()
            optimizer.step()
            value = loss.item()  # synchronises on CUDA: step times are real, not launch times
            durations.append(time.perf_counter_ns() - t0)
            epoch_loss += value
            position.step += 1
            position.batch += 1
            window_samples += int(labels.shape[0])
            if position.step % spec.log_every == 0:
                now = time.perf_counter()
                emit(
                    "step",
                    epoch=epoch,
                    step=position.step,
                    totalSteps=spec.total_steps,  # a follower reading only the log's last lines has the total too
                    loss=round(value, 6),
                    samplesPerSec=round(window_samples / max(now - window_start, 1e-9), 1),
                )
                window_start, window_samples = now, 0
            if position.step % spec.checkpoint_every == 0 and position.step < spec.total_steps:
                t = time.perf_counter()
                payload = checkpoint.dump(spec.digest, model, optimizer, position, epoch_loss)
                last_key = store.save(position.step, payload, last_key)
                checkpoint_seconds += time.perf_counter() - t
                emit("checkpoint", step=position.step, key=last_key)
        position.losses.append(epoch_loss / max(position.batch, 1))
        emit("epoch", epoch=epoch, step=position.step, loss=round(position.losses[-1], 6))
        position.epoch, position.batch, epoch_loss = epoch + 1, 0, 0.0
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    steps_run = position.step - resumed_from
    samples = _samples_run(spec, resumed_from, position.step)
    metrics: dict[str, Any] = {
        "epochs": spec.epochs,
        "steps": position.step,
        "stepsRun": steps_run,
        "resumedFromStep": resumed_from,
        "epochLoss": [round(v, 6) for v in position.losses],
        "finalLoss": round(position.losses[-1], 6),
        "heldoutAccuracy": round(accuracy(model, spec, device), 4),
        "samplesPerSec": round(samples / seconds, 2) if seconds > 0 else None,
        "checkpointSeconds": round(checkpoint_seconds, 3),
        # Wall and CPU time of the loop: far apart when the host is shared (other processes' load).
        "loopSeconds": round(seconds, 3),
        "loopCpuSeconds": round(cpu_seconds, 3),
        "weightsSha256": checkpoint.weights_digest(model),
    }
    artifacts = store.upload_final(checkpoint.weights_bytes(model), metrics)
    artifacts = {"bucket": store.bucket, **artifacts}
    if last_key:
        artifacts["checkpoint"] = last_key
    emit("done", step=position.step, loss=metrics["finalLoss"], accuracy=metrics["heldoutAccuracy"])
    return Outcome(durations_ns=durations, samples=samples, seconds=seconds, metrics=metrics, artifacts=artifacts)


def _samples_run(spec: TrainSpec, first: int, last: int) -> int:
    """Samples in global steps first+1..last (the last batch of an epoch may be short)."""
    per = spec.steps_per_epoch
    tail = spec.samples - (per - 1) * spec.batch_size
    return sum(tail if step % per == 0 else spec.batch_size for step in range(first + 1, last + 1))
