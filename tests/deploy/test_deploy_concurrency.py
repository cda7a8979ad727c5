"""Two runs on one environment, and a run stopped by Ctrl-C, against the local control plane with the
fixture suite (after test_deploy_cluster.py: dev is deployed). A release is held in progress by a pod
that kwok keeps un-Ready for a while (the fixture coordinator's `slow` value)."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config

from deploy.paths import REPO
from deploy.platform.lock import lease_name

pytestmark = pytest.mark.cluster
NS = "default"


def _env(suite) -> dict[str, str]:
    return {
        **os.environ,
        "KAIML_CHARTS_DIR": str(suite.charts),
        "KAIML_VALUES_DIR": str(suite.values),
        "KAIML_RUNS_DIR": str(suite.runs),
        "COLUMNS": "400",
    }


def start(suite, kube: Path, *args: str) -> subprocess.Popen[str]:
    """A deploy in its own process group, as a terminal runs it (Ctrl-C reaches the whole group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "deploy", *args, "--kubeconfig", str(kube)],
        cwd=REPO,
        env=_env(suite),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_deploy(suite, kube: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args, "--kubeconfig", str(kube)],
        cwd=REPO,
        env=_env(suite),
        capture_output=True,
        text=True,
        timeout=180,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def coordination(kube: Path) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(config.new_client_from_config(str(kube)))


def wait_for_lease(kube: Path, env: str, timeout: float = 60) -> client.V1Lease:
    api = coordination(kube)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return api.read_namespaced_lease(lease_name(env), NS)
        except client.ApiException as err:
            if err.status != 404:
                raise
        time.sleep(0.2)
    raise AssertionError(f"no deploy lock for {env} after {timeout}s")


def lease_exists(kube: Path, env: str) -> bool:
    try:
        coordination(kube).read_namespaced_lease(lease_name(env), NS)
        return True
    except client.ApiException as err:
        assert err.status == 404
        return False


def test_a_second_run_is_refused_or_waits_with_the_holder_named(shared_suite, kube):
    first = start(shared_suite, kube, "--env", "dev", "--set", "coordinator.slow=20s")
    waiting = None
    try:
        lease = wait_for_lease(kube, "dev")
        assert f"pid {first.pid}" in lease.spec.holder_identity
        # Started while the first holds the lock for at least the slow pod's 20 s.
        waiting = start(shared_suite, kube, "--env", "dev", "--lock-wait", "120", "--set", "coordinator.message=second")
        refused = run_deploy(shared_suite, kube, "--env", "dev", "--lock-wait", "0")
        assert refused.returncode == 1, refused.stderr
        assert "being changed by another run" in refused.stderr and f"pid {first.pid}" in refused.stderr
        assert "Nothing was applied" in refused.stderr and "Traceback" not in refused.stderr
        code, err = finish(first)
        assert code == 0, err
        code, err = finish(waiting)
        assert code == 0, err
        assert "waiting for the deploy lock of 'dev'" in err
    finally:
        for proc in (first, waiting):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert not lease_exists(kube, "dev")  # released by the last holder


def test_a_lock_left_by_a_crashed_run_expires(shared_suite, kube):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    coordination(kube).create_namespaced_lease(
        NS,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name=lease_name("dev")),
            spec=client.V1LeaseSpec(
                holder_identity="ci@gone pid 1", lease_duration_seconds=30, acquire_time=old, renew_time=old
            ),
        ),
    )
    done = run_deploy(
        shared_suite, kube, "--env", "dev", "--set", "coordinator.message=after-crash", "--lock-wait", "0"
    )
    assert done.returncode == 0, done.stderr
    assert not lease_exists(kube, "dev")


def test_ctrl_c_says_what_was_applied_and_the_rerun_converges(shared_suite, kube):
    proc = start(shared_suite, kube, "--env", "dev", "--set", "coordinator.slow=30s")
    try:
        wait_for_lease(kube, "dev")
        core = client.CoreV1Api(config.new_client_from_config(str(kube)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the slow pod exists: the upgrade is under way
            pods = core.list_namespaced_pod("fx-dev-platform", label_selector="app=dev-coordinator-slow").items
            if any(p.metadata.deletion_timestamp is None and not _ready(p) for p in pods):
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        code, err = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 130, err
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert "Interrupted while applying: dev-coordinator (" in err
    assert "Applied: nothing" in err or "Applied: platform-cluster" in err
    rerun = run_deploy(shared_suite, kube, "--env", "dev")
    assert rerun.returncode == 0, rerun.stderr


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
