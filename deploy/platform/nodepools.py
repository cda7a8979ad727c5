"""Node pools as data (`global.nodePools` in values): what the charts schedule onto and the
local cluster, the `nodes` checks and self-managed clusters label and taint."""

from dataclasses import dataclass, field
from typing import Any

from deploy.errors import ValuesError

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class NodePool:
    name: str
    labels: dict[str, str]
    taints: list[dict[str, str]] = field(default_factory=list)
    gpu_type: str = ""
    gpu_count: int = 0
    capacity: dict[str, str] = field(default_factory=dict)
    test_nodes: int = 0
    spot: bool = False  # reclaimable capacity: where spot workloads run
    optional: bool = False  # may have no nodes (the local cluster's real node): no check asks for one

    def node_capacity(self) -> dict[str, str]:
        """Allocatable resources of one node of this pool, GPUs included."""
        cap = {"cpu": "8", "memory": "32Gi", "pods": "110", **{k: str(v) for k, v in self.capacity.items()}}
        if self.gpu_count:
            cap[GPU_RESOURCE] = str(self.gpu_count)
        return cap


def node_pools(values: dict[str, Any]) -> dict[str, NodePool]:
    """Parse `global.nodePools` from merged environment values."""
    raw = (values.get("global") or {}).get("nodePools")
    if not isinstance(raw, dict) or not raw:
        raise ValuesError("global.nodePools is missing or empty: the environment defines no node pools.")
    pools = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not spec.get("labels"):
            raise ValuesError(f"global.nodePools.{name}.labels: every node pool needs at least one label.")
        gpu = spec.get("gpu") or {}
        pools[name] = NodePool(
            name=name,
            labels={k: str(v) for k, v in spec["labels"].items()},
            taints=list(spec.get("taints") or []),
            gpu_type=gpu.get("type", ""),
            gpu_count=int(gpu.get("count", 0)),
            capacity=dict(spec.get("capacity") or {}),
            test_nodes=int(spec.get("testNodes", 0)),
            spot=bool(spec.get("spot", False)),
            optional=bool(spec.get("optional", False)),
        )
    return pools


def union(*pool_sets: dict[str, NodePool]) -> dict[str, NodePool]:
    """Pools of several environments sharing one cluster: a pool defined by more than one keeps
    the definition that asks for the most test nodes."""
    merged: dict[str, NodePool] = {}
    for pools in pool_sets:
        for name, pool in pools.items():
            if name not in merged or pool.test_nodes > merged[name].test_nodes:
                merged[name] = pool
    return merged
