"""Rank identity from the environment, and the start barrier on a real TCPStore (threads of this
process stand in for the ranks; tests/runner/test_runner_ranks.py runs real processes)."""

import threading
import time
from datetime import timedelta

import pytest
from torch.distributed import TCPStore

from runner import barrier, world
from runner.errors import ConfigError, RunnerError
from runner.ranks import free_port


def test_no_world_size_is_a_single_run() -> None:
    assert world.from_env({"JOB_COMPLETION_INDEX": "3"}) is None
    session = world.current()
    assert session.size == 1 and session.rank == 0
    before = time.time_ns()
    assert session.start_together() >= before  # no store, no wait
    assert session.all_agree("x", False) is False


def test_identity_as_an_indexed_job_gives_it() -> None:
    w = world.from_env(
        {"WORLD_SIZE": "4", "JOB_COMPLETION_INDEX": "2", "MASTER_ADDR": "bench-0.bench", "MASTER_PORT": "29400"}
    )
    assert w == world.World(rank=2, size=4, master_addr="bench-0.bench", master_port=29400)
    # RANK wins over the completion index; defaults: loopback, 29500
    assert world.from_env({"WORLD_SIZE": "2", "RANK": "1", "JOB_COMPLETION_INDEX": "0"}) == world.World(1, 2)
    # charts/run: one Indexed Job per node, each starting at its node's first rank
    assert world.from_env({"WORLD_SIZE": "4", "KAIML_RANK_OFFSET": "2", "JOB_COMPLETION_INDEX": "1"}).rank == 3


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE"),
        ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE"),
        ({"WORLD_SIZE": "2"}, "JOB_COMPLETION_INDEX"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK"),
        ({"WORLD_SIZE": "4", "KAIML_RANK_OFFSET": "2", "JOB_COMPLETION_INDEX": "2"}, "JOB_COMPLETION_INDEX"),
        ({"WORLD_SIZE": "4", "KAIML_RANK_OFFSET": "-1", "JOB_COMPLETION_INDEX": "0"}, "KAIML_RANK_OFFSET"),
        ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "70000"}, "MASTER_PORT"),
        ({"WORLD_SIZE": "2", "RANK": "0", "KAIML_RENDEZVOUS_TIMEOUT_S": "soon"}, "KAIML_RENDEZVOUS_TIMEOUT_S"),
    ],
)
def test_bad_identity_names_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as e:
        world.from_env(env)
    assert e.value.key == name


def test_start_barrier_starts_every_rank_at_the_published_time() -> None:
    size, port = 4, free_port()
    timeout = timedelta(seconds=20)
    stores = [TCPStore("127.0.0.1", port, size, is_master=True, timeout=timeout, wait_for_workers=False)]
    stores += [TCPStore("127.0.0.1", port, size, is_master=False, timeout=timeout) for _ in range(size - 1)]
    started: dict[int, int] = {}

    def rank(r: int) -> None:
        time.sleep(0.05 * r)  # ranks check in at different times
        started[r] = barrier.start_together(stores[r], r, size, "t", 100_000_000)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    published = int(stores[0].get("t/start"))
    assert sorted(started) == [0, 1, 2, 3]
    assert all(s >= published for s in started.values())
    # rank 0 published only after the last rank (150 ms late) checked in
    assert max(started.values()) - min(started.values()) < 50_000_000  # threads under one GIL on a busy host


def test_a_start_time_already_past_returns_at_once() -> None:
    t0 = time.monotonic()
    barrier.sleep_until(time.time_ns() - 1_000_000_000)
    assert time.monotonic() - t0 < 0.05


def test_lead_time_from_the_environment() -> None:
    assert barrier.lead_ns({}) == 200_000_000
    assert barrier.lead_ns({"KAIML_START_LEAD_MS": "750"}) == 750_000_000
    assert barrier.lead_ns({"KAIML_START_LEAD_MS": "x"}) == 200_000_000


def test_a_rank_waits_for_rank_zeros_name_to_resolve_then_gives_up_naming_it() -> None:
    world.wait_resolvable("localhost", 1.0)  # resolves at once
    started = time.monotonic()
    with pytest.raises(RunnerError, match=r"rendezvous: no-such-rank\.invalid did not resolve within 0.5 s"):
        world.wait_resolvable("no-such-rank.invalid", 0.5, pause_s=0.05)
    assert time.monotonic() - started >= 0.5
