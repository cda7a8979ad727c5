"""The sweep's release: charts/benchmark installed without waiting for its Jobs, and uninstalled."""

from pathlib import Path
from typing import Any

from deploy import charts, tools
from deploy.helm import Helm, run
from deploy.render import nested, parse_set
from deploy.values import deep_merge


def release_name(sweep: str) -> str:
    return f"bench-{sweep}"


def benchmarks_namespace(values: dict[str, Any], release_namespace: str) -> str:
    return ((values.get("global") or {}).get("namespaces") or {}).get("benchmarks") or release_namespace


def with_sets(values: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """--set key.path=value on the chart's values (YAML-typed; `\\.` for a dot in a key)."""
    for expr in sets:
        path, value = parse_set(expr)
        values = deep_merge(values, nested(path, value))
    return values


def install(helm: Helm, chart_dir: Path, values: dict[str, Any], release_namespace: str, timeout: str) -> dict:
    charts.build_dependencies(tools.tool("helm"), [chart_dir])
    name = release_name(values["sweep"]["name"])
    return run(helm.upgrade(name, chart_dir, values, release_namespace, f"bench {name}", timeout, wait=False))


def uninstall(helm: Helm, sweep: str, release_namespace: str, timeout: str) -> bool:
    """False when there was no release."""
    name = release_name(sweep)
    if run(helm.status(name, release_namespace)) is None:
        return False
    run(helm.uninstall(name, release_namespace, timeout))
    return True
