"""Kind `allreduce` (distributed mode): all-reduce bus bandwidth over message sizes, across the
ranks' torch.distributed process group (gloo on CPU, nccl on CUDA), after nccl-tests:
algbw = bytes / time, busbw = algbw * 2 (n - 1) / n (what each rank's link carries in a ring).

Config keys: sizes (message sizes in bytes, default 1 KiB..16 MiB by 4x), dtype (fp32 | bf16 |
fp16), warmup, iterations (per size). Each iteration is timed on its own (runner/timing.py); the
size's time is the mean. The record's latency_ms and samples are the largest size's per-iteration
times, its throughput all-reduces per second at that size; `metrics.allreduce` holds the table."""

from typing import Any

import torch
import torch.distributed as dist

from runner import stats, timing, world
from runner.device import device_info, select_device
from runner.errors import ConfigError
from runner.kinds import Measurement, register

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULTS: dict[str, Any] = {"sizes": [1 << k for k in range(10, 25, 2)], "dtype": "fp32", "warmup": 5, "iterations": 20}
SCHEDULING = ("gpuType", "gpuCount", "nodePool")
KEYS = (*DEFAULTS, *SCHEDULING)


def _count(config: dict[str, Any], key: str, minimum: int) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, not {value!r}")
    return value


def parse(config: dict[str, Any]) -> dict[str, Any]:
    for key in config:
        if key not in KEYS:
            raise ConfigError(key, f"unknown key of an allreduce config (known: {', '.join(KEYS)})")
    c = {**DEFAULTS, **config}
    if c["dtype"] not in DTYPES:
        raise ConfigError("dtype", f"must be one of {', '.join(DTYPES)}, not {c['dtype']!r}")
    item = torch.empty((), dtype=DTYPES[c["dtype"]]).element_size()
    sizes = c["sizes"]
    if (
        not isinstance(sizes, list)
        or not sizes
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= item and s % item == 0 for s in sizes)
    ):
        raise ConfigError(
            "sizes", f"must be a non-empty list of byte counts, multiples of {item} ({c['dtype']}), not {sizes!r}"
        )
    return {
        "sizes": sorted(sizes),
        "dtype": c["dtype"],
        "warmup": _count(c, "warmup", 0),
        "iterations": _count(c, "iterations", 1),
    }


def time_size(size: int, dtype: torch.dtype, device: torch.device, warmup: int, iterations: int) -> list[int]:
    """Per-iteration durations (ns) of all-reducing `size` bytes, the ranks lined up by a barrier
    first (benchmarks/allreduce_gloo.py times this against a bare loop)."""
    buffer = torch.ones(size // torch.empty((), dtype=dtype).element_size(), dtype=dtype, device=device)

    def reduce() -> None:
        dist.all_reduce(buffer)

    dist.barrier()
    return timing.time_iterations(reduce, device, warmup, iterations)


@register("allreduce")
def run(config: dict[str, Any]) -> Measurement:
    spec = parse(config)
    device = select_device(config)
    session = world.current()
    device, backend = session.join(device)
    dtype = DTYPES[spec["dtype"]]
    table = []
    durations: list[int] = []
    start_ns = session.start_together()
    for size in spec["sizes"]:
        durations = time_size(size, dtype, device, spec["warmup"], spec["iterations"])
        seconds = sum(durations) / len(durations) / 1e9
        algbw, busbw = stats.bus_bandwidth(size, seconds, session.size)
        table.append(
            {
                "bytes": size,
                "time_us": round(seconds * 1e6, 3),
                "algbw_gbps": stats.significant(algbw),
                "busbw_gbps": stats.significant(busbw),
            }
        )
    latency = stats.latency_stats(durations)
    return Measurement(
        device=device_info(device, config),
        latency_ms=latency,
        throughput=stats.throughput(1, latency["mean"]),
        iterations=spec["iterations"],
        samples_ns=durations,
        start_ns=start_ns,
        metrics={"allreduce": table, "backend": backend, "dtype": spec["dtype"]},
    )
