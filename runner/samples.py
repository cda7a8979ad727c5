"""Mergeable samples: the measured durations a rank reports, so that an aggregate is computed from
the union of every rank's samples and never by averaging percentiles (runner/aggregate.py).

Raw integer nanoseconds: exact, and mergeable by concatenation. A record grows by ~8 bytes a
sample (10,000 samples: ~80 KB of log line, which `kubectl logs` returns whole). No torch here."""

from collections.abc import Iterable, Sequence
from typing import Any

ENCODING = "raw"
UNIT = "ns"


def encode(durations_ns: Sequence[int | float]) -> dict[str, Any]:
    """The record's `samples` object of one rank's durations."""
    return {"encoding": ENCODING, "unit": UNIT, "values": [round(d) for d in durations_ns]}


def decode(samples: Any, where: str = "samples") -> list[int]:
    """The durations (ns) of a record's `samples`; ValueError naming `where` for anything else."""
    if not isinstance(samples, dict) or samples.get("encoding") != ENCODING or samples.get("unit") != UNIT:
        raise ValueError(f"{where}: not a {{'encoding': '{ENCODING}', 'unit': '{UNIT}', 'values': [...]}} object")
    values = samples.get("values")
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{where}.values: must be a list of integers (ns)")
    return values


def merge(parts: Iterable[Sequence[int]]) -> list[int]:
    """The union of several ranks' durations (a multiset: nothing is deduplicated)."""
    merged: list[int] = []
    for part in parts:
        merged.extend(part)
    return merged
