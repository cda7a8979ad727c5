"""Kind `ddp-step` (distributed mode): the throughput of one data-parallel training step, a
built-in model wrapped in DistributedDataParallel across the ranks' process group (gloo on CPU,
nccl on CUDA). Run it at 1, 2, 4... ranks to see the scaling.

Config keys: model (mlp | cnn | transformer), modelArgs, batchSize (per rank), inputShape,
precision (fp32 | bf16), warmup, iterations; gpuType, gpuCount, nodePool are recorded. A step is
forward, a mean-square loss, backward (DDP all-reduces the gradients), SGD step. latency_ms is
per step; throughput is this rank's samples/s, so the aggregate's sum is the job's."""

from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from runner import models, stats, timing, world
from runner.device import device_info, select_device
from runner.errors import ConfigError
from runner.kinds import Measurement, model_latency, register

KEYS = ("model", "modelArgs", "batchSize", "inputShape", "precision", "warmup", "iterations", *model_latency.SCHEDULING)


def parse(config: dict[str, Any]) -> model_latency.LatencySpec:
    for key in config:
        if key not in KEYS:
            raise ConfigError(key, f"unknown key of a ddp-step config (known: {', '.join(KEYS)})")
    spec = model_latency.parse(config)
    if spec.model == models.TORCHSCRIPT:
        raise ConfigError("model", "ddp-step trains a built-in model (mlp, cnn, transformer), not torchscript")
    if spec.precision == "fp16":
        raise ConfigError("precision", "ddp-step trains in fp32 or bf16 (fp16 needs loss scaling)")
    return spec


@register("ddp-step")
def run(config: dict[str, Any]) -> Measurement:
    spec = parse(config)
    device = select_device(config)
    session = world.current()
    device, _ = session.join(device)
    dtype = model_latency.PRECISIONS[spec.precision]
    torch.manual_seed(0)  # the same initial weights on every rank (DDP broadcasts rank 0's anyway)
    model = models.build(spec.model, list(spec.input_shape), spec.model_args, None).to(device=device, dtype=dtype)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-3)
    batch = torch.randn(spec.batch_size, *spec.input_shape, device=device, dtype=dtype)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = ddp(batch).float().pow(2).mean()
        loss.backward()
        optimizer.step()

    timing.time_iterations(step, device, 0, spec.warmup)
    start_ns = session.start_together()
    durations = timing.time_iterations(step, device, 0, spec.iterations)
    latency = stats.latency_stats(durations)
    return Measurement(
        device=device_info(device, config),
        latency_ms=latency,
        throughput=stats.throughput(spec.batch_size, latency["mean"]),
        iterations=spec.iterations,
        samples_ns=durations,
        start_ns=start_ns,
        metrics={"batchPerRank": spec.batch_size, "worldSize": session.size},
    )
