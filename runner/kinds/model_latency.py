"""Kind `model-latency`: the forward-pass latency of one model at one batch size and precision.

Config keys (camelCase, as in sweep files): model, modelPath, modelArgs, batchSize, inputShape,
precision (fp32 | fp16 | bf16), warmup, iterations, scenario (runner/scenarios.py: single-stream,
offline, server); gpuType, gpuCount and nodePool (where the config was scheduled) are accepted and
recorded, not used. In a multi-rank run the warm-up runs before the start barrier and the measured
window after it, so that the ranks' windows overlap.

fp16 on CPU: refused, not silently replaced. The model runs one forward pass in fp16 first; when an
operator has no CPU half kernel the config fails with exit code 3 naming `precision` (use bf16 or
fp32 on CPU). Where every operator has one, it is measured as asked."""

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from runner import models, scenarios, stats, timing, world
from runner.device import device_info, select_device
from runner.errors import ConfigError, RunnerError
from runner.kinds import Measurement, register

log = logging.getLogger("runner")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# torch.OutOfMemoryError since torch 2.1; the CPU image's Debian torch (1.13) has only the CUDA one.
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
DEFAULTS: dict[str, Any] = {"precision": "fp32", "warmup": 10, "iterations": 100, "modelArgs": {}}
REQUIRED = ("model", "batchSize", "inputShape")
# Where the config was scheduled: recorded in the result, not used to measure.
SCHEDULING = ("gpuType", "gpuCount", "nodePool")
KEYS = (*REQUIRED, "modelPath", "modelArgs", "precision", "warmup", "iterations", "scenario", *SCHEDULING)


@dataclass(frozen=True)
class LatencySpec:
    model: str
    batch_size: int
    input_shape: tuple[int, ...]
    precision: str = "fp32"
    warmup: int = 10
    iterations: int = 100
    model_path: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)


def _int(config: dict[str, Any], key: str, minimum: int) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, not {value!r}")
    return value


def parse(config: dict[str, Any]) -> LatencySpec:
    """The config checked key by key; ConfigError names the first bad key."""
    for key in config:
        if key not in KEYS:
            raise ConfigError(key, f"unknown key of a model-latency config (known: {', '.join(KEYS)})")
    for key in REQUIRED:
        if key not in config:
            raise ConfigError(key, "missing (a model-latency config needs model, batchSize and inputShape)")
    c = {**DEFAULTS, **config}
    if not isinstance(c["model"], str) or not c["model"]:
        raise ConfigError("model", f"must be a model name, not {c['model']!r}")
    shape = c["inputShape"]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise ConfigError("inputShape", f"must be a non-empty list of positive integers (one sample), not {shape!r}")
    if c["precision"] not in PRECISIONS:
        raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}, not {c['precision']!r}")
    if not isinstance(c["modelArgs"], dict):
        raise ConfigError("modelArgs", f"must be an object, not {c['modelArgs']!r}")
    path = c.get("modelPath")
    if path is not None and (not isinstance(path, str) or not path):
        raise ConfigError("modelPath", f"must be a file path, not {path!r}")
    return LatencySpec(
        model=c["model"],
        batch_size=_int(c, "batchSize", 1),
        input_shape=tuple(shape),
        precision=c["precision"],
        warmup=_int(c, "warmup", 0),
        iterations=_int(c, "iterations", 1),
        model_path=path,
        model_args=dict(c["modelArgs"]),
    )


def prepare(spec: LatencySpec, device: torch.device) -> Callable[[], object]:
    """The measured callable: one forward pass of the model on a fixed random batch, on `device`
    in the spec's precision. Call it under `torch.inference_mode()`. One call is made here to turn
    an unsupported precision or a shape the model rejects into a ConfigError."""
    dtype = PRECISIONS[spec.precision]
    if device.type == "cpu" and spec.precision == "fp16":
        log.warning("fp16 on CPU: measured as asked, but CPUs run few half kernels natively; bf16 is the usual choice")
    model = models.build(spec.model, list(spec.input_shape), spec.model_args, spec.model_path)
    model = model.to(device=device, dtype=dtype)
    batch = torch.randn(spec.batch_size, *spec.input_shape, device=device, dtype=dtype)

    def forward() -> object:
        return model(batch)

    try:
        with torch.inference_mode():
            forward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    except OUT_OF_MEMORY as e:
        # Deterministic for this GPU type: a retry would fail the same way.
        raise ConfigError("batchSize", f"{spec.batch_size} does not fit in {device} memory: {e}") from e
    except (RuntimeError, NotImplementedError) as e:
        message = str(e).splitlines()[0]
        if device.type == "cpu" and spec.precision == "fp16" and "Half" in str(e):
            raise ConfigError(
                "precision",
                f"fp16 is not supported on CPU by this model ({message}); use fp32 or bf16 on CPU, or run on a GPU",
            ) from e
        if spec.model == models.TORCHSCRIPT:
            raise ConfigError(
                "inputShape",
                f"the TorchScript model rejects a {spec.precision} batch of shape "
                f"{[spec.batch_size, *spec.input_shape]}: {message}",
            ) from e
        raise RunnerError(f"first forward pass of {spec.model} failed: {message}") from e
    return forward


@register("model-latency")
def run(config: dict[str, Any]) -> Measurement:
    spec = parse(config)
    scenario = scenarios.parse(config.get("scenario"))
    device = select_device(config)
    forward = prepare(spec, device)
    session = world.current()
    with torch.inference_mode():
        warm = timing.time_iterations(forward, device, 0, spec.warmup)
        if scenario.name == "server":
            return _server(forward, device, spec, scenario, warm, session, config)
        start_ns = session.start_together()
        t0 = time.perf_counter_ns()
        durations = timing.time_iterations(forward, device, 0, spec.iterations)
        wall_ns = time.perf_counter_ns() - t0
    latency = stats.latency_stats(durations)
    metrics = None
    throughput = stats.throughput(spec.batch_size, latency["mean"])
    if scenario.name == "offline":
        throughput = round(spec.batch_size * spec.iterations * 1e9 / wall_ns, 3)
        metrics = {"scenario": "offline", "wall_ms": round(wall_ns / 1e6, 6)}
    return Measurement(
        device=device_info(device, config),
        latency_ms=latency,
        throughput=throughput,
        iterations=spec.iterations,
        samples_ns=durations,
        start_ns=start_ns,
        metrics=metrics,
    )


def _server(
    forward: Callable[[], object],
    device: torch.device,
    spec: LatencySpec,
    scenario: scenarios.Scenario,
    warm: list[int],
    session: world.Session,
    config: dict[str, Any],
) -> Measurement:
    """The server scenario's search; the figures of the highest passing rate's trial."""

    def query() -> object:
        out = forward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    if not warm:
        t0 = time.perf_counter_ns()
        query()
        warm = [time.perf_counter_ns() - t0]
    starts: list[int] = []
    found = scenarios.server_search(
        query,
        scenario,
        statistics.median(warm),
        start=lambda: starts.append(session.start_together()),
        agree=session.all_agree,
        stream=session.rank,
    )
    best = found.best or found.trials[0]
    if found.qps is None:
        log.warning("server scenario: even %.3f QPS misses p99 <= %s ms", scenario.min_qps, scenario.p99_bound_ms)
    latency = stats.latency_stats(best.latencies_ns)
    return Measurement(
        device=device_info(device, config),
        latency_ms=latency,
        throughput=round((found.qps or 0.0) * spec.batch_size, 3),
        iterations=len(best.latencies_ns),
        samples_ns=best.latencies_ns,
        start_ns=starts[found.trials.index(best)],
        metrics=found.metrics(scenario),
    )
