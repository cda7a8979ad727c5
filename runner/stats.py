"""Latency statistics: pure functions over per-iteration durations."""

import math
from collections.abc import Sequence

from runner.result import Latency


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) of already sorted values, interpolated linearly between the two
    nearest ranks (numpy's default `linear` method)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = p / 100 * (len(sorted_values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def latency_stats(durations_ns: Sequence[int | float]) -> Latency:
    """mean, p50, p90, p99, min and max of per-iteration durations (ns), in milliseconds."""
    if not durations_ns:
        raise ValueError("no measured iterations")
    ms = sorted(d / 1e6 for d in durations_ns)
    # Rounded to the nanosecond: the clocks' resolution, and no float noise in the record.
    return Latency(
        mean=round(math.fsum(ms) / len(ms), 6),
        p50=round(percentile(ms, 50), 6),
        p90=round(percentile(ms, 90), 6),
        p99=round(percentile(ms, 99), 6),
        min=round(ms[0], 6),
        max=round(ms[-1], 6),
    )


def throughput(batch_size: int, mean_ms: float) -> float:
    """Samples per second at one batch per `mean_ms`."""
    if mean_ms <= 0:
        raise ValueError(f"mean latency {mean_ms} ms is not positive")
    # 6 decimals: 3 lost 1e-5 of a slow model's ~50 samples/s
    return round(batch_size * 1000.0 / mean_ms, 6)


def bus_bandwidth(size_bytes: int, seconds: float, ranks: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s (1e9 bytes/s) of one all-reduce of `size_bytes` across `ranks` that
    took `seconds`, as nccl-tests define them: busbw = algbw * 2 (n - 1) / n, what each rank's link
    carries in a ring, comparable across rank counts."""
    if seconds <= 0:
        raise ValueError(f"all-reduce time {seconds} s is not positive")
    algbw = size_bytes / seconds / 1e9
    return algbw, algbw * 2 * (ranks - 1) / ranks


def significant(x: float, digits: int = 6) -> float:
    """`x` to `digits` significant digits: bandwidths span 1e-4 to 1e3 GB/s."""
    return float(f"{x:.{digits}g}")
