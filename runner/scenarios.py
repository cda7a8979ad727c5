"""Inference scenarios after MLPerf's: how the queries of a `model-latency` config arrive.

- `single-stream` (the default): one query after the other; latency per query.
- `offline`: every query available at once, run back to back; the figure is throughput over the
  whole window (samples/s), not batch / mean latency.
- `server`: queries arrive as a Poisson process at a target rate; a query's latency runs from its
  arrival, so it includes the wait behind earlier queries. The search finds the highest rate whose
  p99 stays under a bound: a trial at `minQps` (must pass), one at `maxQps` (default: the rate one
  worker can serve, from the warm-up), then bisection on the log scale until the bracket is within
  `tolerance` or `budgetSeconds` would be exceeded by another trial. A trial stops early as soon as
  more than 1 % of its queries have exceeded the bound. In a multi-rank run every rank runs the same
  trials together (a start barrier each) and a rate passes only if it passes on every rank.

Pure Python over a `query()` callable that returns when the query is complete; no torch here."""

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner import stats
from runner.errors import ConfigError

NAMES = ("single-stream", "offline", "server")
SERVER_DEFAULTS: dict[str, Any] = {
    "minQps": 1.0,
    "maxQps": None,
    "trialSeconds": 1.0,
    "minQueries": 50,
    "budgetSeconds": 30.0,
    "tolerance": 0.05,
    "seed": 0,
}
SERVER_KEYS = ("name", "p99BoundMs", *SERVER_DEFAULTS)


@dataclass(frozen=True)
class Scenario:
    name: str = "single-stream"
    p99_bound_ms: float = 0.0
    min_qps: float = 1.0
    max_qps: float | None = None
    trial_s: float = 1.0
    min_queries: int = 50
    budget_s: float = 30.0
    tolerance: float = 0.05
    seed: int = 0


def _number(c: dict[str, Any], key: str, minimum: float, integer: bool = False) -> Any:
    value = c[key]
    kinds = (int,) if integer else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or value < minimum or not math.isfinite(value):
        raise ConfigError(
            f"scenario.{key}", f"must be {'an integer' if integer else 'a number'} >= {minimum}, not {value!r}"
        )
    return value


def parse(value: Any) -> Scenario:
    """The config's `scenario`: a name, or an object with `name` and (server) its options."""
    if value is None:
        return Scenario()
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or value.get("name") not in NAMES:
        name = value.get("name") if isinstance(value, dict) else value
        raise ConfigError("scenario", f"must be one of {', '.join(NAMES)} (or an object with `name`), not {name!r}")
    name = value["name"]
    if name != "server":
        extra = sorted(set(value) - {"name"})
        if extra:
            raise ConfigError(f"scenario.{extra[0]}", f"unknown key of the {name} scenario (it has none but name)")
        return Scenario(name=name)
    for key in value:
        if key not in SERVER_KEYS:
            known = ", ".join(SERVER_KEYS)
            raise ConfigError(f"scenario.{key}", f"unknown key of the server scenario (known: {known})")
    if "p99BoundMs" not in value:
        raise ConfigError("scenario.p99BoundMs", "missing: the server scenario searches the highest QPS under it")
    c = {**SERVER_DEFAULTS, **value}
    max_qps = None if c["maxQps"] is None else _number(c, "maxQps", 0.001)
    min_qps = _number(c, "minQps", 0.001)
    if max_qps is not None and max_qps < min_qps:
        raise ConfigError("scenario.maxQps", f"must be >= minQps ({min_qps}), not {max_qps}")
    tolerance = _number(c, "tolerance", 0.001)
    return Scenario(
        name=name,
        p99_bound_ms=_number(c, "p99BoundMs", 0.001),
        min_qps=min_qps,
        max_qps=max_qps,
        trial_s=_number(c, "trialSeconds", 0.01),
        min_queries=_number(c, "minQueries", 1, integer=True),
        budget_s=_number(c, "budgetSeconds", 0.01),
        tolerance=tolerance,
        seed=_number(c, "seed", 0, integer=True),
    )


@dataclass
class Trial:
    qps: float
    queries: int  # planned
    latencies_ns: list[int] = field(default_factory=list)
    passed: bool = False

    def summary(self) -> dict[str, Any]:
        p99 = stats.latency_stats(self.latencies_ns)["p99"] if self.latencies_ns else None
        return {
            "qps": round(self.qps, 3),
            "queries": len(self.latencies_ns),
            "planned": self.queries,
            "p99_ms": p99,
            "passed": self.passed,
        }


def poisson_trial(query: Callable[[], object], qps: float, queries: int, bound_ns: int, seed: int) -> Trial:
    """`queries` queries at Poisson arrivals of rate `qps`, served one at a time in arrival order;
    each latency from arrival to completion. Stops once over 1 % of the planned queries missed the
    bound (the trial cannot pass any more)."""
    rng = random.Random(seed)
    allowed_misses = queries // 100
    trial = Trial(qps=qps, queries=queries)
    clock = time.perf_counter_ns
    due = clock()
    misses = 0
    for _ in range(queries):
        due += round(rng.expovariate(qps) * 1e9)
        while (left := due - clock()) > 0:
            time.sleep(left / 1e9 if left > 200_000 else 0)
        query()
        latency = clock() - due
        trial.latencies_ns.append(latency)
        misses += latency > bound_ns
        if misses > allowed_misses:
            return trial
    p99 = stats.percentile(sorted(trial.latencies_ns), 99)
    trial.passed = p99 <= bound_ns
    return trial


@dataclass
class ServerResult:
    qps: float | None  # the highest passing rate found; None when even minQps failed
    best: Trial | None
    trials: list[Trial]

    def metrics(self, scenario: Scenario) -> dict[str, Any]:
        return {
            "scenario": "server",
            "qps": None if self.qps is None else round(self.qps, 3),
            "p99BoundMs": scenario.p99_bound_ms,
            "trials": [t.summary() for t in self.trials],
        }


def server_search(
    query: Callable[[], object],
    scenario: Scenario,
    service_ns: float,
    start: Callable[[], object] = lambda: None,
    agree: Callable[[str, bool], bool] = lambda _name, ok: ok,
    stream: int = 0,
) -> ServerResult:
    """The bounded search of the server scenario. `service_ns` is one query's service time from
    the warm-up (sets the default maxQps); `start` is called before each trial (the start barrier)
    and `agree(name, verdict)` turns this rank's verdict into every rank's (whether a trial passed,
    whether another one fits in the budget), so that all ranks run the same trials. `stream` (the
    rank) makes each rank's arrivals its own."""
    bound_ns = round(scenario.p99_bound_ms * 1e6)
    deadline = time.monotonic() + scenario.budget_s
    trials: list[Trial] = []

    def run(qps: float) -> bool:
        queries = max(scenario.min_queries, math.ceil(qps * scenario.trial_s))
        start()
        trial = poisson_trial(query, qps, queries, bound_ns, hash((scenario.seed, stream, len(trials))))
        trial.passed = agree(f"trial-{len(trials)}", trial.passed)
        trials.append(trial)
        return trial.passed

    def affordable(qps: float) -> bool:
        queries = max(scenario.min_queries, math.ceil(qps * scenario.trial_s))
        return agree(f"go-{len(trials)}", time.monotonic() + queries / qps <= deadline)

    low = scenario.min_qps
    high = scenario.max_qps or max(low, 1e9 / max(service_ns, 1.0))
    if not run(low):
        return ServerResult(None, None, trials)
    best = trials[-1]
    if high > low and affordable(high):
        if run(high):
            return ServerResult(high, trials[-1], trials)
        while high / low > 1 + scenario.tolerance:
            middle = math.sqrt(low * high)
            if not affordable(middle):
                break
            if run(middle):
                low, best = middle, trials[-1]
            else:
                high = middle
    return ServerResult(low, best, trials)
