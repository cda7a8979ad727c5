"""The platform package's rules that need no cluster: one Kubernetes version floor, taken from the
charts; and modules that import each other in one direction only."""

import ast
from pathlib import Path

import pytest

from deploy.errors import PreflightError
from deploy.paths import CHARTS, REPO
from deploy.platform.charts import kube_version_floor
from deploy.platform.preflight import check_version, parse_version


def test_the_version_floor_is_the_charts_kube_version() -> None:
    floor = kube_version_floor(CHARTS)
    assert floor is not None and floor.version == (1, 33)
    assert floor.source.parent.parent == CHARTS and floor.source.name == "Chart.yaml"


def test_a_1_32_server_is_refused_with_the_floor_named() -> None:
    floor = kube_version_floor(CHARTS)
    with pytest.raises(PreflightError) as err:
        check_version(*parse_version("v1.32.9", "1", "32"), floor)
    assert "the server runs Kubernetes v1.32.9; the charts need 1.33 or newer" in str(err.value)
    assert str(floor.source) in str(err.value)
    assert check_version(*parse_version("v1.33.0", "1", "33+"), floor) == []
    assert "newer than tested" in check_version(*parse_version("v1.99.0", "1", "99"), floor)[0]


def test_the_highest_floor_of_the_charts_wins(tmp_path: Path) -> None:
    for name, spec in (("a", ">=1.30.0-0"), ("b", ">= 1.34.0-0 <1.40.0-0"), ("c", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Chart.yaml").write_text(f"name: {name}\n" + (f"kubeVersion: '{spec}'\n" if spec else ""))
    floor = kube_version_floor(tmp_path)
    assert floor is not None and str(floor) == "1.34" and floor.source == tmp_path / "b" / "Chart.yaml"
    assert kube_version_floor(tmp_path / "c") is None


def _imports(path: Path) -> set[str]:
    """deploy.* modules imported at module level (TYPE_CHECKING blocks included; imports inside
    functions are deferred on purpose and cannot make a cycle at import time)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deploy"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("deploy"))
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(getattr(node, "orelse", []))

    visit(ast.parse(path.read_text()).body)
    return found


def test_no_import_cycle_in_the_deploy_package() -> None:
    modules = {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (REPO / "deploy").rglob("*.py")
    }
    graph = {name: sorted(m for m in _imports(path) if m in modules and m != name) for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in graph[name]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                walk(nxt, [*path, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
