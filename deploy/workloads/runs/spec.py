"""Run specs (examples/runs/*.yaml): a benchmark on several ranks at once, validated and turned into the
values of charts/run (one Indexed Job per named node, a headless Service for the rendezvous).

Pure functions of the spec and the environment's values, so a bad spec is refused before anything is
applied, with the file, the key and the rule named. What depends on the cluster's state now (a named
node's free GPUs, taints, readiness) is checked by placement.py just before the install."""

from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from deploy.errors import ValuesError
from deploy.platform.nodepools import GPU_RESOURCE, NodePool, node_pools
from deploy.workloads.bench.sweep import policy_values, priority_classes
from deploy.workloads.specfile import SpecSchema

SCHEMA_FILE = Path(__file__).with_name("run.schema.json")
DEFAULTS: dict[str, Any] = {
    "ranksPerNode": 1,
    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    "priorityClassName": "high-priority-batch",
    "startTimeoutSeconds": 300,
    "ttlSecondsAfterFinished": 3600,
}


SPEC = SpecSchema("run spec", "run", SCHEMA_FILE)


def load(path: Path) -> dict[str, Any]:
    """A run spec, schema-checked, its mode checked against its kind, with the defaults filled in."""
    from runner import kinds  # no torch: the registry imports a kind's module only to run it

    spec = SPEC.load(path)
    if "nodes" in spec and "nodeCount" in spec:
        raise ValuesError(
            f"run spec {path}: nodes and nodeCount: give one (nodes by name, or how many of a nodePool or gpuType)."
        )
    if "nodePool" in spec and "gpuType" in spec:
        raise ValuesError(
            f"run spec {path}: nodePool and gpuType: give one (nodeCount nodes of that pool, or of any pool of that "
            "GPU type)."
        )
    if "nodeCount" in spec and "nodePool" not in spec and "gpuType" not in spec:
        raise ValuesError(
            f"run spec {path}: nodeCount {spec['nodeCount']} of what: add nodePool (a key of global.nodePools) or "
            "gpuType (a gpu.type of its pools)."
        )
    mode = kinds.mode(spec["kind"])
    if spec.get("mode", mode) != mode:
        raise ValuesError(f"run spec {path}: mode {spec['mode']!r}: kind {spec['kind']} runs {mode}.")
    return {**DEFAULTS, "mode": mode, **spec}


def gpus_per_rank(spec: dict[str, Any], pool: NodePool) -> int:
    return spec.get("gpusPerRank", 1 if pool.gpu_count else 0)


def candidate_pools(spec: dict[str, Any], env_values: dict[str, Any], source: str) -> list[NodePool]:
    """The pools a run's nodes come from: its nodePool, or (gpuType) every pool of that GPU type but the
    spot pools, by name: a rank on reclaimable capacity would take its whole run down with it (a spot
    pool is named in nodePool to run there anyway). ValuesError for an unknown pool or GPU type."""
    pools = node_pools(env_values)
    if "gpuType" not in spec:
        name = spec["nodePool"]
        if name not in pools:
            raise ValuesError(
                f"run spec {source}: nodePool {name!r} is not a node pool of global.nodePools "
                f"(known: {', '.join(sorted(pools))})."
            )
        return [pools[name]]
    gpu_type = spec["gpuType"]
    found = sorted((p for p in pools.values() if p.gpu_type == gpu_type and not p.spot), key=lambda p: p.name)
    if found:
        return found
    known = sorted({p.gpu_type for p in pools.values() if p.gpu_type and not p.spot})
    spot = sorted(p.name for p in pools.values() if p.gpu_type == gpu_type)
    why = (
        f"only spot pools have it ({', '.join(spot)}), and a run is not placed on reclaimable nodes by GPU type "
        "(name the pool in nodePool to run there anyway)"
        if spot
        else "no pool of global.nodePools has it as gpu.type"
    )
    raise ValuesError(
        f"run spec {source}: gpuType {gpu_type!r}: {why}; the GPU types of the pools a run may use: "
        f"{', '.join(known) or 'none'}."
    )


def origin(spec: dict[str, Any], pools: list[NodePool]) -> str:
    """Where a run's nodes come from, as messages say it: `pool p`, or `GPU type t (pools p, q)`."""
    if "gpuType" not in spec:
        return f"pool {spec['nodePool']}"
    return f"GPU type {spec['gpuType']} (pool{'s' if len(pools) > 1 else ''} {', '.join(p.name for p in pools)})"


def world_size(spec: dict[str, Any], source: str) -> int:
    """The ranks of a run on a cluster: len(nodes) x ranksPerNode (`ranks`, when given, must agree)."""
    size = len(spec["nodes"]) * spec["ranksPerNode"]
    if "ranks" in spec and spec["ranks"] != size:
        raise ValuesError(
            f"run spec {source}: ranks {spec['ranks']} is not len(nodes) x ranksPerNode = {len(spec['nodes'])} x "
            f"{spec['ranksPerNode']} = {size}: on a cluster the nodes decide; drop `ranks` or make them agree."
        )
    return size


def check_environment(spec: dict[str, Any], env_values: dict[str, Any], source: str) -> tuple[list[NodePool], int]:
    """The pools the run's nodes come from and the GPUs of each rank, or ValuesError: an unknown pool, GPU
    type or priority class, more GPUs per node than a node of its pools has, requests above limits, or a
    whole run above the benchmarks namespace's quota (it could never start on all its ranks)."""
    pools = candidate_pools(spec, env_values, source)
    gpus = gpus_per_rank(spec, pools[0])
    per_node = gpus * spec["ranksPerNode"]
    if per_node > max(p.gpu_count for p in pools):
        has = ", ".join(f"{p.name} {p.gpu_count}" for p in pools) if len(pools) > 1 else str(pools[0].gpu_count)
        raise ValuesError(
            f"run spec {source}: ranksPerNode {spec['ranksPerNode']} x gpusPerRank {gpus} = {per_node} GPUs per node, "
            f"more than a node of {origin(spec, pools)} has ({has}): the ranks could never all start."
        )
    known = priority_classes()
    if spec["priorityClassName"] not in known:
        raise ValuesError(
            f"run spec {source}: priorityClassName {spec['priorityClassName']!r} is not a PriorityClass of the "
            f"platform (known: {', '.join(known)})."
        )
    resources = spec["resources"]
    for kind in ("cpu", "memory"):
        if parse_quantity(resources["requests"][kind]) > parse_quantity(resources["limits"][kind]):
            raise ValuesError(f"run spec {source}: resources.requests.{kind} is above resources.limits.{kind}.")
    _check_quota(spec, gpus, env_values, source)
    return pools, gpus


def _check_quota(spec: dict[str, Any], gpus: int, env_values: dict[str, Any], source: str) -> None:
    """All ranks together against the benchmarks namespace's ResourceQuota: a run admitted in part
    would hold GPUs while the rest of it waits."""
    policy = policy_values(env_values)
    if policy.get("enabled") is False:
        return
    hard = ((policy.get("namespaces") or {}).get("benchmarks") or {}).get("quota") or {}
    ranks = len(spec["nodes"]) * spec["ranksPerNode"]
    res = spec["resources"]
    usage = {
        "pods": ranks,
        "requests.cpu": parse_quantity(res["requests"]["cpu"]) * ranks,
        "requests.memory": parse_quantity(res["requests"]["memory"]) * ranks,
        "limits.cpu": parse_quantity(res["limits"]["cpu"]) * ranks,
        "limits.memory": parse_quantity(res["limits"]["memory"]) * ranks,
        f"requests.{GPU_RESOURCE}": gpus * ranks,
    }
    for key, limit in hard.items():
        if key in usage and usage[key] > parse_quantity(limit):
            raise ValuesError(
                f"run spec {source}: its {ranks} ranks together ask for {key} {usage[key]}, more than the benchmarks "
                f"namespace allows (policy.namespaces.benchmarks.quota.{key}: {limit}): the run could only start in "
                "part. Use fewer ranks, or raise the quota in the environment's values."
            )


def chart_values(
    spec: dict[str, Any], env_values: dict[str, Any], source: str, placed: dict[str, str] | None = None
) -> dict[str, Any]:
    """Values of charts/run for this spec in this environment: one group per named node, rank 0 the
    first node's first rank. `placed`: the pool of each node, when `run start` chose them (nodeCount);
    named nodes are of the spec's nodePool."""
    if "nodes" not in spec and "nodeCount" in spec:
        raise ValuesError(
            f"run spec {source}: nodeCount {spec['nodeCount']}: the nodes are chosen on the cluster by `run start` "
            "(placement.choose_nodes); name them in `nodes` to plan the run without one."
        )
    if "nodes" not in spec:
        raise ValuesError(
            f"run spec {source}: no `nodes`: a run on a cluster is pinned to named nodes (add `nodes` and "
            "`nodePool`), or run it on this machine with `run start FILE --here`."
        )
    world_size(spec, source)
    pools, gpus = check_environment(spec, env_values, source)
    gpu_type = pools[0].gpu_type  # a gpuType's pools all have it
    per_node = spec["ranksPerNode"]
    groups, units = [], []
    for n, node in enumerate(spec["nodes"]):
        ranks = list(range(n * per_node, (n + 1) * per_node))
        pool = placed[node] if placed else pools[0].name
        groups.append({"name": f"n{n}", "node": node, "nodePool": pool, "indexes": ranks})
        units += [
            {
                "index": r,
                "config": {"rank": r, "node": node, "nodePool": pool, "gpuType": gpu_type, "gpuCount": gpus},
            }
            for r in ranks
        ]
    env_global = env_values.get("global") or {}
    return {
        "global": {
            k: env_global[k]
            for k in ("environment", "image", "commonLabels", "nodePools", "priorityClassName")
            if k in env_global
        }
        | {"namespaces": {"benchmarks": env_global.get("namespaces", {}).get("benchmarks", "")}},
        "run": {"name": spec["name"], "kind": spec["kind"], "mode": spec["mode"]},
        "document": {"sweep": spec["name"], "kind": spec["kind"], "index": 0, "config": spec["config"]},
        "units": units,
        "groups": groups,
        "gpusPerRank": gpus,
        "resources": spec["resources"],
        "priorityClassName": spec["priorityClassName"],
        "ttlSecondsAfterFinished": spec["ttlSecondsAfterFinished"],
        "backoffLimitPerIndex": 0,
        "startTimeoutSeconds": spec["startTimeoutSeconds"],
    }


def plan_run(path: Path, env_values: dict[str, Any]) -> dict[str, Any]:
    """A run spec file to charts/run's values, every check that needs no cluster included."""
    return chart_values(load(path), env_values, str(path))
