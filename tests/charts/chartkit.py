"""Helpers of the chart tests: paths, the project's tools, rendered manifests and
the shapes in them (pod specs, quantities)."""

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import tools
from deploy.errors import ToolMissingError
from deploy.paths import CHARTS
from deploy.platform import charts
from deploy.platform.values import environments

UMBRELLA = CHARTS / "platform"
ENVIRONMENTS = environments()
ARGO_API = "argoproj.io/v1alpha1/WorkflowTemplate"

Manifest = dict[str, Any]
# The platform's PriorityClasses and their values (reference 001; `platform-critical` is its
# "system-critical", a name Kubernetes reserves).
PRIORITY_CLASSES = {
    "platform-critical": 1_000_000,
    "interactive": 100_000,
    "high-priority-batch": 50_000,
    "medium-priority-batch": 10_000,
    "low-priority-batch": 1_000,
    "maintenance": 100,
    "preemptible": 0,
}


def tool(name: str) -> str:
    """A project tool; its absence fails the test run (tools/build-tools.sh builds it)."""
    try:
        return str(tools.tool(name))
    except ToolMissingError as err:
        pytest.fail(str(err), pytrace=False)


def build_dependencies(helm: str) -> None:
    """Package every chart's file:// dependencies that are missing or stale, dependencies first."""
    charts.build_dependencies(Path(helm), sorted(p.parent for p in CHARTS.glob("*/Chart.yaml")))


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def parse(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def template(helm: str, chart: Path, *args: str, release: str = "kai-ml") -> list[Manifest]:
    """`helm template` that must succeed."""
    result = run_helm(helm, "template", release, str(chart), *args)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


@functools.cache
def environment_values(env: str) -> dict[str, Any]:
    """What `-f values/<env>.yaml` gives the umbrella, read as the deploy tool reads it."""
    from deploy.platform.values import load_environment

    return load_environment(env)


@functools.cache
def node_pools(env: str) -> dict[str, Any]:
    return environment_values(env)["global"]["nodePools"]


def tolerations_for(pool: dict[str, Any]) -> list[dict[str, str]]:
    """The tolerations that match exactly a pool's taints."""
    return [
        {"key": t["key"], "operator": "Equal", "value": t.get("value", ""), "effect": t["effect"]}
        for t in pool.get("taints") or []
    ]


@dataclass(frozen=True)
class Pod:
    """One pod shape: a workload's pod template or one step of a WorkflowTemplate."""

    source: str
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]
    replicas: int = 1


POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pods(manifests: list[Manifest]) -> list[Pod]:
    """Every pod shape in the manifests, with its fewest replicas (an HPA's minimum)."""
    hpa_min = {
        (m["metadata"]["namespace"], m["spec"]["scaleTargetRef"]["name"]): m["spec"]["minReplicas"]
        for m in manifests
        if m["kind"] == "HorizontalPodAutoscaler"
    }
    found = []
    for m in manifests:
        kind, meta, spec = m["kind"], m["metadata"], m.get("spec", {})
        source = f"{kind}/{meta['name']}"
        if kind in POD_TEMPLATE_KINDS | {"CronJob"}:
            template = spec["jobTemplate"]["spec"]["template"] if kind == "CronJob" else spec["template"]
            replicas = spec.get("replicas", hpa_min.get((meta["namespace"], meta["name"]), 1))
            found.append(Pod(source, meta["namespace"], template["metadata"]["labels"], template["spec"], replicas))
        elif kind == "WorkflowTemplate":
            for step in spec["templates"]:
                if "container" not in step:
                    continue
                labels = {**spec.get("podMetadata", {}).get("labels", {}), **step.get("metadata", {}).get("labels", {})}
                pod_spec = {
                    "serviceAccountName": spec.get("serviceAccountName"),
                    "securityContext": spec.get("securityContext"),
                    "priorityClassName": step.get("priorityClassName"),
                    "nodeSelector": step.get("nodeSelector"),
                    "tolerations": step.get("tolerations"),
                    "affinity": step.get("affinity"),
                    "containers": [step["container"]],
                }
                found.append(Pod(f"{source}/{step['name']}", meta["namespace"], labels, pod_spec))
    return found


_SCALE = {
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def quantity(value: str | float) -> float:
    """A Kubernetes quantity as a number (cores, bytes, counts)."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match and match[2] in _SCALE, f"not a quantity: {value!r}"
    return float(match[1]) * _SCALE[match[2]]
