"""A local cluster of its own with one real node (kubelet, containerd, runc), the runner image built
here and pushed to the cluster's registry, and the dev platform installed. Separate from the shared
session cluster so that the rest of the suite is unaffected; every test here is marked `realnode`.

A host that cannot run the real node (no root, no cgroups, missing packages) fails these tests with
one paragraph that says what is missing: they never skip."""

from collections.abc import Iterator

import pytest
from realnode_env import NAME, POOL, TAG, VALUES, RealCluster, cli

from deploy.cluster.controlplane import LocalCluster
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The test that takes the real node down runs after every other one, whatever its file's name."""
    items.sort(key=lambda item: item.name.startswith("test_cluster_down_"))


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    local = LocalCluster(NAME, real_node_pool=POOL)
    local.down()
    pools = node_pools(load_environment("dev"))  # real-cpu among them
    try:
        local.up(pools, log=lambda m: print(f"[realnode] {m}"))
        info = local.real_node().info()
        runs = tmp_path_factory.mktemp("realnode-runs")
        pushed = cli(None, runs, "images", "push", "--registry", info["registry"], "--tag", TAG, timeout=1800)
        assert pushed.returncode == 0, pushed.stderr
        real = RealCluster(local, info["registry"], info["node"], runs)
        installed = real.cli("--env", "dev", "-f", str(VALUES), "--registry", info["registry"], "--tag", TAG)
        assert installed.returncode == 0, installed.stderr
        yield real
    finally:
        local.down()
