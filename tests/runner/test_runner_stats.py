"""Statistics on known inputs: a pure function."""

import pytest

from runner.stats import latency_stats, percentile, throughput


def test_latency_stats_of_one_to_ten_ms() -> None:
    stats = latency_stats([ms * 1_000_000 for ms in range(10, 0, -1)])  # unsorted on purpose
    assert stats == {"mean": 5.5, "p50": 5.5, "p90": 9.1, "p99": 9.91, "min": 1.0, "max": 10.0}


def test_percentiles_interpolate_like_numpy_linear() -> None:
    values = [0.0, 10.0, 20.0, 30.0, 40.0]
    assert [percentile(values, p) for p in (0, 25, 50, 62.5, 90, 100)] == [0.0, 10.0, 20.0, 25.0, 36.0, 40.0]


def test_one_iteration() -> None:
    assert latency_stats([2_500_000]) == dict.fromkeys(("mean", "p50", "p90", "p99", "min", "max"), 2.5)


def test_rounded_to_the_nanosecond() -> None:
    assert latency_stats([1, 2, 4])["mean"] == 0.000002  # 2.33 ns


def test_throughput_is_samples_per_second() -> None:
    assert throughput(8, 2.0) == 4000.0
    assert throughput(1, 0.5) == 2000.0
    # a slow model (a loaded CPU): as precise, relatively, as a fast one
    assert throughput(2, 39.915) == pytest.approx(2000 / 39.915, rel=1e-6)
    assert throughput(1, 0.0082249) == pytest.approx(1000 / 0.0082249, rel=1e-6)


@pytest.mark.parametrize("bad", [[], None])
def test_no_iterations_is_an_error(bad: list[int] | None) -> None:
    with pytest.raises((ValueError, TypeError)):
        latency_stats(bad)  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        throughput(1, 0.0)
