"""The supervisor on its own, with real processes standing in for the components (a kwok.yaml whose
components are `sleep` and `false`): restarts with backoff, holds, one supervisor per cluster, and
it leaves when the cluster's folder goes. The same supervisor on a real cluster: test_lifecycle.py."""

import os
import signal
import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path

import pytest
import yaml

from deploy.cluster import supervise
from deploy.cluster.supervise import Supervisor, alive, components, read_pid


def kwok_yaml(folder: Path, **binaries: tuple[str, list[str]]) -> None:
    config = {
        "kind": "KwokctlConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "components": [
            {
                "name": name,
                "binary": binary,
                "args": args,
                "workDir": str(folder),
                "envs": [{"name": "X", "value": "y"}],
            }
            for name, (binary, args) in binaries.items()
        ],
    }
    (folder / supervise.CONFIG).write_text(yaml.safe_dump(config))


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    supervise.stop(tmp_path)
    for pidfile in (tmp_path / "pids").glob("*.pid"):
        pid = read_pid(pidfile)
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


def until(check: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_components_are_read_from_kwokctl_s_record(cluster_dir: Path) -> None:
    kwok_yaml(cluster_dir, etcd=("/bin/sleep", ["300"]))
    (etcd,) = components(cluster_dir)
    assert (etcd.name, etcd.args, etcd.envs) == ("etcd", ("300",), (("X", "y"),))
    assert etcd.pidfile == cluster_dir / "pids" / "sleep.pid"  # named after the binary, as kwokctl does
    assert components(cluster_dir / "missing") == []


def test_an_exiting_component_is_restarted_with_backoff(cluster_dir: Path) -> None:
    kwok_yaml(cluster_dir, crasher=("/bin/false", []))
    out = StringIO()
    s = Supervisor(cluster_dir, out)
    started = []
    for now in [0, 0.5, 0.9, 1.0, 2.9, 3.0, 6.9, 7.0]:
        until(lambda: not supervise.running(components(cluster_dir)[0]))  # /bin/false has exited
        before = out.getvalue().count("starting it")
        s.step(now)
        if out.getvalue().count("starting it") > before:
            started.append(now)
    assert started == [0, 1.0, 3.0, 7.0]  # 1, 2, 4 s apart
    assert "crasher is not running: starting it (restart 4 in a row; the next no sooner than 8s)" in out.getvalue()


def test_a_held_component_stays_down_and_a_stable_one_restarts_at_once(cluster_dir: Path) -> None:
    kwok_yaml(cluster_dir, sleeper=("/bin/sleep", ["300"]))
    (sleeper,) = components(cluster_dir)
    s = Supervisor(cluster_dir, StringIO())
    s.step(0)
    first = read_pid(sleeper.pidfile)
    assert first and alive(first)
    with supervise.hold(cluster_dir, "sleeper"):
        os.kill(first, signal.SIGKILL)
        until(lambda: not alive(first))
        s.step(100)
        assert not supervise.running(sleeper)
    s.step(100)  # it ran 100 s: its restarts in a row start again from the first
    second = read_pid(sleeper.pidfile)
    assert second != first and second and alive(second)
    assert s.restarts["sleeper"] == 1


def test_one_detached_supervisor_per_cluster_which_leaves_with_the_cluster(cluster_dir: Path) -> None:
    kwok_yaml(cluster_dir, sleeper=("/bin/sleep", ["300"]))
    (sleeper,) = components(cluster_dir)
    pid = supervise.launch(cluster_dir)
    assert supervise.launch(cluster_dir) == pid  # a second launch finds it
    until(lambda: supervise.running(sleeper))
    first = read_pid(sleeper.pidfile)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    until(lambda: supervise.running(sleeper) and read_pid(sleeper.pidfile) != first)
    (cluster_dir / supervise.CONFIG).unlink()  # what `kwokctl delete cluster` leaves
    until(lambda: not alive(pid))
    assert supervise.supervisor_pid(cluster_dir) is None
