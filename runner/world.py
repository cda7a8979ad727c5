"""Who this process is in a multi-rank run, and its rendezvous with the other ranks.

Identity comes from the environment as a Kubernetes Indexed Job and a headless Service give it:
RANK (else KAIML_RANK_OFFSET + JOB_COMPLETION_INDEX: charts/run gives each node its own Indexed Job
whose first rank is the offset), WORLD_SIZE, and MASTER_ADDR/MASTER_PORT, rank 0's stable DNS
name in the cluster (`<job>-0.<service>`) or 127.0.0.1 on one machine (`python -m runner.ranks`).
Without WORLD_SIZE the run is a single one and nothing here touches the network.

One torch.distributed TCPStore, hosted by rank 0, serves both modes: the start barrier
(runner/barrier.py), agreement on the server scenario's search steps, and, in the distributed
mode, the process group's rendezvous (a prefix of the same store)."""

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from runner import barrier
from runner.errors import ConfigError, RunnerError

if TYPE_CHECKING:
    import torch

DEFAULT_PORT = 29500
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT
    timeout_s: float = DEFAULT_TIMEOUT_S


def _int_env(env: dict[str, str], name: str, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw.isdigit() or int(raw) < minimum or (maximum is not None and int(raw) > maximum):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(name, f"must be an integer >= {minimum}{bound}, not {raw!r}")
    return int(raw)


def from_env(env: dict[str, str] | None = None) -> World | None:
    """The rank's identity, or None for a single run (WORLD_SIZE unset)."""
    env = dict(os.environ) if env is None else env
    if not env.get("WORLD_SIZE", "").strip():
        return None
    size = _int_env(env, "WORLD_SIZE", 1)
    if env.get("RANK", "").strip():
        rank = _int_env(env, "RANK", 0, size - 1)
    else:
        offset = _int_env(env, "KAIML_RANK_OFFSET", 0, size - 1) if env.get("KAIML_RANK_OFFSET", "").strip() else 0
        rank = offset + _int_env(env, "JOB_COMPLETION_INDEX", 0, size - 1 - offset)
    port = _int_env(env, "MASTER_PORT", 1, 65535) if env.get("MASTER_PORT", "").strip() else DEFAULT_PORT
    timeout = env.get("KAIML_RENDEZVOUS_TIMEOUT_S", "").strip()
    try:
        timeout_s = float(timeout) if timeout else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError("KAIML_RENDEZVOUS_TIMEOUT_S", f"must be a number of seconds, not {timeout!r}") from None
    addr = env.get("MASTER_ADDR", "").strip() or "127.0.0.1"
    return World(rank=rank, size=size, master_addr=addr, master_port=port, timeout_s=timeout_s)


def wait_resolvable(host: str, timeout_s: float, pause_s: float = 0.2) -> None:
    """Until `host` resolves: in a cluster rank 0's DNS name (a headless Service's record) appears a
    moment after its pod is created, and a rank that starts first must not fail on it."""
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.getaddrinfo(host, None)
            return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise RunnerError(f"rendezvous: {host} did not resolve within {timeout_s:g} s ({e})") from e
            time.sleep(pause_s)


class Session:
    """A run's view of the other ranks. For a single run (world None) every method is local: the
    barrier returns at once and no store is opened."""

    def __init__(self, world: World | None) -> None:
        self.world = world
        self._store: Any = None
        self._group = False
        self._barriers = 0

    @property
    def rank(self) -> int:
        return self.world.rank if self.world else 0

    @property
    def size(self) -> int:
        return self.world.size if self.world else 1

    def store(self) -> Any:
        """The TCPStore (rank 0 hosts it; the others connect, retrying until the timeout)."""
        if self._store is None:
            assert self.world is not None
            from torch.distributed import TCPStore

            w = self.world
            if w.rank != 0:
                wait_resolvable(w.master_addr, w.timeout_s)
            try:
                self._store = TCPStore(
                    w.master_addr,
                    w.master_port,
                    w.size,
                    is_master=w.rank == 0,
                    timeout=timedelta(seconds=w.timeout_s),
                    wait_for_workers=False,
                )
            except Exception as e:
                raise RunnerError(f"rendezvous at {w.master_addr}:{w.master_port} (rank {w.rank}) failed: {e}") from e
        return self._store

    def start_together(self) -> int:
        """The start barrier; the wall time (ns) at which this rank's measured window starts."""
        import time

        if self.world is None or self.world.size == 1:
            return time.time_ns()
        self._barriers += 1
        return barrier.start_together(self.store(), self.rank, self.size, f"start-{self._barriers}", barrier.lead_ns())

    def all_agree(self, name: str, ok: bool) -> bool:
        """True when every rank says ok (each rank's vote is published on the store)."""
        if self.world is None or self.world.size == 1:
            return ok
        store = self.store()
        store.set(f"vote/{name}/{self.rank}", b"1" if ok else b"0")
        keys = [f"vote/{name}/{r}" for r in range(self.size)]
        store.wait(keys)
        return all(store.get(k) == b"1" for k in keys)

    def join(self, device: "torch.device") -> tuple["torch.device", str]:
        """The device of this rank (on CUDA without an index: one GPU per rank, round robin), set as
        current, and the process group joined on it: (device, backend)."""
        import torch

        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", self.rank % torch.cuda.device_count())
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return device, self.process_group(device)

    def process_group(self, device: "torch.device") -> str:
        """Join the torch.distributed process group (gloo on CPU, nccl on CUDA) over this run's
        store; the backend's name."""
        import torch.distributed as dist

        if self.world is None:
            raise ConfigError(
                "WORLD_SIZE",
                "unset: this kind runs as a torch.distributed process group; start it with "
                "`python -m runner.ranks --ranks N` or as an Indexed Job with WORLD_SIZE, RANK and MASTER_ADDR",
            )
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not self._group:
            # device_id (torch >= 2.3) binds the group to the rank's GPU; the runner image's Debian torch
            # 1.13 has no such parameter, and a CPU group needs none.
            bind = {"device_id": device} if device.type == "cuda" else {}
            dist.init_process_group(
                backend,
                store=dist.PrefixStore("pg", self.store()),
                rank=self.rank,
                world_size=self.size,
                timeout=timedelta(seconds=self.world.timeout_s),
                **bind,
            )
            self._group = True
        return backend

    def close(self) -> None:
        """Leave the process group; rank 0, which hosts the store, waits (30 s at most) until every
        rank is done with it before its process may exit."""
        if self._store is not None and self.world is not None:
            self._store.set(f"done/{self.rank}", b"1")
            if self.rank == 0:
                with contextlib.suppress(Exception):  # a rank that died never checks out
                    self._store.wait([f"done/{r}" for r in range(self.size)], timedelta(seconds=30))
        if self._group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._group = False


_CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar("runner_session", default=None)


def current() -> Session:
    """The session of the run in progress (a single run's outside `joined`)."""
    return _CURRENT.get() or Session(None)


@contextlib.contextmanager
def joined(world: World | None) -> Iterator[Session]:
    """The run's session for the kinds (`current()`), closed (process group left) at the end."""
    session = Session(world)
    token = _CURRENT.set(session)
    try:
        yield session
    finally:
        _CURRENT.reset(token)
        session.close()
