"""The API server restarts in the middle of a deploy: the releases caught by it are retried from
whatever state they were left in, and the deploy finishes with every release deployed. After a
30 s outage the controller manager and the scheduler have lost their leader leases and exited: the
cluster's supervisor starts them again, or no Deployment would get a pod."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from envsecrets import create_credentials
from faults import restart_apiserver
from kubernetes import client, watch

from deploy import tools
from deploy.cluster.controlplane import LocalCluster
from deploy.paths import REPO
from deploy.platform.nodepools import node_pools, union
from deploy.platform.values import environments, load_environment

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of its own, with nodes for every environment: its API server goes away on purpose."""
    local = LocalCluster("kaiml-restart")
    local.down()
    try:
        local.up(union(*(node_pools(load_environment(env)) for env in environments())), log=print)
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


def start_deploy(env: str, kubeconfig: Path, runs: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deploy", "--env", env, "--kubeconfig", str(kubeconfig), "-o", "json"],
        cwd=REPO,
        env={**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_deploy_survives_an_api_server_restart(own_cluster: LocalCluster, tmp_path: Path) -> None:
    kubeconfig = own_cluster.kubeconfig
    deploy = start_deploy("dev", kubeconfig, tmp_path)
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


def test_deploy_converges_after_a_30s_api_server_outage(own_cluster: LocalCluster, tmp_path: Path) -> None:
    kubeconfig = own_cluster.kubeconfig
    create_credentials(own_cluster.api_client(), "staging")  # as an operator does before the first deploy
    deploy = start_deploy("staging", kubeconfig, tmp_path)
    wait_for_release_record(own_cluster, "staging-platform-policy")
    restart_apiserver(own_cluster, downtime=30)

    out, err = deploy.communicate(timeout=600)
    assert deploy.returncode == 0, err
    summary = json.loads(out)
    assert summary["ok"], summary["releases"]
    staging = {name: status for name, status in helm_releases(kubeconfig).items() if name.startswith("staging-")}
    assert staging and set(staging.values()) == {"deployed"}, staging
    # The outage outlasted the leader leases: what exited was started again, and the cluster is whole.
    assert own_cluster.running(), own_cluster.component_states()
    log = (own_cluster.cluster_dir / "logs" / "supervisor.log").read_text()
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert f"{component} is not running: starting it" in log, log
