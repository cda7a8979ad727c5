"""Each environment fits where it is installed: its pods fit the nodes of their pools
(the local test cluster is made of `testNodes` nodes of each pool's `capacity`), and the
namespace quotas and limit ranges admit them, a rolling update's extra pod included."""

from collections import defaultdict

from chartkit import Manifest, Pod, environment_values, node_pools, pods, quantity

MAX_TEST_NODES = 14
GPU = "nvidia.com/gpu"


def total(pod: Pod, kind: str, resource: str) -> float:
    return sum(quantity(c["resources"][kind].get(resource, 0)) for c in pod.spec["containers"])


def running(manifests: list[Manifest]) -> list[Pod]:
    """Pods that run all the time (workflow steps come and go)."""
    return [p for p in pods(manifests) if not p.source.startswith("WorkflowTemplate/")]


def test_test_clusters_stay_small_and_cover_every_pool_in_use(manifests: list[Manifest], env: str) -> None:
    pools = node_pools(env)
    assert sum(p.get("testNodes", 0) for p in pools.values()) <= MAX_TEST_NODES
    for pod in pods(manifests):
        assert pools[pod.labels["kai-ml.io/node-pool"]].get("testNodes", 0) >= 1, pod.source


def test_pods_fit_the_test_nodes_of_their_pools(manifests: list[Manifest], env: str) -> None:
    pools = node_pools(env)
    for pod in pods(manifests):
        node = pools[pod.labels["kai-ml.io/node-pool"]]
        assert total(pod, "requests", "cpu") <= quantity(node["capacity"]["cpu"]), pod.source
        assert total(pod, "requests", "memory") <= quantity(node["capacity"]["memory"]), pod.source
        assert total(pod, "requests", GPU) <= node.get("gpu", {}).get("count", 0), pod.source
    used: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for pod in running(manifests):
        pool = used[pod.labels["kai-ml.io/node-pool"]]
        for resource in ("cpu", "memory", GPU):
            pool[resource] += pod.replicas * total(pod, "requests", resource)
        pool["pods"] += pod.replicas
    for name, need in used.items():
        node, count = pools[name], pools[name]["testNodes"]
        have = {
            "cpu": quantity(node["capacity"]["cpu"]),
            "memory": quantity(node["capacity"]["memory"]),
            GPU: node.get("gpu", {}).get("count", 0),
            "pods": node["capacity"]["pods"],
        }
        for resource, amount in need.items():
            assert amount <= count * have[resource], f"pool {name}: {resource}"


def test_quotas_admit_the_running_pods_and_a_rolling_update(manifests: list[Manifest]) -> None:
    quotas = [m for m in manifests if m["kind"] == "ResourceQuota" and "scopeSelector" not in m["spec"]]
    for quota in quotas:
        ns, hard = quota["metadata"]["namespace"], quota["spec"]["hard"]
        here = [p for p in running(manifests) if p.namespace == ns]
        need = {"pods": sum(p.replicas + 1 for p in here)}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                need[f"{kind}.{resource}"] = sum((p.replicas + 1) * total(p, kind, resource) for p in here)
        need[f"requests.{GPU}"] = sum((p.replicas + 1) * total(p, "requests", GPU) for p in here)
        for key, amount in need.items():
            assert amount <= quantity(hard[key]), f"{ns}: {key}"


def test_limit_ranges_admit_every_container(manifests: list[Manifest]) -> None:
    ceilings = {
        m["metadata"]["namespace"]: m["spec"]["limits"][0].get("max", {})
        for m in manifests
        if m["kind"] == "LimitRange"
    }
    for pod in pods(manifests):
        for container in pod.spec["containers"]:
            for resource, ceiling in ceilings[pod.namespace].items():
                assert quantity(container["resources"]["limits"][resource]) <= quantity(ceiling), pod.source


def test_the_deploy_tool_reads_every_environments_pools(env: str) -> None:
    """The local cluster is built by deploy.platform.nodepools from the same `global.nodePools`."""
    from deploy.platform.nodepools import node_pools as tool_pools

    pools = tool_pools(environment_values(env))
    assert {name: pool.test_nodes for name, pool in pools.items()} == {
        name: pool.get("testNodes", 0) for name, pool in node_pools(env).items()
    }
