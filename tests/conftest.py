"""Session fixtures shared by every test folder: the real tools and the local control plane."""

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import tools
from deploy.cluster.controlplane import LocalCluster, cluster_logs
from deploy.paths import REPO
from deploy.platform.nodepools import node_pools, union
from deploy.platform.values import environments, load_environment

# The tests send Ctrl-C to the commands they start. A process started in the background by a non-interactive
# shell (a CI runner's, or tools/test.sh's for tests/realnode) inherits SIGINT ignored, and so would every command
# started from here: Python would then never raise KeyboardInterrupt. A Python handler is reset to the default on
# exec, so the commands get Ctrl-C as from a terminal (and tools/test.sh's `kill -INT` reaches this process).
signal.signal(signal.SIGINT, signal.default_int_handler)

# One fixed name so that a crashed run's cluster is found and replaced by the next run; under pytest-xdist
# one per worker (gw0, gw1, ...), each worker's files on a cluster of their own.
TEST_CLUSTER = os.environ.get("KAIML_TEST_CLUSTER", "kaiml-test") + (
    f"-{os.environ['PYTEST_XDIST_WORKER']}" if "PYTEST_XDIST_WORKER" in os.environ else ""
)
FIXTURES = REPO / "tests" / "fixtures"
ARGO_CRD = FIXTURES / "argo-workflowtemplate-crd.yaml"


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The local control plane with fake nodes for the node pools of every environment, so that
    each environment can be installed side by side as on a shared cluster.

    Torn down at the end of the session, on SIGTERM, and (for a crash that skipped both)
    by the next session and by `.ci/run`, which remove a stale cluster of the same name first."""
    # Every pod's log is tests/fixtures/pod.log, but in namespace load-logs a real loadgen controller's
    # (the first document that matches wins).
    load_logs = cluster_logs("test-load-logs", FIXTURES / "loadgen-controller.log", ["load-logs"])
    logs = cluster_logs("test-logs", FIXTURES / "pod.log")
    local = LocalCluster(TEST_CLUSTER, kwok_config=(load_logs, logs))
    local.down()
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        local.down()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        pools = union(*(node_pools(load_environment(env)) for env in environments()))
        local.up(pools, log=lambda m: print(f"[cluster] {m}"))
        yield local
    finally:
        local.down()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def kubeconfig(cluster: LocalCluster) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> list[str]:
    """Command prefix for the project's own kubectl against the test cluster."""
    return [str(tools.tool("kubectl")), "--kubeconfig", str(kubeconfig)]


@pytest.fixture(scope="module")
def argo_crd(kubectl: list[str]) -> Iterator[Path]:
    """A stand-in of Argo's WorkflowTemplate CRD, served from the first test that asks for it to the
    end of its module, then removed (the session cluster is shared)."""
    subprocess.run([*kubectl, "apply", "-f", str(ARGO_CRD)], check=True, capture_output=True)
    established = ["wait", "--for=condition=Established", "-f", str(ARGO_CRD)]
    subprocess.run([*kubectl, *established], check=True, capture_output=True)
    yield ARGO_CRD
    subprocess.run([*kubectl, "delete", "-f", str(ARGO_CRD), "--wait"], check=True, capture_output=True)
