"""A checked load run to charts/loadgen's values: one Indexed Job per role (the controller's one
completion reports the run's result; the workers' and record processors' report none of their own:
negative `indexes`), the controller's arguments, the run's namespace with a quota sized to it, and
the endpoint the workers' NetworkPolicy allows."""

from decimal import Decimal
from typing import Any

from deploy.workloads.bench.sweep import quantity
from deploy.workloads.load.spec import LoadSpec, endpoint_peers

CONTROLLER, WORKER, RECORD_PROCESSOR = "controller", "worker", "record-processor"
# Resources per role: a worker holds its 500 connections on about one core; a record processor
# parses for four workers; the controller aggregates and proxies.
RESOURCES = {
    CONTROLLER: {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    WORKER: {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    RECORD_PROCESSOR: {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
}
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


def quota(workers: int, processors: int) -> dict[str, str]:
    """The namespace's ResourceQuota: exactly what the run's pods ask for."""
    counts = {CONTROLLER: 1, WORKER: workers, RECORD_PROCESSOR: processors}
    hard: dict[str, str] = {"pods": str(sum(counts.values()))}
    for kind in ("requests", "limits"):
        cpu = sum(quantity(RESOURCES[r][kind]["cpu"]) * n for r, n in counts.items())
        memory = sum(quantity(RESOURCES[r][kind]["memory"]) * n for r, n in counts.items())
        hard[f"{kind}.cpu"] = f"{int(cpu * 1000)}m"
        hard[f"{kind}.memory"] = f"{int(memory / Decimal(2**20))}Mi"
    return hard


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
        "namespace": {"quota": quota(workers, processors)},
        "controller": {"args": controller_args(spec), "resources": RESOURCES[CONTROLLER]},
        "worker": {"resources": RESOURCES[WORKER], "connections": spec.connections_per_worker},
        "recordProcessor": {"resources": RESOURCES[RECORD_PROCESSOR]},
        "endpoint": endpoint_peers(spec.endpoint),
        "dataset": dataset_text,
        "nodePool": node_pool,
    }
