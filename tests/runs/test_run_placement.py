"""Why a named node cannot take a run's ranks now (placement.node_problems, a pure function of the node
and the pods bound to it): readiness, cordon, pool membership, taints, and free GPUs counted from the
requests of the pods that hold them (not finished pods, not the run's own on a re-launch)."""

from typing import Any

from deploy.platform.nodepools import NodePool
from deploy.workloads.runs.placement import need_of, node_problems

POOL = NodePool(
    "gpu-optimized",
    labels={"node-type": "gpu-optimized"},
    taints=[{"key": "node-type", "value": "gpu-optimized", "effect": "NoSchedule"}],
    gpu_type="nvidia-t4",
    gpu_count=4,
)
NEED = need_of(2, 1, {"cpu": "100m", "memory": "128Mi"})


def node(ready: str = "True", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1", "labels": {"node-type": "gpu-optimized", "kubernetes.io/hostname": "n1"}},
        "spec": {"taints": list(POOL.taints), **spec},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletNotReady"}],
            "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"},
        },
    }


def pod(name: str, gpus: int, phase: str = "Running", release: str = "other") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": {"app.kubernetes.io/instance": release}},
        "spec": {"containers": [{"resources": {"requests": {"cpu": "1", "nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": phase},
    }


def test_a_ready_node_of_the_pool_with_room_takes_the_ranks() -> None:
    assert node_problems(node(), [pod("a", 2)], NEED, POOL, "run-x") == []


def test_not_ready_cordoned_or_outside_the_pool_is_said() -> None:
    assert node_problems(node("False"), [], NEED, POOL, "run-x") == ["NotReady (KubeletNotReady)"]
    assert node_problems(node(unschedulable=True), [], NEED, POOL, "run-x") == ["cordoned (unschedulable)"]
    stranger = node()
    stranger["metadata"]["labels"]["node-type"] = "cpu-optimized"
    [why] = node_problems(stranger, [], NEED, POOL, "run-x")
    assert why == "not a node of pool gpu-optimized (lacks its labels node-type=gpu-optimized)"


def test_only_taints_the_pool_does_not_have_keep_the_ranks_off() -> None:
    tainted = node()
    tainted["spec"]["taints"] += [
        {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "gone", "value": "", "effect": "NoExecute"},
    ]
    assert node_problems(tainted, [], NEED, POOL, "run-x") == [
        "tainted gone=:NoExecute, which the run does not tolerate (pool gpu-optimized tolerates only its own taints)"
    ]


def test_free_gpus_count_the_holding_pods_only() -> None:
    holders = [pod("a", 2), pod("b", 1), pod("done", 4, "Succeeded"), pod("mine", 4, release="run-x")]
    assert node_problems(node(), holders, NEED, POOL, "run-x") == [
        "1 free GPUs of 4, the run needs 2 there; held by ns/a, ns/b"
    ]
