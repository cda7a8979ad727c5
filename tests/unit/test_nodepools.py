"""Node pools are read from values as data; fake nodes carry exactly their pool's definition."""

import pytest

from deploy.cluster.fakenodes import fake_nodes
from deploy.errors import ValuesError
from deploy.platform.nodepools import NodePool, node_pools, union

GPU_POOL = {
    "labels": {"node-type": "gpu-optimized", "gpu-type": "nvidia-t4"},
    "taints": [{"key": "node-type", "value": "gpu-optimized", "effect": "NoSchedule"}],
    "gpu": {"type": "nvidia-t4", "count": 4},
    "capacity": {"cpu": "32", "memory": "128Gi"},
    "testNodes": 2,
}


def test_pools_parse_into_labels_taints_and_capacity() -> None:
    pool = node_pools({"global": {"nodePools": {"gpu-optimized": GPU_POOL}}})["gpu-optimized"]
    assert pool.labels == {"node-type": "gpu-optimized", "gpu-type": "nvidia-t4"}
    assert pool.taints == GPU_POOL["taints"]
    assert pool.node_capacity() == {"cpu": "32", "memory": "128Gi", "pods": "110", "nvidia.com/gpu": "4"}


def test_fake_nodes_carry_labels_taints_and_gpus_spread_over_zones() -> None:
    nodes = fake_nodes(node_pools({"global": {"nodePools": {"gpu-optimized": GPU_POOL}}}))
    assert [n["metadata"]["name"] for n in nodes] == ["gpu-optimized-0", "gpu-optimized-1"]
    assert {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes} == {"zone-a", "zone-b"}
    for node in nodes:
        assert node["metadata"]["labels"]["gpu-type"] == "nvidia-t4"
        assert node["spec"]["taints"] == GPU_POOL["taints"]
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "global.nodePools is missing"),
        ({"global": {"nodePools": {"x": {"labels": {}}}}}, "global.nodePools.x.labels"),
    ],
)
def test_bad_pools_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ValuesError, match=message):
        node_pools(values)


def test_union_keeps_the_larger_pool() -> None:
    small, big = NodePool("a", {"k": "v"}, test_nodes=1), NodePool("a", {"k": "v"}, test_nodes=3)
    assert union({"a": small}, {"a": big}, {"a": small})["a"] is big


def test_an_optional_pool_without_nodes_is_not_asked_for() -> None:
    """dev's real-cpu (the local cluster's real node) has no node on a dev cluster elsewhere: `nodes` and the
    deploy's preflight (tests/deploy: dev deploys with --missing-pools fail) accept that, and still ask for
    every other pool's."""
    from deploy.platform.nodecheck import check_nodes
    from deploy.platform.values import load_environment

    pools = node_pools(load_environment("dev"))
    assert pools["real-cpu"].optional and pools["real-cpu"].test_nodes == 0
    assert not any(p.optional for name, p in pools.items() if name != "real-cpu")
    nodes = [{"metadata": {"name": n["metadata"]["name"], "labels": n["metadata"]["labels"]}, "spec": n["spec"]}
             for n in fake_nodes(pools)]  # fmt: skip
    report = check_nodes(nodes, pools, {})
    assert report.pools["real-cpu"] == [] and report.empty == [] and report.ok
    assert check_nodes(nodes[1:], pools, {}).empty == [nodes[0]["metadata"]["name"].rsplit("-", 1)[0]]
