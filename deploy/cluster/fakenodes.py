"""Fake nodes for the local control plane, made from the environment's node pools, so that
scheduling onto pools, taints, tolerations and GPU requests are exercised for real."""

from typing import Any

from deploy.platform.nodepools import NodePool

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
ZONES = ("zone-a", "zone-b", "zone-c")


def fake_node(pool: NodePool, index: int) -> dict[str, Any]:
    """One kwok-managed Node of `pool`; nodes of a pool are spread over three zones."""
    name = f"{pool.name}-{index}"
    capacity = pool.node_capacity()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                **pool.labels,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
                "type": "kwok",
            },
        },
        "spec": {"taints": pool.taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def fake_nodes(pools: dict[str, NodePool]) -> list[dict[str, Any]]:
    return [fake_node(pool, i) for pool in pools.values() for i in range(pool.test_nodes)]


def apply_nodes(api: Any, nodes: list[dict[str, Any]]) -> None:
    """Create the nodes, or bring existing ones back to their pool's definition (`api`: a CoreV1Api)."""
    from kubernetes.client.rest import ApiException

    for node in nodes:
        try:
            api.create_node(node)
        except ApiException as err:
            if err.status != 409:
                raise
            api.patch_node(node["metadata"]["name"], node)
            api.patch_node_status(node["metadata"]["name"], {"status": node["status"]})
