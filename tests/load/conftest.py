"""The platform's cluster-wide release (PriorityClasses, ClusterRoles) on the session's local control
plane, once for the load tests that need a cluster, and a target endpoint on loopback."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from load_cli import cli, target


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("load-runs")


@pytest.fixture(scope="module")
def platform_cluster(kubeconfig: Path, runs: Path) -> Path:
    """platform-cluster installed (load runs need its PriorityClasses); left for the session (the
    deploy tests replace it as they need)."""
    done = cli(kubeconfig, runs, "--env", "dev", "--only", "platform-cluster")
    assert done.returncode == 0, done.stderr
    return kubeconfig


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with target("--ttft-ms", "10", "--itl-ms", "2", "--output-tokens", "8") as url:
        yield url
