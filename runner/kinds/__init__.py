"""The registry of benchmark kinds. A kind is a function `run(config) -> Measurement` registered
under its name with `@register("name")` in its own module; the module is listed in `MODULES` and
imported only when a config of that kind runs (so this registry imports no torch).

Adding a kind (`training`, distributed load generation...) is one module and one line here; the
config loading, the result record, its channel and the exit codes stay as they are."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ConfigError
from runner.result import Latency

# Kind name -> the module that registers it.
MODULES: dict[str, str] = {
    "model-latency": "runner.kinds.model_latency",
    "allreduce": "runner.kinds.allreduce",
    "ddp-step": "runner.kinds.ddp_step",
    "train": "runner.kinds.train",
}
# Kinds that run as one torch.distributed process group across the ranks; any other kind runs
# `coordinated` in a multi-rank run: independent processes behind a common start barrier.
DISTRIBUTED = frozenset({"allreduce", "ddp-step"})


def mode(kind: str) -> str:
    return "distributed" if kind in DISTRIBUTED else "coordinated"


@dataclass
class Measurement:
    """What a kind measured; the CLI wraps it into the result record."""

    device: dict[str, Any]
    latency_ms: Latency | None = None
    throughput: float | None = None
    iterations: int | None = None
    # Kinds that produce more than timings (`train`): what they computed, and the object keys of what
    # they stored. Left out of the record when None.
    metrics: dict[str, Any] | None = None
    artifacts: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Multi-rank runs: the durations behind latency_ms (ns, runner/samples.py), the wall time at
    # which the measured window started (runner/barrier.py), and kind-specific figures.
    samples_ns: list[int] | None = None
    start_ns: int | None = None


KindRunner = Callable[[dict[str, Any]], Measurement]
_REGISTRY: dict[str, KindRunner] = {}


def register(name: str) -> Callable[[KindRunner], KindRunner]:
    def decorate(run: KindRunner) -> KindRunner:
        _REGISTRY[name] = run
        return run

    return decorate


def get(name: str) -> KindRunner:
    """The kind's run function; ConfigError (key `kind`) for a kind this runner does not know."""
    if name not in _REGISTRY and name in MODULES:
        importlib.import_module(MODULES[name])
    if name not in _REGISTRY:
        raise ConfigError("kind", f"unknown benchmark kind {name!r}; this runner knows {', '.join(sorted(MODULES))}")
    return _REGISTRY[name]
