"""A training spec (examples/training/*.yaml): schema-checked with the key named, then checked against an
environment (pool or GPU type, priority class, the training namespace's quota and largest container) and
turned into the values of charts/training: one group (one Indexed Job of one completion), one unit.

Pure functions of the spec and the environment's values: a bad spec is refused before anything is
applied, naming the file, the key and the rule."""

import copy
import importlib.util
from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from deploy.errors import ValuesError
from deploy.paths import CHARTS
from deploy.platform.nodepools import GPU_RESOURCE, NodePool, node_pools
from deploy.platform.values import deep_merge, read_yaml
from deploy.workloads.bench.sweep import policy_values, priority_classes
from deploy.workloads.specfile import SpecSchema

SCHEMA_FILE = Path(__file__).with_name("training.schema.json")
# The one group (Job `<name>-train`) and its one unit.
GROUP = "train"
# Keys of the spec that are the launcher's (where and how the run goes), not the runner's config.
LAUNCHER_KEYS = ("name", "priorityClassName", "spot", "ttlSecondsAfterFinished", "backoffLimit", "image",
                 "objectStore")  # fmt: skip
SCHEDULING_KEYS = ("resources", "gpuType", "gpuCount", "nodePool")
# Reference 002's container defaults (GPUs: 1 on a GPU pool, 0 on a CPU pool).
RESOURCES = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "16Gi"}}
DEFAULTS: dict[str, Any] = {
    "priorityClassName": "medium-priority-batch",
    "spot": False,
    "ttlSecondsAfterFinished": 86400,
    "backoffLimit": 3,
}
SPOT_POOL = "spot-instances"


SPEC = SpecSchema("training spec", "training", SCHEMA_FILE)


def load(path: Path) -> dict[str, Any]:
    return {**DEFAULTS, **SPEC.load(path)}


def runner_config(spec: dict[str, Any]) -> dict[str, Any]:
    """What the runner's kind `train` reads (runner/training/spec.py): the spec without the launcher's keys."""
    return {k: copy.deepcopy(v) for k, v in spec.items() if k not in LAUNCHER_KEYS and k not in DEFAULTS}


def check_model(spec: dict[str, Any], source: str) -> None:
    """An unknown torchvision model is refused here when torchvision is installed beside the deploy tool
    (the `runner` extra); otherwise the runner refuses it at start (exit 3: the Job fails at once, not retried)."""
    if spec.get("framework", "torchvision") != "torchvision" or importlib.util.find_spec("torchvision") is None:
        if spec.get("framework") == "runner" and spec["model"] != "cnn":
            raise ValuesError(f"training spec {source}: model: unknown model {spec['model']!r} of framework runner "
                              "(known: cnn).")  # fmt: skip
        return
    from runner.training.models import names

    known = names()
    if spec["model"] not in known:
        raise ValuesError(
            f"training spec {source}: model: unknown torchvision classification model {spec['model']!r} "
            f"(e.g. {', '.join(known[:8])}...)."
        )


def place(spec: dict[str, Any], pools: dict[str, NodePool], source: str) -> tuple[NodePool, int]:
    """The pool the run goes to and its GPU count; refuses an unknown pool or GPU type, and more GPUs than
    one node of the pool has."""
    gpu_types = sorted({p.gpu_type for p in pools.values() if p.gpu_type})
    gpu_type = spec.get("gpuType", "")
    if "nodePool" in spec:
        if spec["nodePool"] not in pools:
            raise ValuesError(f"training spec {source}: nodePool: {spec['nodePool']!r} is not a node pool of "
                              f"global.nodePools (known: {', '.join(sorted(pools))}).")  # fmt: skip
        pool = pools[spec["nodePool"]]
        if gpu_type and gpu_type != pool.gpu_type:
            raise ValuesError(f"training spec {source}: gpuType: {gpu_type!r} is not the GPU type of nodePool "
                              f"{pool.name} ({pool.gpu_type or 'no GPUs'}).")  # fmt: skip
    elif gpu_type:
        candidates = sorted(name for name, p in pools.items() if p.gpu_type == gpu_type)
        if not candidates:
            raise ValuesError(
                f"training spec {source}: gpuType: unknown GPU type {gpu_type!r}: no pool of global.nodePools has "
                f"it (known GPU types: {', '.join(gpu_types)})."
            )
        pool = pools[candidates[0]]
    else:
        raise ValuesError(f"training spec {source}: gpuType or nodePool: the spec names neither (GPU types: "
                          f"{', '.join(gpu_types)}; pools: {', '.join(sorted(pools))}).")  # fmt: skip
    gpus = spec.get("gpuCount", 1 if pool.gpu_count else 0)
    if gpus > pool.gpu_count:
        raise ValuesError(f"training spec {source}: gpuCount: {gpus} is more than one node of pool {pool.name} has "
                          f"({pool.gpu_count}): the pod could never be scheduled.")  # fmt: skip
    return pool, gpus


def resources(spec: dict[str, Any], gpus: int, source: str) -> dict[str, Any]:
    """The defaults, key by key overridden by the spec's, plus the GPUs (requests = limits)."""
    res = deep_merge(copy.deepcopy(RESOURCES), spec.get("resources") or {})
    for name in set(res["requests"]) & set(res["limits"]):
        if parse_quantity(res["requests"][name]) > parse_quantity(res["limits"][name]):
            raise ValuesError(f"training spec {source}: resources.requests.{name}: {res['requests'][name]} is above "
                              f"resources.limits.{name} ({res['limits'][name]}).")  # fmt: skip
    if gpus:
        res["requests"][GPU_RESOURCE] = res["limits"][GPU_RESOURCE] = gpus
    return res


def check_quota(res: dict[str, Any], priority: str, env_values: dict[str, Any], source: str) -> None:
    """Refuse a pod that the training namespace's ResourceQuota (or a priority quota of its class) or its
    LimitRange's largest container could never admit."""
    policy = policy_values(env_values)
    if policy.get("enabled") is False:
        return
    ns = (policy.get("namespaces") or {}).get("training") or {}
    namespace = ((env_values.get("global") or {}).get("namespaces") or {}).get("training", "training")
    usage: dict[str, tuple[Any, str]] = {"pods": (1, "one pod")}
    for kind in ("requests", "limits"):
        for name, value in res[kind].items():
            key = "gpuCount" if name == GPU_RESOURCE else f"resources.{kind}.{name}"
            usage[f"{kind}.{name}"] = (value, key)
    usage["cpu"], usage["memory"] = usage["requests.cpu"], usage["requests.memory"]
    quotas = [("policy.namespaces.training.quota", ns.get("quota") or {})]
    for name, pq in (ns.get("priorityQuotas") or {}).items():
        if priority in pq.get("priorityClasses", []):
            quotas.append((f"policy.namespaces.training.priorityQuotas.{name}.hard", pq.get("hard") or {}))
    for where, hard in quotas:
        for key, limit in hard.items():
            if key in usage and parse_quantity(usage[key][0]) > parse_quantity(limit):
                value, spec_key = usage[key]
                raise ValuesError(
                    f"training spec {source}: {spec_key}: {value} is more than the training namespace {namespace} "
                    f"allows ({where} {key}: {limit}): the pod could never be admitted. Ask for less, or raise the "
                    "quota in the environment's values."
                )
    for name, limit in ((ns.get("limitRange") or {}).get("max") or {}).items():
        if name in res["limits"] and parse_quantity(res["limits"][name]) > parse_quantity(limit):
            raise ValuesError(
                f"training spec {source}: resources.limits.{name}: {res['limits'][name]} is above the largest "
                f"container the training namespace {namespace} admits (policy.namespaces.training.limitRange.max."
                f"{name}: {limit})."
            )


def chart_defaults() -> dict[str, Any]:
    return read_yaml(CHARTS / "training" / "values.yaml")


def chart_values(spec: dict[str, Any], env_values: dict[str, Any], source: str) -> dict[str, Any]:
    """Values of charts/training for this spec in this environment (`helm install -f`)."""
    check_model(spec, source)
    known = priority_classes()
    if spec["priorityClassName"] not in known:
        raise ValuesError(f"training spec {source}: priorityClassName: {spec['priorityClassName']!r} is not a "
                          f"PriorityClass of the platform (known: {', '.join(known)}).")  # fmt: skip
    pools = node_pools(env_values)
    if spec["spot"] and SPOT_POOL not in pools:
        raise ValuesError(f"training spec {source}: spot: true, but global.nodePools has no {SPOT_POOL} pool.")
    pool, gpus = place(spec, pools, source)
    res = resources(spec, gpus, source)
    check_quota(res, spec["priorityClassName"], env_values, source)
    config = {**runner_config(spec), "gpuType": pool.gpu_type, "gpuCount": gpus, "nodePool": pool.name}
    env_global = env_values.get("global") or {}
    keep = ("environment", "image", "commonLabels", "nodePools", "priorityClassName")
    values: dict[str, Any] = {
        "global": {k: env_global[k] for k in keep if k in env_global}
        | {"namespaces": {"training": (env_global.get("namespaces") or {}).get("training", "")}},
        "run": {"name": spec["name"]},
        "units": [{"index": 0, "config": config}],
        "groups": [{"name": GROUP, "indexes": [0]}],
        "job": {
            "nodePool": pool.name,
            "gpuType": pool.gpu_type,
            "resources": res,
            "priorityClassName": spec["priorityClassName"],
            "spot": spec["spot"],
            "ttlSecondsAfterFinished": spec["ttlSecondsAfterFinished"],
            "backoffLimit": spec["backoffLimit"],
        },
        "objectStore": {**chart_defaults()["objectStore"], **(spec.get("objectStore") or {})},
    }
    if not gpus:  # a CPU run: the chart's default GPU goes (null deletes a default key in Helm)
        for kind in ("requests", "limits"):
            res[kind][GPU_RESOURCE] = None
    if "image" in spec:
        values["runner"] = {"image": dict(spec["image"])}
    if policy_values(env_values).get("enabled") is not False:
        # As for sweeps: platform-policy's default-deny, DNS and training egress rules confine the pod (the
        # store must be one they allow: check_store_reachable). A policy of the run's own would need whoever
        # submits to hold NetworkPolicy rights, enough to open any egress in the namespace.
        values["networkPolicy"] = {"enabled": False}
    return with_store_egress(values)


def with_store_egress(values: dict[str, Any]) -> dict[str, Any]:
    """The chart's NetworkPolicy's object-store rule from the endpoint the values end with: run again after
    `--set` (an endpoint given there is the one the pod must reach). Nothing when the chart's policy is off."""
    policy = values.get("networkPolicy") or {}
    if policy.get("enabled") is False:
        return values
    rule = {**chart_defaults()["networkPolicy"]["objectStore"], **store_egress(values["objectStore"]["endpoint"])}
    return {**values, "networkPolicy": {**policy, "objectStore": rule}}


def check_store_reachable(values: dict[str, Any], env_values: dict[str, Any]) -> None:
    """Under platform-policy (the chart's own policy off), refuse a store the training pods may not reach: no
    egress rule of the training namespace (policy.networkPolicies.externalEgress) allows its address and port.
    For a host name only the port is checked (its address is the pod's DNS answer). Before anything is applied:
    a run that cannot reach its store would only fail its retries."""
    import ipaddress

    if (values.get("networkPolicy") or {}).get("enabled") is not False:
        return
    endpoint = values["objectStore"]["endpoint"]
    address, port = _address_port(endpoint)
    labels = {**(values.get("podLabels") or {}), "kai-ml.io/run": values["run"]["name"]}
    rules = {
        name: rule
        for name, rule in (policy_values(env_values).get("networkPolicies", {}).get("externalEgress") or {}).items()
        if rule.get("namespace") == "training" and (rule.get("podLabels") or {}).items() <= labels.items()
    }

    def allows(rule: dict[str, Any]) -> bool:
        if port not in rule.get("ports", []):
            return False
        if address is None:
            return True
        inside = lambda cidrs: any(address in ipaddress.ip_network(c, strict=False) for c in cidrs)  # noqa: E731
        return inside(rule.get("cidrs", [])) and not inside(rule.get("except") or [])

    if any(allows(rule) for rule in rules.values()):
        return
    shown = "; ".join(
        f"{name}: {', '.join(r.get('cidrs', []))}"
        + (f" except {', '.join(r['except'])}" if r.get("except") else "")
        + f", ports {', '.join(map(str, r.get('ports', [])))}"
        for name, r in sorted(rules.items())
    )
    target = f"{address}/{address.max_prefixlen} port {port}" if address is not None else f"port {port}"
    raise ValuesError(
        f"objectStore.endpoint: the training pods may not reach {endpoint}: platform-policy lets them out only by "
        f"the training namespace's policy.networkPolicies.externalEgress rules ({shown or 'none'}). Add a rule for "
        f"{target} to the environment's values and deploy it, or use a store those rules allow. Nothing was applied."
    )


def _address_port(endpoint: str) -> tuple[Any, int]:
    """The endpoint's IP address (None for a host name) and port (the scheme's default when none is given)."""
    import ipaddress
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        return ipaddress.ip_address(url.hostname or ""), port
    except ValueError:
        return None, port


def store_egress(endpoint: str) -> dict[str, Any]:
    """The NetworkPolicy's object-store rule when the endpoint names an IP: that address and port only
    (a host name keeps the chart's outside-the-cluster default, port 443 or the endpoint's)."""
    address, port = _address_port(endpoint)
    if address is None:
        return {"ports": [port]}
    return {"cidrs": [f"{address}/{address.max_prefixlen}"], "except": [], "ports": [port]}


def plan(path: Path, env_values: dict[str, Any]) -> dict[str, Any]:
    """A spec file to the chart's values, every check included."""
    return chart_values(load(path), env_values, str(path))
