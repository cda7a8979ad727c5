"""Keeps the local control plane's processes running.

kwokctl starts each component once and nothing restarts one that exits; the controller manager and
the scheduler exit by design when they lose their leader lease (some 15 s without the API server),
which left a cluster that answered but ran no Job and scheduled no pod. The supervisor is one small
detached process per cluster (`python -m deploy.cluster.supervise CLUSTER_DIR`, pid in
`supervisor.pid`): it restarts a component that is not running with the command line that kwokctl
recorded in the cluster's kwok.yaml (same binary, flags, folder, environment, pid file and log), 1, 2,
4 ... 30 s apart while it keeps exiting, and leaves when the cluster's folder goes.

A file `holds/<component>` in the cluster's folder keeps the supervisor from restarting that
component (the fault tests take the API server away on purpose this way)."""

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from deploy.cluster.procs import alive, read_pid
from deploy.errors import ClusterError

MODULE = "deploy.cluster.supervise"
CONFIG = "kwok.yaml"  # kwokctl's record of the cluster: its components and their command lines
PIDFILE = "supervisor.pid"
POLL_S = 1.0
MAX_DELAY_S = 30.0
STABLE_S = 60.0  # a component up this long has recovered: its next exit is restarted at once


@dataclass(frozen=True)
class Component:
    name: str
    binary: str
    args: tuple[str, ...]
    workdir: Path
    envs: tuple[tuple[str, str], ...]

    @property
    def pidfile(self) -> Path:
        # kwokctl names the pid file and the log after the binary (cluster_dir/bin/<component>)
        return self.workdir / "pids" / f"{Path(self.binary).stem}.pid"

    @property
    def logfile(self) -> Path:
        return self.workdir / "logs" / f"{Path(self.binary).stem}.log"


def components(cluster_dir: Path) -> list[Component]:
    """The cluster's components, in kwokctl's start order (etcd first); [] before kwokctl wrote them."""
    try:
        docs = list(yaml.safe_load_all((cluster_dir / CONFIG).read_text()))
    except (OSError, yaml.YAMLError):
        return []
    config = next((d for d in docs if isinstance(d, dict) and d.get("kind") == "KwokctlConfiguration"), {})
    return [
        Component(
            name=c["name"],
            binary=c["binary"],
            args=tuple(c.get("args") or ()),
            workdir=Path(c.get("workDir") or cluster_dir),
            envs=tuple((e["name"], str(e.get("value", ""))) for e in c.get("envs") or ()),
        )
        for c in config.get("components") or []
        if c.get("binary")
    ]


def running(component: Component) -> bool:
    pid = read_pid(component.pidfile)
    return pid is not None and alive(pid)


def start(component: Component) -> subprocess.Popen[bytes]:
    """Start the component as kwokctl does (its own session, output appended to its log) and record its pid."""
    component.logfile.parent.mkdir(parents=True, exist_ok=True)
    component.pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(component.logfile, "ab") as log:
        proc = subprocess.Popen(
            [component.binary, *component.args],
            cwd=component.workdir,
            env={**os.environ, **dict(component.envs)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    component.pidfile.write_text(str(proc.pid))
    return proc


def held(cluster_dir: Path, name: str) -> bool:
    return (cluster_dir / "holds" / name).exists()


@contextlib.contextmanager
def hold(cluster_dir: Path, name: str) -> Iterator[None]:
    """While inside, the supervisor does not restart `name`."""
    path = cluster_dir / "holds" / name
    path.parent.mkdir(exist_ok=True)
    path.touch()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def supervisor_pid(cluster_dir: Path) -> int | None:
    """The pid of the cluster's running supervisor, or None (a reused pid does not count)."""
    pid = read_pid(cluster_dir / PIDFILE)
    if pid is None or not alive(pid):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if MODULE.encode() in argv and str(cluster_dir).encode() in argv else None


def launch(cluster_dir: Path, timeout: float = 30) -> int:
    """Start the cluster's supervisor unless one runs; its pid. Detached (its own session, no
    terminal) so that it outlives the command that started it."""
    pid = supervisor_pid(cluster_dir)
    if pid is not None:
        return pid
    (cluster_dir / "logs").mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    with open(cluster_dir / "logs" / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, str(cluster_dir)],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    # The supervisor that holds the lock writes its pid (with two launches at once, the other leaves).
    deadline = time.monotonic() + timeout
    while (pid := supervisor_pid(cluster_dir)) is None:
        if proc.poll() not in (None, 0) or time.monotonic() > deadline:
            raise ClusterError(f"the local cluster's supervisor did not start (exit {proc.poll()}): see {log.name}")
        time.sleep(0.05)
    return pid


def stop(cluster_dir: Path, grace: float = 5) -> None:
    """Stop the cluster's supervisor (first, so that it restarts nothing that is being stopped)."""
    pid = supervisor_pid(cluster_dir)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)


class Supervisor:
    """One pass per POLL_S over the components: start each one that is not running, unless it is
    held or its backoff has not run out."""

    def __init__(self, cluster_dir: Path, out: IO[str]) -> None:
        self.cluster_dir = cluster_dir
        self.out = out
        self.children: list[subprocess.Popen[bytes]] = []
        self.restarts: dict[str, int] = {}
        self.next_try: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.known: tuple[int, list[Component]] = (-1, [])  # kwok.yaml's mtime and components

    def components(self) -> list[Component]:
        """kwok.yaml parsed again only when it changed (a parse costs some 40 ms of CPU)."""
        try:
            mtime = (self.cluster_dir / CONFIG).stat().st_mtime_ns
        except OSError:
            return []
        if mtime != self.known[0]:
            self.known = (mtime, components(self.cluster_dir))
        return self.known[1]

    def say(self, message: str) -> None:
        self.out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
        self.out.flush()

    def step(self, now: float) -> None:
        self.children = [c for c in self.children if c.poll() is None]  # reap the ones we started
        for component in self.components():
            name = component.name
            if running(component) or held(self.cluster_dir, name) or now < self.next_try.get(name, 0.0):
                continue
            # restarts in a row; one that had stayed up STABLE_S had recovered: it starts again at once
            n = self.restarts.get(name, 0) if now - self.started.get(name, -STABLE_S) < STABLE_S else 0
            delay = min(2.0**n, MAX_DELAY_S)
            self.say(
                f"{name} is not running: starting it (restart {n + 1} in a row; the next no sooner than {delay:.0f}s)"
            )
            try:
                self.children.append(start(component))
            except OSError as err:
                self.say(f"{name} could not be started: {err}")
            self.restarts[name] = n + 1
            self.next_try[name] = now + delay
            self.started[name] = now

    def run(self) -> None:
        while (self.cluster_dir / CONFIG).exists():
            self.step(time.monotonic())
            time.sleep(POLL_S)
        self.say("the cluster's folder is gone: leaving")


def main(cluster_dir: Path) -> int:
    # One supervisor per cluster: a second one (two `cluster up` at once) leaves at once.
    lock = open(cluster_dir / "supervisor.lock", "w")  # noqa: SIM115 (held until exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0
    (cluster_dir / PIDFILE).write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    supervisor = Supervisor(cluster_dir, sys.stdout)
    supervisor.say(f"supervising {', '.join(c.name for c in components(cluster_dir))}")
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
