"""A run's release: the workload's chart installed without waiting for its Jobs, upgraded with re-run
groups, and uninstalled."""

import copy
from pathlib import Path
from typing import Any

from deploy import tools
from deploy.kube.helm import Helm, run
from deploy.platform import charts
from deploy.platform.values import deep_merge, nested, parse_set
from deploy.workloads.kind import Workload


def with_sets(values: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """--set key.path=value on the chart's values (YAML-typed; `\\.` for a dot in a key)."""
    for expr in sets:
        path, value = parse_set(expr)
        values = deep_merge(values, nested(path, value))
    return values


def with_rerun(values: dict[str, Any], lost: list[int]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The sweep's values plus, per group, one more group of its `lost` configs (their pods succeeded,
    but the result went with the pod or its node before it was read, and the Job counts them as done):
    a Job of the same pod shape that runs only those configs again. Returns the values and the
    added groups (name -> config indexes)."""
    values = copy.deepcopy(values)
    groups: list[dict[str, Any]] = values["groups"]
    owner = {i: g for g in groups for i in g["indexes"]}  # a later (re-run) group wins
    wanted: dict[str, list[int]] = {}
    for index in sorted(set(lost)):
        group = owner[index]
        wanted.setdefault(group.get("rerunOf", group["name"]), []).append(index)
    added: dict[str, list[int]] = {}
    for origin, indexes in wanted.items():
        n = 1 + sum(1 for g in groups if g.get("rerunOf") == origin)
        name = f"{origin[:27].rstrip('-')}-r{n}"  # the chart's 32-character group names
        template = next(g for g in groups if g["name"] == origin)
        groups.append({**template, "name": name, "rerunOf": origin, "indexes": indexes})
        added[name] = indexes
    return values, added


def install(
    helm: Helm, workload: Workload, chart_dir: Path, values: dict[str, Any], release_namespace: str, timeout: str
) -> dict:
    charts.build_dependencies(tools.tool("helm"), [chart_dir])
    name = workload.release(workload.run_name(values))
    return run(helm.upgrade(name, chart_dir, values, release_namespace, f"{workload.name} {name}", timeout, wait=False))


def installed(helm: Helm, workload: Workload, run_name: str, release_namespace: str) -> bool:
    return run(helm.status(workload.release(run_name), release_namespace)) is not None


def uninstall(helm: Helm, workload: Workload, run_name: str, release_namespace: str, timeout: str) -> bool:
    """False when there was no release."""
    name = workload.release(run_name)
    if run(helm.status(name, release_namespace)) is None:
        return False
    run(helm.uninstall(name, release_namespace, timeout))
    return True
