"""The start barrier of a multi-rank run: every rank checks in on the rendezvous store (a
torch.distributed TCPStore that rank 0 hosts), rank 0 publishes a common start time a little in
the future, and every rank sleeps until it, so that the ranks' measured windows overlap.

The start time is wall clock (ns since the epoch): it is the only clock that nodes share (through
NTP or chrony). Each rank maps it once onto its own monotonic clock and sleeps on that, so that a
wall-clock step during the wait cannot move the start; the last SPIN_NS are spun, not slept, for
sub-millisecond precision. Each rank records the wall time at which it actually started; the
start skew of a run is max - min of those (runner/aggregate.py). Across nodes it includes their
clock offset, which chrony keeps well under a millisecond on one LAN; on one machine it does not."""

import os
import time
from typing import Protocol

# How far ahead rank 0 sets the start: long enough for every rank to read it first.
DEFAULT_LEAD_MS = 200.0
SPIN_NS = 1_000_000


class Store(Protocol):
    """What the barrier needs of torch.distributed.Store (and what a test double would need)."""

    def set(self, key: str, value: str | bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def wait(self, keys: list[str]) -> None: ...


def lead_ns(env: dict[str, str] | None = None) -> int:
    """KAIML_START_LEAD_MS, else DEFAULT_LEAD_MS: a cluster whose ranks read the store over a slow
    network may need more."""
    env = dict(os.environ) if env is None else env
    raw = env.get("KAIML_START_LEAD_MS", "").strip()
    try:
        ms = float(raw) if raw else DEFAULT_LEAD_MS
    except ValueError:
        ms = DEFAULT_LEAD_MS
    return int(max(ms, 0.0) * 1e6)


def sleep_until(start_wall_ns: int) -> int:
    """Sleep until the wall time `start_wall_ns` (on the monotonic clock); the wall time at which
    the wait actually ended. A start already past returns at once (and shows up as skew)."""
    target = time.monotonic_ns() + (start_wall_ns - time.time_ns())
    while (left := target - time.monotonic_ns()) > SPIN_NS:
        time.sleep((left - SPIN_NS) / 1e9)
    while time.monotonic_ns() < target:
        pass
    # The mapping above reads two clocks one after the other: a preemption between the reads (a busy
    # host) moves the target early. End on the wall clock itself, so no rank starts before the time.
    while (now := time.time_ns()) < start_wall_ns:
        pass
    return now


def start_together(store: Store, rank: int, world_size: int, name: str, lead: int) -> int:
    """Check in as `rank` under `name` (one name per barrier of a run), wait for the common start
    time and sleep until it; the wall time (ns) at which this rank started."""
    store.set(f"{name}/in/{rank}", b"1")
    if rank == 0:
        store.wait([f"{name}/in/{r}" for r in range(world_size)])
        store.set(f"{name}/start", str(time.time_ns() + lead))
    # get() blocks until rank 0 has set the key (or the store's timeout).
    start = int(store.get(f"{name}/start"))
    return sleep_until(start)
