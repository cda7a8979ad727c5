"""The aggregate of a multi-rank run: a pure function over the ranks' records (no processes)."""

import copy
import random
from collections.abc import Callable
from typing import Any

import pytest

from runner import samples, stats
from runner.aggregate import AggregateError, aggregate
from runner.result import Result

DEVICE = {"type": "cpu", "node": "n", "hostname": "h", "cpu": "c", "torch": "2.13.0"}


def rank_record(rank: int, size: int, durations: list[int], kind: str = "model-latency", **extra: Any) -> dict:
    latency = stats.latency_stats(durations)
    record = Result(
        sweep="s",
        index=0,
        kind=kind,
        config={"model": "mlp"},
        started=f"2026-01-01T00:00:0{rank}.000Z",
        finished=f"2026-01-01T00:00:1{rank}.000Z",
        device={**DEVICE, "node": f"node-{rank}"},
        latency_ms=latency,
        throughput=stats.throughput(4, latency["mean"]),
        iterations=len(durations),
        mode="coordinated",
        rank=rank,
        world_size=size,
        start_ns=1_000_000_000 + rank * 250_000,
        samples=samples.encode(durations),
    ).to_dict()
    record.update(extra)
    return record


def skewed_ranks(size: int = 4) -> list[dict]:
    """Ranks with very different distributions and counts: averaging their percentiles is wrong."""
    rng = random.Random(7)
    out = []
    for rank in range(size):
        n = 50 + 37 * rank
        scale = 1_000_000 * (rank + 1) ** 2
        out.append(rank_record(rank, size, [round(rng.expovariate(1 / scale)) + 1 for _ in range(n)]))
    return out


def test_aggregate_percentiles_are_the_unions(validate: Callable[[dict], None]) -> None:
    records = skewed_ranks()
    total = aggregate(records)
    validate(total)
    union = [v for r in records for v in r["samples"]["values"]]
    assert total["latency_ms"] == stats.latency_stats(union)
    assert total["iterations"] == len(union)
    averaged_p99 = sum(r["latency_ms"]["p99"] for r in records) / len(records)
    assert abs(total["latency_ms"]["p99"] - averaged_p99) > 1  # what averaging would have reported
    assert total["throughput"] == pytest.approx(sum(r["throughput"] for r in records), abs=0.01)
    assert total["start_skew_ms"] == pytest.approx(0.75)
    assert total["world_size"] == 4 and "rank" not in total and "samples" not in total
    assert [r["node"] for r in total["ranks"]] == ["node-0", "node-1", "node-2", "node-3"]
    assert total["started"] == records[0]["started"] and total["finished"] == records[3]["finished"]


def test_order_of_records_does_not_matter() -> None:
    records = skewed_ranks()
    assert aggregate(records[::-1]) == aggregate(records)


def test_a_failed_and_a_missing_rank_make_the_aggregate_fail_naming_them(validate: Callable[[dict], None]) -> None:
    records = skewed_ranks()
    bad = {
        **records[1],
        "status": "config-error",
        "error": "bad config: model: unknown",
        "latency_ms": None,
        "throughput": None,
        "samples": None,
    }
    del bad["samples"]
    total = aggregate([records[0], bad, records[3]])
    validate(total)
    assert total["status"] == "config-error"
    assert total["error"] == "rank 1: bad config: model: unknown; rank 2: sent no record"
    assert total["latency_ms"] is None and total["throughput"] is None
    assert [r["status"] for r in total["ranks"]] == ["ok", "config-error", "missing", "ok"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rs: rs.__setitem__(2, {**rs[2], "world_size": 8}), "rank 2's world_size differs"),
        (lambda rs: rs.__setitem__(1, {**rs[1], "config": {"model": "cnn"}}), "rank 1's config differs"),
        (lambda rs: rs.__setitem__(3, {**rs[3], "rank": 1}), "rank 1 has two records"),
        (lambda rs: rs.__setitem__(0, {k: v for k, v in rs[0].items() if k != "rank"}), "record 0 has no rank"),
        (lambda rs: rs.__setitem__(3, {**rs[3], "rank": 4}), "rank 4 is outside world_size 4"),
        (lambda rs: rs.clear(), "no records"),
    ],
)
def test_records_of_different_runs_are_refused(change: Callable[[list], None], message: str) -> None:
    records = skewed_ranks()
    change(records)
    with pytest.raises(AggregateError, match=message):
        aggregate(records)


def test_a_record_without_samples_is_refused_naming_the_rank() -> None:
    records = skewed_ranks()
    del records[2]["samples"]
    with pytest.raises(ValueError, match="rank 2: samples"):
        aggregate(records)


def test_allreduce_takes_the_slowest_rank_per_size() -> None:
    def table(times: list[float]) -> dict:
        return {
            "backend": "gloo",
            "dtype": "fp32",
            "allreduce": [
                {"bytes": b, "time_us": t, "algbw_gbps": 0.0, "busbw_gbps": 0.0}
                for b, t in zip([1024, 1 << 20], times, strict=True)
            ],
        }

    records = [
        rank_record(0, 2, [10_000, 12_000], kind="allreduce", mode="distributed", metrics=table([10.0, 1000.0])),
        rank_record(1, 2, [11_000, 13_000], kind="allreduce", mode="distributed", metrics=table([20.0, 500.0])),
    ]
    total = aggregate(copy.deepcopy(records))
    rows = total["metrics"]["allreduce"]
    assert [r["time_us"] for r in rows] == [20.0, 1000.0]
    # 1 MiB in 1 ms: algbw 1.048576 GB/s, busbw x 2(n-1)/n = x 1 for two ranks
    assert rows[1]["algbw_gbps"] == pytest.approx(1.048576, rel=1e-5)  # 6 significant digits
    assert rows[1]["busbw_gbps"] == rows[1]["algbw_gbps"]
    assert total["throughput"] == min(r["throughput"] for r in records)
    assert total["mode"] == "distributed"


def test_server_qps_is_the_ranks_sum() -> None:
    def server(qps: float) -> dict:
        return {"scenario": "server", "qps": qps, "p99BoundMs": 5, "trials": []}

    records = [rank_record(r, 2, [1_000_000 + r], metrics=server(100.0 + r)) for r in range(2)]
    total = aggregate(records)
    assert total["metrics"]["qps"] == 201.0 and total["metrics"]["qps_per_rank"] == [100.0, 101.0]


def test_samples_decode_refuses_what_is_not_raw_ns() -> None:
    with pytest.raises(ValueError, match="x: not a"):
        samples.decode({"encoding": "hdr", "unit": "ns", "values": []}, "x")
    with pytest.raises(ValueError, match=r"x\.values"):
        samples.decode({"encoding": "raw", "unit": "ns", "values": [1.5]}, "x")
    assert samples.merge([[1, 2], [2], []]) == [1, 2, 2]
