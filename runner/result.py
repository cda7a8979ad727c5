"""The result record (schema `kaiml.result/v1`, runner/result.schema.json) and how it leaves a pod:
one stdout line `KAIML_RESULT <compact JSON>` (see runner/README.md for why a log line).

No torch here: the deploy tool's watcher imports `parse_line` to read pod logs."""

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

SCHEMA = "kaiml.result/v1"
SCHEMA_FILE = Path(__file__).with_name("result.schema.json")
MARKER = "KAIML_RESULT"

Status = Literal["ok", "config-error", "error"]
ORDER = (
    "schema",
    "sweep",
    "index",
    "kind",
    "config",
    "device",
    "latency_ms",
    "throughput",
    "iterations",
    "started",
    "finished",
    "status",
    "error",
)
# Optional fields, written only when set, so a single model-latency record is what it always was:
# multi-rank runs (runner/world.py, runner/aggregate.py) and what `train` computed and stored.
OPTIONAL = (
    "mode",
    "rank",
    "world_size",
    "start_ns",
    "start_skew_ms",
    "samples",
    "metrics",
    "artifacts",
    "ranks",
)


class Latency(TypedDict):
    """Per-iteration latency in milliseconds over the measured iterations."""

    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float


@dataclass
class Result:
    """One run's record. `latency_ms` and `throughput` (samples/s) are null unless status is ok;
    `error` says what went wrong otherwise."""

    sweep: str
    index: int | None
    kind: str
    config: dict[str, Any]
    started: str
    finished: str = ""
    status: Status = "ok"
    device: dict[str, Any] = field(default_factory=dict)
    latency_ms: Latency | None = None
    throughput: float | None = None
    iterations: int | None = None
    error: str | None = None
    # Optional (kind `train`): left out of the record when None, so other kinds' records are unchanged.
    metrics: dict[str, Any] | None = None
    artifacts: dict[str, str] | None = None
    schema: str = SCHEMA
    mode: str | None = None
    rank: int | None = None
    world_size: int | None = None
    start_ns: int | None = None
    start_skew_ms: float | None = None
    samples: dict[str, Any] | None = None
    ranks: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record, keys in the documented order; optional fields only when set."""
        d = asdict(self)
        return {k: d[k] for k in ORDER} | {k: d[k] for k in OPTIONAL if d[k] is not None}

    def to_json(self) -> str:
        """Compact, ASCII-only JSON: always one line, whatever the config's strings hold."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True, allow_nan=False)

    def to_line(self) -> str:
        return f"{MARKER} {self.to_json()}"


def now() -> str:
    """UTC, ISO 8601 with milliseconds: `2026-05-01T12:00:00.123Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_line(line: str) -> dict[str, Any] | None:
    """The record of a `KAIML_RESULT {...}` log line, or None for any other line."""
    return parse_marked(line, MARKER, SCHEMA)


def parse_marked(line: str, marker: str, schema: str) -> dict[str, Any] | None:
    """The JSON object after `marker` on a log line if its `schema` is `schema`, else None. A log
    reader may prefix lines with a timestamp (`kubectl logs --timestamps`): the marker is searched."""
    at = line.find(marker + " {")
    if at < 0:
        return None
    try:
        record = json.loads(line[at + len(marker) + 1 :])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and record.get("schema") == schema else None


def find_result(log: str) -> dict[str, Any] | None:
    """The last result record in a pod's log (a retried container may have printed none)."""
    found = None
    for line in log.splitlines():
        record = parse_line(line)
        if record is not None:
            found = record
    return found
