"""The local cluster outlives its components' crashes: a read-only command brings a cluster whose API
server died back from its data (never replaces it), the supervisor restarts what exits, `cluster
status` says which component is missing, and `cluster down` (the only command that removes a
cluster) leaves no process and no state behind.

The cluster here is the user's default one (`kaiml`), in a state folder of its own, so that the
commands find it as a user's commands do."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults import kill, stopped, wait_running
from kubernetes import client

from deploy.cluster import supervise
from deploy.cluster.controlplane import LocalCluster, _alive
from deploy.errors import ClusterError
from deploy.paths import REPO
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG_STATE_HOME of the user whose cluster this is."""
    folder = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(folder))
        mp.setenv("KAIML_RUNS_DIR", str(folder / "runs"))
        yield folder


@pytest.fixture(scope="module")
def users(state: Path) -> Iterator[LocalCluster]:
    local = LocalCluster()
    try:
        local.up(node_pools(load_environment("dev")), log=print)
        yield local
    finally:
        local.down()


def deploy_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def until(check, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def test_a_read_only_command_brings_the_cluster_back_with_its_data(users: LocalCluster) -> None:
    core = client.CoreV1Api(users.api_client())
    core.create_namespaced_secret("default", {"metadata": {"name": "kept"}, "stringData": {"token": "x"}})
    # Only the API server down, and nobody to restart it (a cluster from before supervision, or
    # one whose supervisor was killed): etcd holds the data.
    supervise.stop(users.cluster_dir)
    first = kill(users, "kube-apiserver")
    assert not users.healthy()

    done = deploy_cli("status", "--env", "dev", "--local")

    assert done.returncode == 0, done.stderr
    assert "removing" not in done.stderr
    assert "kube-apiserver" in done.stderr and "restarting from its data" in done.stderr, done.stderr
    assert users.running()
    assert users._pids()["kube-apiserver"] != first
    secret = client.CoreV1Api(users.api_client()).read_namespaced_secret("kept", "default")
    assert secret.metadata.name == "kept"


def test_the_supervisor_restarts_a_component_that_exits(users: LocalCluster) -> None:
    wait_running(users)
    first = kill(users, "kube-controller-manager")
    until(lambda: _alive(users._pids()["kube-controller-manager"]), "the controller manager to be restarted", 30)
    assert users._pids()["kube-controller-manager"] != first
    log = (users.cluster_dir / "logs" / "supervisor.log").read_text()
    assert "kube-controller-manager is not running: starting it" in log


def test_cluster_status_names_a_missing_component(users: LocalCluster) -> None:
    wait_running(users)
    with stopped(users, "kube-scheduler"):
        degraded = deploy_cli("cluster", "status")
        with pytest.raises(ClusterError) as not_ready:  # what `cluster up` waits for
            users.wait_ready(timeout=3)
    assert degraded.returncode == 1, degraded.stderr
    assert "degraded (5 of 6 running)" in degraded.stderr, degraded.stderr
    rows = [line.removeprefix("> ").split() for line in degraded.stderr.splitlines() if line.startswith(">   ")]
    lines = {row[0]: row[1:] for row in rows}
    assert lines["kube-scheduler"] == ["not", "running", "(held)"]
    assert lines["kube-apiserver"][0] == "running" and lines["supervisor"][0] == "running"
    assert "kube-scheduler to be restarted" in str(not_ready.value)

    wait_running(users)
    whole = deploy_cli("cluster", "status")
    assert whole.returncode == 0, whole.stderr
    assert f"local cluster {users.name!r}: running" in whole.stderr


def test_down_leaves_no_process_and_no_state(users: LocalCluster) -> None:
    wait_running(users)
    pids = [*users._pids().values(), supervise.supervisor_pid(users.cluster_dir)]
    done = deploy_cli("cluster", "down")
    assert done.returncode == 0, done.stderr
    assert not users.cluster_dir.exists()
    assert not [pid for pid in pids if pid and _alive(pid)]
