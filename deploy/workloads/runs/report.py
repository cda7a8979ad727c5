"""`run results`: one row per rank, then the aggregate computed from the ranks' raw samples
(runner/aggregate.py: percentiles of the union, never averaged percentiles), as a table, JSON or CSV,
and a PNG of p50/p99 per rank beside the aggregate's."""

import csv
import io
import json
from pathlib import Path
from typing import Any

from runner.aggregate import aggregate

COLUMNS = ("rank", "node", "status", "iterations", "p50_ms", "p90_ms", "p99_ms", "max_ms", "throughput", "start_ms")
ALL = "all"


def _ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["config"])


def total(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The aggregate record of the ranks' results, or `{"status": "no aggregate", "error": why}`."""
    try:
        return aggregate([r["result"] for r in _ordered(records)])
    except ValueError as err:  # AggregateError (not one run's records), or samples that do not decode
        return {"status": "no aggregate", "error": str(err)}


def _row(rank: Any, node: str, result: dict[str, Any], start_ms: float | None) -> dict[str, Any]:
    latency = result.get("latency_ms") or {}
    return {
        "rank": rank,
        "node": node,
        "status": result.get("status") if not result.get("error") else f"{result.get('status')}: {result['error']}",
        "iterations": result.get("iterations"),
        "p50_ms": latency.get("p50"),
        "p90_ms": latency.get("p90"),
        "p99_ms": latency.get("p99"),
        "max_ms": latency.get("max"),
        "throughput": result.get("throughput"),
        "start_ms": start_ms,
    }


def rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rank's row (start_ms: its start after the earliest rank's), then the `all` row (start_ms: the
    start skew, max - min)."""
    ordered = _ordered(records)
    starts = [r["result"].get("start_ns") for r in ordered if isinstance(r["result"].get("start_ns"), int)]
    first = min(starts) if starts else None
    out = []
    for r in ordered:
        start = r["result"].get("start_ns")
        offset = round((start - first) / 1e6, 3) if first is not None and isinstance(start, int) else None
        out.append(_row(r["config"], r.get("node") or "", r["result"], offset))
    agg = total(records)
    nodes = sorted({r.get("node") or "" for r in ordered} - {""})
    where = f"{len(nodes)} node{'s' if len(nodes) > 1 else ''}" if nodes else ""
    out.append(_row(ALL, where, agg, agg.get("start_skew_ms")))
    return out


def as_json(records: list[dict[str, Any]]) -> str:
    return json.dumps({"ranks": _ordered(records), "aggregate": total(records)}, indent=2)


def as_csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def plot(table: list[dict[str, Any]], path: Path, title: str) -> None:
    """p50 and p99 latency per rank, and the aggregate's (over the union of the ranks' samples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"rank {r['rank']}" if r["rank"] != ALL else "all ranks" for r in table]
    p50 = [r["p50_ms"] or 0 for r in table]
    p99 = [r["p99_ms"] or 0 for r in table]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(table) + 2), 4))
    x = range(len(table))
    ax.bar([i - 0.2 for i in x], p50, width=0.4, label="p50")
    ax.bar([i + 0.2 for i in x], p99, width=0.4, label="p99")
    ax.set_xticks(list(x), labels, rotation=30, ha="right")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
