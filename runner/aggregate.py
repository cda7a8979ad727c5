"""The aggregate of a multi-rank run: a pure function from the ranks' records (as the deploy
tool reads them from the pods' logs, or `python -m runner.ranks` from its processes) to one
record of the same schema (runner/result.schema.json), with `ranks` (one summary each) instead of
`rank`. No torch here.

Latency percentiles come from the union of the ranks' raw samples (runner/samples.py), never from
averaging the ranks' percentiles. Throughput: the ranks' sum when they serve in parallel (the
coordinated kinds, a data-parallel step), the slowest rank's for a collective that every rank takes
part in (`allreduce`). The start skew is max - min of the ranks' start_ns (runner/barrier.py)."""

from collections.abc import Callable, Sequence
from typing import Any

from runner import samples, stats
from runner.result import Result

# How the ranks' throughputs combine, by kind (default: sum).
THROUGHPUT: dict[str, Callable[[list[float]], float]] = {"allreduce": min}


class AggregateError(ValueError):
    """Records that do not belong to one multi-rank run (or are not multi-rank records at all)."""


def _check(records: Sequence[dict[str, Any]]) -> tuple[int, dict[int, dict[str, Any]]]:
    if not records:
        raise AggregateError("no records to aggregate")
    first = records[0]
    by_rank: dict[int, dict[str, Any]] = {}
    for i, record in enumerate(records):
        rank, size = record.get("rank"), record.get("world_size")
        if not isinstance(rank, int) or not isinstance(size, int):
            raise AggregateError(f"record {i} has no rank and world_size: not a rank of a multi-rank run")
        for key in ("world_size", "kind", "sweep", "index", "config"):
            if record.get(key) != first.get(key):
                raise AggregateError(f"rank {rank}'s {key} differs from rank {first['rank']}'s: not one run")
        if not 0 <= rank < size:
            raise AggregateError(f"rank {rank} is outside world_size {size}")
        if rank in by_rank:
            raise AggregateError(f"rank {rank} has two records (pass each rank's last one)")
        by_rank[rank] = record
    return first["world_size"], by_rank


def _summary(rank: int, record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {
            "rank": rank,
            "status": "missing",
            "node": None,
            "latency_ms": None,
            "throughput": None,
            "start_ns": None,
            "error": "sent no record",
        }
    return {
        "rank": rank,
        "status": record.get("status"),
        "node": (record.get("device") or {}).get("node"),
        "latency_ms": record.get("latency_ms"),
        "throughput": record.get("throughput"),
        "start_ns": record.get("start_ns"),
        "error": record.get("error"),
    }


def _metrics(kind: str, size: int, ranks: list[dict[str, Any]]) -> dict[str, Any] | None:
    parts = [r.get("metrics") for r in ranks]
    if not all(isinstance(p, dict) for p in parts):
        return None
    first: dict[str, Any] = parts[0]  # type: ignore[assignment]
    if kind == "allreduce":
        table = []
        for row, *others in zip(*(p["allreduce"] for p in parts), strict=True):  # type: ignore[index]
            slowest = max([row, *others], key=lambda r: r["time_us"])
            algbw, busbw = stats.bus_bandwidth(slowest["bytes"], slowest["time_us"] / 1e6, size)
            table.append(
                {
                    "bytes": slowest["bytes"],
                    "time_us": slowest["time_us"],
                    "algbw_gbps": stats.significant(algbw),
                    "busbw_gbps": stats.significant(busbw),
                }
            )
        return {**first, "allreduce": table}
    if first.get("scenario") == "server":
        qps = [p.get("qps") for p in parts]  # type: ignore[union-attr]
        total = None if any(q is None for q in qps) else round(sum(qps), 3)
        return {**first, "qps": total, "qps_per_rank": qps}
    if first.get("scenario") == "offline":
        return {**first, "wall_ms": max(p["wall_ms"] for p in parts)}  # type: ignore[index]
    return first


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One record for the whole run. A rank that failed or sent no record makes the aggregate
    `error` (`config-error` when a rank's config was bad), naming the ranks; AggregateError for
    records that are not one multi-rank run."""
    size, by_rank = _check(records)
    base = by_rank.get(0) or records[0]
    summaries = [_summary(r, by_rank.get(r)) for r in range(size)]
    failed = [s for s in summaries if s["status"] != "ok"]
    result = Result(
        sweep=base["sweep"],
        index=base["index"],
        kind=base["kind"],
        config=base["config"],
        device=base["device"],
        started=min(r["started"] for r in by_rank.values()),
        finished=max(r["finished"] for r in by_rank.values()),
        mode=base.get("mode"),
        world_size=size,
        ranks=summaries,
    )
    if failed:
        result.status = "config-error" if any(s["status"] == "config-error" for s in failed) else "error"
        result.error = "; ".join(f"rank {s['rank']}: {s['error']}" for s in failed)
        return result.to_dict()
    ranks = [by_rank[r] for r in range(size)]
    durations = samples.merge(samples.decode(r.get("samples"), f"rank {r['rank']}: samples") for r in ranks)
    result.latency_ms = stats.latency_stats(durations)
    result.iterations = len(durations)
    result.throughput = round(THROUGHPUT.get(base["kind"], sum)([r["throughput"] for r in ranks]), 6)
    starts = [r.get("start_ns") for r in ranks]
    if all(isinstance(s, int) for s in starts):
        result.start_skew_ms = round((max(starts) - min(starts)) / 1e6, 6)  # type: ignore[type-var,operator]
    result.metrics = _metrics(base["kind"], size, ranks)
    return result.to_dict()
