"""The inference scenarios: config checks, Poisson trials and the bounded server search, over a
query whose service time is known (a sleep), so the answer is known too."""

import time

import pytest

from runner import scenarios
from runner.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("closed-loop", "scenario"),
        ({"name": "offline", "qps": 3}, "scenario.qps"),
        ({"name": "server"}, "scenario.p99BoundMs"),
        ({"name": "server", "p99BoundMs": 0}, "scenario.p99BoundMs"),
        ({"name": "server", "p99BoundMs": 5, "budgetSecond": 3}, "scenario.budgetSecond"),
        ({"name": "server", "p99BoundMs": 5, "minQps": 10, "maxQps": 5}, "scenario.maxQps"),
        ({"name": "server", "p99BoundMs": 5, "minQueries": 2.5}, "scenario.minQueries"),
    ],
)
def test_bad_scenario_names_the_key(value: object, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        scenarios.parse(value)
    assert e.value.key == key


def test_scenario_defaults() -> None:
    assert scenarios.parse(None).name == "single-stream"
    assert scenarios.parse("offline").name == "offline"
    s = scenarios.parse({"name": "server", "p99BoundMs": 5})
    assert (s.min_qps, s.max_qps, s.budget_s) == (1.0, None, 30.0)


def busy(seconds: float):
    def query() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    return query


def test_poisson_latency_counts_from_arrival_and_a_hopeless_trial_stops_early() -> None:
    # 5 ms of service at 1,000 QPS: the queue grows by ~4 ms a query, so the trial fails fast.
    t0 = time.monotonic()
    trial = scenarios.poisson_trial(busy(0.005), 1000.0, 400, bound_ns=10_000_000, seed=1)
    assert not trial.passed
    assert len(trial.latencies_ns) < 20 and time.monotonic() - t0 < 0.5
    assert trial.latencies_ns[-1] > 10_000_000  # includes the wait behind earlier queries
    easy = scenarios.poisson_trial(busy(0.0005), 50.0, 20, bound_ns=1_000_000_000, seed=1)  # a loaded host stalls
    assert easy.passed and len(easy.latencies_ns) == 20
    assert min(easy.latencies_ns) >= 500_000


def test_server_search_finds_the_rate_under_the_bound_within_its_budget() -> None:
    # 2 ms of service: one worker serves at most 500 QPS. The warm-up is told 0.5 ms, so maxQps is
    # 2,000 (4x overload: the queue grows 1.5 ms a query and the trial stops early); the bound is
    # loose enough for a loaded host's stalls at the low rates.
    scenario = scenarios.parse(
        {
            "name": "server",
            "p99BoundMs": 200,
            "minQps": 20,
            "trialSeconds": 0.2,
            "minQueries": 20,
            "budgetSeconds": 3,
            "tolerance": 0.1,
        }
    )
    t0 = time.monotonic()
    found = scenarios.server_search(busy(0.002), scenario, service_ns=500_000)
    elapsed = time.monotonic() - t0
    assert elapsed < 3 + 1.5  # the budget, plus the backlog of the last trial
    assert found.qps is not None and 20 <= found.qps < 2000
    assert found.best is not None and found.best.passed and found.best.qps == found.qps
    assert found.trials[0].qps == 20 and found.trials[1].qps == pytest.approx(2000)
    assert not found.trials[1].passed and len(found.trials[1].latencies_ns) < 400
    assert len(found.trials) >= 3  # it bisected
    metrics = found.metrics(scenario)
    assert metrics["qps"] == round(found.qps, 3) and len(metrics["trials"]) == len(found.trials)


def test_server_search_when_even_the_lowest_rate_fails() -> None:
    scenario = scenarios.parse({"name": "server", "p99BoundMs": 1, "minQps": 5, "minQueries": 5})
    found = scenarios.server_search(busy(0.003), scenario, service_ns=3_000_000)
    assert found.qps is None and found.best is None and len(found.trials) == 1


def test_every_rank_must_agree_on_a_pass() -> None:
    scenario = scenarios.parse({"name": "server", "p99BoundMs": 50, "minQps": 20, "minQueries": 5})
    votes: list[str] = []

    def agree(name: str, ok: bool) -> bool:
        votes.append(name)
        return ok and not name.startswith("trial-")  # another rank failed every trial

    found = scenarios.server_search(busy(0.001), scenario, service_ns=1_000_000, agree=agree)
    assert found.qps is None and votes == ["trial-0"]
