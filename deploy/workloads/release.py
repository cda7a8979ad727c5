"""A run's release: the workload's chart installed without waiting for its Jobs, upgraded with re-run
groups, and uninstalled."""

import contextlib
import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deploy import tools
from deploy.kube.helm import Helm, run
from deploy.platform import charts
from deploy.platform.values import deep_merge, nested, parse_set
from deploy.workloads.kind import Workload

HELM_DRIVER = "HELM_DRIVER"


def release_namespace(workload: Workload, values: dict[str, Any], given: str | None = None) -> str:
    """Where a run's Helm release (its records, ConfigMaps: configmap_storage) lives: `given`
    (--release-namespace), else the namespace its pods run in, so that whoever may launch there needs no
    rights elsewhere (platform-policy's benchmark-launcher Role is namespaced), else `default` (also for a
    workload whose chart makes its namespace: Helm keeps the records before the namespace exists)."""
    if given:
        return given
    return "default" if workload.creates_namespace else workload.namespace(values, "default")


def with_sets(values: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """--set key.path=value on the chart's values (YAML-typed; `\\.` for a dot in a key)."""
    for expr in sets:
        path, value = parse_set(expr)
        values = deep_merge(values, nested(path, value))
    return values


def with_rerun(
    values: dict[str, Any], lost: list[int], deadline_left_s: float | None = None
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The sweep's values plus, per group, one more group of its `lost` configs (their pods succeeded,
    but the result went with the pod or its node before it was read, and the Job counts them as done):
    a Job of the same pod shape that runs only those configs again, within `deadline_left_s` (what is
    left of the sweep's deadline; its Job's own deadline). Returns the values and the added groups
    (name -> config indexes)."""
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
        group = {**template, "name": name, "rerunOf": origin, "indexes": indexes}
        if deadline_left_s is not None:
            group["deadlineSeconds"] = max(1, int(deadline_left_s))
        groups.append(group)
        added[name] = indexes
    return values, added


@contextlib.contextmanager
def configmap_storage() -> Iterator[None]:
    """Helm keeps a workload release's records as ConfigMaps (its configmap driver), not Secrets: the
    team members who launch sweeps may then never read a Secret (platform-policy's benchmark-launcher
    Role). Helm reads its driver from the environment only; the helm subprocesses inherit it."""
    before = os.environ.get(HELM_DRIVER)
    os.environ[HELM_DRIVER] = "configmap"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HELM_DRIVER, None)
        else:
            os.environ[HELM_DRIVER] = before


def install(
    helm: Helm, workload: Workload, chart_dir: Path, values: dict[str, Any], release_namespace: str, timeout: str
) -> dict:
    charts.build_dependencies(tools.tool("helm"), [chart_dir])
    name = workload.release(workload.run_name(values))
    with configmap_storage():
        return run(
            helm.upgrade(name, chart_dir, values, release_namespace, f"{workload.name} {name}", timeout, wait=False)
        )


def installed(helm: Helm, workload: Workload, run_name: str, release_namespace: str) -> bool:
    with configmap_storage():
        return run(helm.status(workload.release(run_name), release_namespace)) is not None


def uninstall(helm: Helm, workload: Workload, run_name: str, release_namespace: str, timeout: str) -> bool:
    """False when there was no release."""
    name = workload.release(run_name)
    with configmap_storage():
        if run(helm.status(name, release_namespace)) is None:
            return False
        run(helm.uninstall(name, release_namespace, timeout))
    return True
