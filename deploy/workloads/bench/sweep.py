"""Benchmark sweeps: a sweep file (YAML a user writes) validated, expanded into configs, checked
against an environment's values, grouped into scheduling groups, and turned into the values of
charts/benchmark (one release per launched sweep: a ConfigMap of configs, one Indexed Job per group).

Everything here is a pure function of the sweep and the environment's values, so a bad sweep is
refused before anything is applied, with the key named."""

import copy
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from deploy.errors import ValuesError
from deploy.paths import CHARTS
from deploy.platform.nodepools import GPU_RESOURCE, NodePool, node_pools
from deploy.platform.values import deep_merge, read_yaml
from deploy.workloads.specfile import SpecSchema

SCHEMA_FILE = Path(__file__).with_name("sweep.schema.json")
# The runner's exit code for a config it cannot run (bad model name, shape...): fails that index
# at once instead of retrying it.
CONFIG_ERROR_EXIT_CODE = 3
CONFIG_DEFAULTS: dict[str, Any] = {"precision": "fp32", "warmup": 10, "iterations": 100}
REQUIRED_CONFIG_KEYS = ("model", "batchSize", "inputShape")
# Keys that decide where a config runs rather than what it measures.
SCHEDULING_KEYS = ("gpuType", "gpuCount", "nodePool")
SWEEP_DEFAULTS: dict[str, Any] = {
    "matrix": {},
    "priorityClassName": "medium-priority-batch",
    "spot": False,
    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    "parallelism": 4,
    "ttlSecondsAfterFinished": 3600,
    "backoffLimitPerIndex": 2,
}
MATRIX_LISTS = ("include", "exclude")
DEFAULT_MODELS_MOUNT = "/models"
_UNIT_S = {"h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class Config:
    """One expanded config: what the runner measures, where it runs, and where each value was set."""

    index: int
    values: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict, compare=False)
    node_pool: str = ""
    gpu_type: str = ""
    gpu_count: int = 0

    def label(self) -> str:
        """`configs[3] (gpuType=nvidia-t4, precision=fp16)`: how messages name a config."""
        varying = [f"{k}={_short(v)}" for k, v in self.values.items() if self.origins.get(k, "").startswith("matrix")]
        return f"configs[{self.index}]" + (f" ({', '.join(varying)})" if varying else "")


@dataclass(frozen=True)
class Group:
    """Configs that share a pod shape: one Indexed Job."""

    name: str
    node_pool: str
    gpu_type: str
    gpu_count: int
    resources: dict[str, Any]
    priority_class_name: str
    spot: bool
    indexes: tuple[int, ...]

    def values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodePool": self.node_pool,
            "gpuType": self.gpu_type,
            "gpuCount": self.gpu_count,
            "resources": copy.deepcopy(self.resources),
            "priorityClassName": self.priority_class_name,
            "spot": self.spot,
            "indexes": list(self.indexes),
        }


def _short(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else str(value)


# --- loading and the schema -------------------------------------------------------------------


SPEC = SpecSchema("sweep", "sweep", SCHEMA_FILE)


def load_sweep(path: Path) -> dict[str, Any]:
    """A sweep file, schema-checked, with the defaults filled in."""
    return with_defaults(SPEC.load(path))


def with_defaults(sweep: dict[str, Any]) -> dict[str, Any]:
    return {**SWEEP_DEFAULTS, **sweep}


# --- expansion --------------------------------------------------------------------------------

# A combination under construction: key -> (value, where it was set).
_Combo = dict[str, tuple[Any, str]]


def _matches(combo: _Combo, entry: dict[str, Any]) -> bool:
    return all(k in combo and combo[k][0] == v for k, v in entry.items())


def _expand(matrix: dict[str, Any]) -> list[_Combo]:
    """GitHub Actions' rules: the product of the lists, less the combinations that match an
    `exclude` entry (on all its keys), then each `include` entry added to every combination
    whose original values it does not change, or appended as a combination of its own."""
    axes = [k for k in matrix if k not in MATRIX_LISTS]
    combos: list[_Combo] = []
    for values in itertools.product(*(matrix[k] for k in axes)):
        combo = {k: (v, f"matrix.{k}[{matrix[k].index(v)}]") for k, v in zip(axes, values, strict=True)}
        if not any(_matches(combo, entry) for entry in matrix.get("exclude", [])):
            combos.append(combo)
    for n, entry in enumerate(matrix.get("include", [])):
        origin = f"matrix.include[{n}]"
        extended = False
        for combo in combos:
            original = {k: v for k, v in entry.items() if k in axes}
            if all(combo[k][0] == v for k, v in original.items() if k in combo) and any(k not in axes for k in entry):
                for k, v in entry.items():
                    if k not in axes:
                        combo[k] = (v, f"{origin}.{k}")
                extended = True
        if not extended:
            combos.append({k: (v, f"{origin}.{k}") for k, v in entry.items()})
    # An include that adds nothing new to a combination that already exists is that combination.
    unique: list[_Combo] = []
    for combo in combos:
        if all({k: v[0] for k, v in combo.items()} != {k: v[0] for k, v in u.items()} for u in unique):
            unique.append(combo)
    return unique


def expand(sweep: dict[str, Any], source: str = "sweep") -> list[Config]:
    """The sweep's configs: base, then each matrix combination over it, then the defaults.
    Refuses a matrix that expands to nothing and configs that lack a required key."""
    matrix = sweep.get("matrix") or {}
    combos = _expand(matrix)
    if not combos:
        empty = [k for k in matrix if k not in MATRIX_LISTS and not matrix[k]]
        why = (
            f"matrix.{empty[0]} is an empty list" if empty else "matrix.exclude removes every combination of the matrix"
        )
        raise ValuesError(
            f"sweep {source}: the matrix expands to zero configs ({why}); a sweep needs at least one config."
        )
    configs = []
    for index, combo in enumerate(combos):
        values = {**CONFIG_DEFAULTS}
        origins = {k: f"default {k}" for k in CONFIG_DEFAULTS}
        for k, v in (sweep.get("base") or {}).items():
            values[k], origins[k] = v, f"base.{k}"
        for k, (v, origin) in combo.items():
            values[k], origins[k] = v, origin
        config = Config(index, values, origins)
        missing = [k for k in REQUIRED_CONFIG_KEYS if k not in values]
        if missing:
            raise ValuesError(
                f"sweep {source}: {config.label()} has no {missing[0]}: set base.{missing[0]} or a matrix "
                f"entry for it (every config needs {', '.join(REQUIRED_CONFIG_KEYS)})."
            )
        if values.get("model") == "torchscript" and not values.get("modelPath"):
            raise ValuesError(f"sweep {source}: {config.label()}: model `torchscript` needs modelPath.")
        if "modelPath" in values:
            check_model_path(config, sweep, source)
        configs.append(config)
    return configs


def check_model_path(config: Config, sweep: dict[str, Any], source: str) -> None:
    """A modelPath must lie in the sweep's model volume, or the pod could never see the file."""
    path, where = config.values["modelPath"], config.origins["modelPath"]
    models = sweep.get("models")
    if not models:
        raise ValuesError(
            f"sweep {source}: {config.label()}: modelPath {path} (set at {where}) has no way into the pod: name the "
            f"PersistentVolumeClaim that holds it (models.claimName; mounted read-only at {DEFAULT_MODELS_MOUNT})."
        )
    mount = models.get("mountPath", DEFAULT_MODELS_MOUNT)
    if not PurePosixPath(path).is_relative_to(mount) or ".." in PurePosixPath(path).parts:
        raise ValuesError(
            f"sweep {source}: {config.label()}: modelPath {path} (set at {where}) is outside the model volume "
            f"(models.mountPath {mount}): the pod could not see it."
        )


def seconds(duration: str) -> int:
    """`1h30m`, `5m`, `90s` (the sweep schema's pattern) in seconds."""
    return sum(int(n) * _UNIT_S[unit] for n, unit in re.findall(r"([0-9]+)([hms])", duration))


def deadlines(sweep: dict[str, Any], source: str) -> dict[str, int | None]:
    """The chart's deadlineSeconds and configDeadlineSeconds from the sweep's deadline and configDeadline."""
    out: dict[str, int | None] = {}
    for key, value in (("deadline", "deadlineSeconds"), ("configDeadline", "configDeadlineSeconds")):
        out[value] = seconds(sweep[key]) if key in sweep else None
        if out[value] == 0:
            raise ValuesError(f"sweep {source}: {key} {sweep[key]!r} is zero: a deadline must be at least 1s.")
    sweep_s, config_s = out["deadlineSeconds"], out["configDeadlineSeconds"]
    if sweep_s and config_s and config_s > sweep_s:
        raise ValuesError(
            f"sweep {source}: configDeadline {sweep['configDeadline']} is longer than the whole sweep's deadline "
            f"{sweep['deadline']}."
        )
    return out


# --- checks against the environment -----------------------------------------------------------


def priority_classes() -> list[str]:
    """The platform's PriorityClasses (charts/platform-cluster's values)."""
    return list(read_yaml(CHARTS / "platform-cluster" / "values.yaml")["priorityClasses"])


def policy_values(env_values: dict[str, Any]) -> dict[str, Any]:
    """charts/platform-policy's values as the environment's release sees them."""
    return deep_merge(read_yaml(CHARTS / "platform-policy" / "values.yaml"), env_values.get("policy") or {})


def place(config: Config, pools: dict[str, NodePool], source: str = "sweep", spot: bool = False) -> Config:
    """The config with its node pool, GPU type and GPU count resolved; refuses an unknown GPU type
    or pool, and more GPUs than one node of the pool has. A spot sweep runs on spot pools only
    (`spot: true` in global.nodePools): a gpuType picks the spot pool of that type."""
    values, origins = config.values, config.origins
    kind = "spot " if spot else ""
    eligible = {name: p for name, p in pools.items() if p.spot == spot}
    gpu_types = sorted({p.gpu_type for p in eligible.values() if p.gpu_type})
    gpu_type = values.get("gpuType", "")
    if "nodePool" in values:
        name = values["nodePool"]
        if name not in pools:
            raise ValuesError(
                f"sweep {source}: {config.label()}: nodePool {name!r} (set at {origins['nodePool']}) is not a node "
                f"pool of global.nodePools (known: {', '.join(sorted(pools))})."
            )
        pool = pools[name]
        if spot and not pool.spot:
            raise ValuesError(
                f"sweep {source}: {config.label()}: spot is true but nodePool {name} (set at {origins['nodePool']}) "
                f"is not a spot pool (spot pools, `spot: true` in global.nodePools: "
                f"{', '.join(sorted(eligible)) or 'none'})."
            )
        if gpu_type and gpu_type != pool.gpu_type:
            raise ValuesError(
                f"sweep {source}: {config.label()}: gpuType {gpu_type!r} (set at {origins['gpuType']}) is not the GPU "
                f"type of nodePool {name} ({pool.gpu_type or 'no GPUs'})."
            )
    elif gpu_type:
        candidates = sorted(name for name, p in eligible.items() if p.gpu_type == gpu_type)
        if not candidates:
            raise ValuesError(
                f"sweep {source}: {config.label()}: unknown {kind}GPU type {gpu_type!r} (set at {origins['gpuType']}): "
                f"no {kind}pool of global.nodePools has gpu.type {gpu_type!r} (known {kind}GPU types: "
                f"{', '.join(gpu_types) or 'none'})."
            )
        pool = pools[candidates[0]]
    else:
        raise ValuesError(
            f"sweep {source}: {config.label()} names neither gpuType nor nodePool: set base.gpuType "
            f"(one of {', '.join(gpu_types)}) or a matrix entry for it."
        )
    gpu_count = values.get("gpuCount", 1 if pool.gpu_count else 0)
    if gpu_count > pool.gpu_count:
        where = origins.get("gpuCount", "the default gpuCount")
        raise ValuesError(
            f"sweep {source}: {config.label()}: gpuCount {gpu_count} (set at {where}) is more than one node of pool "
            f"{pool.name} has ({pool.gpu_count}): the pod could never be scheduled."
        )
    return Config(config.index, values, origins, pool.name, pool.gpu_type, gpu_count)


def pod_usage(resources: dict[str, Any], gpu_count: int) -> dict[str, Any]:
    """What one runner pod counts against a ResourceQuota, by quota key (as written)."""
    usage: dict[str, Any] = {"pods": 1}
    for kind in ("requests", "limits"):
        for name, value in resources[kind].items():
            usage[f"{kind}.{name}"] = value
    if gpu_count:
        usage[f"requests.{GPU_RESOURCE}"] = usage[f"limits.{GPU_RESOURCE}"] = gpu_count
    usage["cpu"], usage["memory"] = usage["requests.cpu"], usage["requests.memory"]
    return usage


def check_quota(config: Config, sweep: dict[str, Any], env_values: dict[str, Any], source: str = "sweep") -> None:
    """Refuse a config whose one pod exceeds the benchmarks namespace's ResourceQuota (or a priority
    quota of its class, or the LimitRange's largest container): it could never be admitted."""
    policy = policy_values(env_values)
    if policy.get("enabled") is False:
        return
    bench = (policy.get("namespaces") or {}).get("benchmarks") or {}
    namespace = (env_values.get("global") or {}).get("namespaces", {}).get("benchmarks", "benchmarks")
    usage = pod_usage(sweep["resources"], config.gpu_count)
    quotas = [("policy.namespaces.benchmarks.quota", bench.get("quota") or {})]
    for name, pq in (bench.get("priorityQuotas") or {}).items():
        if sweep["priorityClassName"] in pq.get("priorityClasses", []):
            quotas.append((f"policy.namespaces.benchmarks.priorityQuotas.{name}.hard", pq.get("hard") or {}))
    for where, hard in quotas:
        for key, limit in hard.items():
            if key in usage and parse_quantity(usage[key]) > parse_quantity(limit):
                raise ValuesError(
                    f"sweep {source}: {config.label()}: {_usage_key(key, config)} asks for {usage[key]} per pod, "
                    f"more than the benchmarks namespace {namespace} allows ({where} {key}: {limit}): no runner pod "
                    "of it could ever be admitted. Ask for less, or raise the quota in the environment's values."
                )
    largest = (bench.get("limitRange") or {}).get("max") or {}
    for name, limit in largest.items():
        key = f"limits.{name}"
        if key in usage and parse_quantity(usage[key]) > parse_quantity(limit):
            raise ValuesError(
                f"sweep {source}: {config.label()}: resources.limits.{name} {usage[key]} is above the largest "
                f"container the benchmarks namespace {namespace} admits (policy.namespaces.benchmarks.limitRange.max."
                f"{name}: {limit})."
            )


def _usage_key(quota_key: str, config: Config) -> str:
    if GPU_RESOURCE in quota_key:
        return f"gpuCount (set at {config.origins.get('gpuCount', 'the default gpuCount')})"
    if quota_key == "pods":
        return "one pod"
    kind, _, name = quota_key.partition(".")
    return f"resources.{kind}.{name}" if name else f"resources.requests.{kind}"


def resolve(sweep: dict[str, Any], env_values: dict[str, Any], source: str = "sweep") -> list[Config]:
    """Expanded configs, placed on pools and checked against the environment: every refusal
    happens here, before anything is applied."""
    known = priority_classes()
    if sweep["priorityClassName"] not in known:
        raise ValuesError(
            f"sweep {source}: priorityClassName {sweep['priorityClassName']!r} is not a PriorityClass of the "
            f"platform (known: {', '.join(known)})."
        )
    pools = node_pools(env_values)
    for kind in ("cpu", "memory"):
        if parse_quantity(sweep["resources"]["requests"][kind]) > parse_quantity(sweep["resources"]["limits"][kind]):
            raise ValuesError(f"sweep {source}: resources.requests.{kind} is above resources.limits.{kind}.")
    configs = [place(c, pools, source, sweep["spot"]) for c in expand(sweep, source)]
    for config in configs:
        check_quota(config, sweep, env_values, source)
    return configs


# --- grouping and the chart's values ----------------------------------------------------------


def group_configs(configs: list[Config], sweep: dict[str, Any]) -> list[Group]:
    """Scheduling groups: configs with the same pool, GPU type and count, resources, priority and
    spot share one pod shape, so one Indexed Job. Names are short DNS labels, unique in the sweep."""
    shapes: dict[tuple[Any, ...], list[int]] = {}
    for c in configs:
        shapes.setdefault((c.node_pool, c.gpu_type, c.gpu_count), []).append(c.index)
    groups: list[Group] = []
    used: set[str] = set()
    for (pool, gpu_type, gpu_count), indexes in shapes.items():
        base = (gpu_type.removeprefix("nvidia-") if gpu_type else pool)[:20].strip("-")
        if gpu_count != 1:
            base += f"-x{gpu_count}"
        if sweep["spot"]:
            base += "-spot"
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        groups.append(
            Group(
                name=name,
                node_pool=pool,
                gpu_type=gpu_type,
                gpu_count=gpu_count,
                resources=sweep["resources"],
                priority_class_name=sweep["priorityClassName"],
                spot=sweep["spot"],
                indexes=tuple(indexes),
            )
        )
    return groups


def runner_config(config: Config) -> dict[str, Any]:
    """What the runner reads for one index: the measured keys (scheduling keys stay out, except
    the resolved GPU type and count, which the result records)."""
    values = {k: copy.deepcopy(v) for k, v in config.values.items() if k not in SCHEDULING_KEYS}
    return {**values, "gpuType": config.gpu_type, "gpuCount": config.gpu_count, "nodePool": config.node_pool}


def chart_values(sweep: dict[str, Any], env_values: dict[str, Any], source: str = "sweep") -> dict[str, Any]:
    """Values of charts/benchmark for this sweep in this environment (`helm install -f`)."""
    sweep = with_defaults(sweep)
    configs = resolve(sweep, env_values, source)
    groups = group_configs(configs, sweep)
    env_global = env_values.get("global") or {}
    values: dict[str, Any] = {
        "global": {
            k: env_global[k]
            for k in ("environment", "image", "commonLabels", "nodePools", "priorityClassName")
            if k in env_global
        }
        | {"namespaces": {"benchmarks": env_global.get("namespaces", {}).get("benchmarks", "")}},
        "sweep": {"name": sweep["name"], "kind": sweep["kind"]},
        "configs": [{"index": c.index, "config": runner_config(c)} for c in configs],
        "groups": [g.values() for g in groups],
        "parallelism": sweep["parallelism"],
        "ttlSecondsAfterFinished": sweep["ttlSecondsAfterFinished"],
        "backoffLimitPerIndex": sweep["backoffLimitPerIndex"],
    }
    if "maxFailedIndexes" in sweep:
        values["maxFailedIndexes"] = sweep["maxFailedIndexes"]
    if policy_values(env_values).get("enabled") is not False:
        # platform-policy's default-deny and DNS-only egress confine the runner pods already; a policy of
        # the sweep's own would need its launcher to hold NetworkPolicy rights, enough to open egress.
        values["networkPolicy"] = {"enabled": False}
    values |= {k: v for k, v in deadlines(sweep, source).items() if v is not None}
    if sweep.get("models"):
        values["models"] = {"claimName": sweep["models"]["claimName"],
                            "mountPath": sweep["models"].get("mountPath", DEFAULT_MODELS_MOUNT)}  # fmt: skip
    return values


def plan_sweep(path: Path, env_values: dict[str, Any]) -> dict[str, Any]:
    """A sweep file to the chart's values, every check included."""
    return chart_values(load_sweep(path), env_values, str(path))
