"""The API server restarts in the middle of a deploy: the releases caught by it are retried from
whatever state they were left in, and the deploy finishes with every release deployed."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults import restart_apiserver
from kubernetes import client, watch

from deploy import tools
from deploy.cluster.local import LocalCluster
from deploy.nodepools import node_pools
from deploy.paths import REPO
from deploy.values import load_environment

pytestmark = pytest.mark.cluster


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of its own: its API server goes away on purpose."""
    local = LocalCluster("kaiml-restart")
    local.down()
    try:
        local.up(node_pools(load_environment("dev")), log=print)
        yield local
    finally:
        local.down()


def helm_releases(kubeconfig: Path) -> dict[str, str]:
    """Release name -> status, every status included (Helm 4 lists them all by default)."""
    done = subprocess.run(
        [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig), "list", "-o", "json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return {r["name"]: r["status"] for r in json.loads(done.stdout)}


def wait_for_release_record(cluster: LocalCluster, release: str, timeout: float = 120) -> None:
    """Return the moment Helm writes the release's first record (it then creates the objects)."""
    core = client.CoreV1Api(cluster.api_client())
    stream = watch.Watch().stream(
        core.list_namespaced_secret, "default", label_selector=f"owner=helm,name={release}", timeout_seconds=timeout
    )
    for _event in stream:
        return
    raise AssertionError(f"Helm never started {release}")


def test_deploy_survives_an_api_server_restart(own_cluster: LocalCluster, tmp_path: Path) -> None:
    kubeconfig = own_cluster.kubeconfig
    deploy = subprocess.Popen(
        [sys.executable, "-m", "deploy", "--env", "dev", "--kubeconfig", str(kubeconfig), "-o", "json"],
        cwd=REPO,
        env={**os.environ, "KAIML_RUNS_DIR": str(tmp_path), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Strike while Helm creates the policy release's objects (namespaces, quotas, RBAC, policies).
    wait_for_release_record(own_cluster, "dev-platform-policy")
    restart_apiserver(own_cluster, downtime=3)

    out, err = deploy.communicate(timeout=300)
    assert deploy.returncode == 0, err
    summary = json.loads(out)
    assert summary["ok"]
    assert {r["action"] for r in summary["releases"]} == {"installed"}, summary["releases"]
    policy = next(r for r in summary["releases"] if r["release"] == "dev-platform-policy")
    assert "lost the API server" in policy["detail"], summary["releases"]
    assert set(helm_releases(kubeconfig).values()) == {"deployed"}
