"""A checked load run to charts/loadgen's values: one Indexed Job per role (the controller's one
completion reports the run's result; the workers' and record processors' report none of their own:
negative `indexes`), the controller's arguments, the run's namespace with a quota sized to it, and
the endpoint the workers' NetworkPolicy allows."""

from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from deploy.paths import CHARTS
from deploy.platform.values import deep_merge, read_yaml
from deploy.workloads.load.spec import LoadSpec, endpoint_peers

CONTROLLER, WORKER, RECORD_PROCESSOR = "controller", "worker", "record-processor"
# The roles' keys in the chart's values (their resources live there).
ROLE_KEYS = {CONTROLLER: "controller", WORKER: "worker", RECORD_PROCESSOR: "recordProcessor"}
QUOTA_RESOURCES = ("cpu", "memory", "ephemeral-storage")
STARTUP_TIMEOUT_S = 300  # the controller's wait for every worker: scheduling and image pulls
# Without --duration the run's length is not known: its Jobs are bounded by this.
REQUESTS_BOUND_S = 3600


def namespace_of(run: str, given: str | None) -> str:
    return given or f"load-{run}"


def deadline(spec: LoadSpec) -> int:
    """The Jobs' activeDeadlineSeconds: start-up, the run, its grace period and a margin to report."""
    body = spec.duration + spec.grace if spec.duration is not None else REQUESTS_BOUND_S
    return int(STARTUP_TIMEOUT_S + body + 120)


def controller_args(spec: LoadSpec) -> list[str]:
    """`python -m loadgen controller` arguments: the run's knobs; the artifacts in the pod's /tmp."""
    args = ["--endpoint", spec.endpoint, "--model", spec.model, "--endpoint-type", spec.endpoint_type]
    flags: dict[str, Any] = {
        "--concurrency": spec.concurrency, "--request-rate": spec.request_rate, "--duration": spec.duration,
        "--requests": spec.requests, "--grace": spec.grace, "--warmup-requests": spec.warmup_requests,
        "--ramp-up": spec.ramp_up, "--isl": spec.isl, "--osl": spec.osl, "--workers": spec.workers,
        "--record-processors": spec.record_processors, "--connections-per-worker": spec.connections_per_worker,
        "--request-timeout": spec.request_timeout, "--seed": spec.seed,
    }  # fmt: skip
    for flag, value in flags.items():
        if value is not None:
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if spec.streaming:
        args.append("--streaming")
    if spec.dataset:
        args += ["--dataset", "/etc/loadgen/dataset.jsonl"]
    args += ["--name", "artifacts", "--artifacts", "/tmp", "--startup-timeout", str(STARTUP_TIMEOUT_S)]
    return [*args, "--result-line"]


def with_quota(values: dict[str, Any]) -> dict[str, Any]:
    """The values with the namespace's ResourceQuota: exactly what the run's pods ask for (each role's
    resources from the values, else the chart's defaults; after any --set)."""
    defaults = read_yaml(CHARTS / "loadgen" / "values.yaml")
    hard: dict[str, str] = {"pods": str(sum(len(g["indexes"]) for g in values["groups"]))}
    for kind in ("requests", "limits"):
        for resource in QUOTA_RESOURCES:
            total = Decimal(0)
            for group in values["groups"]:
                key = ROLE_KEYS[group["name"]]
                given = (values.get(key) or {}).get("resources") or {}
                resources = deep_merge(defaults[key]["resources"], given)
                total += parse_quantity(resources[kind].get(resource, 0)) * len(group["indexes"])
            hard[f"{kind}.{resource}"] = f"{int(total * 1000)}m" if resource == "cpu" else f"{int(total / 2**20)}Mi"
    namespace = values.get("namespace") or {}
    return {**values, "namespace": {**namespace, "quota": hard}}


def chart_values(spec: LoadSpec, env_values: dict[str, Any], *, run: str, namespace: str | None,
                 node_pool: str, dataset_text: str = "") -> dict[str, Any]:  # fmt: skip
    """Values of charts/loadgen for a checked, sized spec in this environment."""
    workers, processors = spec.workers or 1, spec.record_processors or 1
    env_global = env_values.get("global") or {}
    keep = ("environment", "image", "commonLabels", "nodePools", "priorityClassName")
    return {
        "global": {k: env_global[k] for k in keep if k in env_global}
        | {"namespaces": {"load": namespace_of(run, namespace)}},
        "run": {"name": run},
        "units": [{"index": 0, "config": spec.config()}],
        "groups": [
            {"name": CONTROLLER, "indexes": [0]},
            {"name": WORKER, "indexes": [-1] * workers},
            {"name": RECORD_PROCESSOR, "indexes": [-1] * processors},
        ],
        "backoffLimitPerIndex": 0,
        "activeDeadlineSeconds": deadline(spec),
        "controller": {"args": controller_args(spec)},
        "worker": {"connections": spec.connections_per_worker},
        "endpoint": endpoint_peers(spec.endpoint),
        "dataset": dataset_text,
        "nodePool": node_pool,
    }
