"""Chart folders on disk: a content digest (what a release was made from), whether the `file://`
dependencies (the platform-lib library chart) must be rebuilt with `helm dependency build`, and the
Kubernetes version floor that the charts' `kubeVersion` sets."""

import fcntl
import hashlib
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from deploy.errors import ChartError
from deploy.platform.values import read_yaml


def _files(chart_dir: Path) -> list[Path]:
    """The chart's own files: not the built dependencies under charts/ nor Chart.lock (both are made by
    `helm dependency build` and embed timestamps; the dependencies' sources are hashed instead)."""
    out = []
    for path in sorted(chart_dir.rglob("*")):
        rel = path.relative_to(chart_dir)
        if not path.is_file() or rel.parts[0] == "charts" or rel == Path("Chart.lock"):
            continue
        if any(p.startswith(".") for p in rel.parts):
            continue
        out.append(path)
    return out


def _file_dependencies(chart_dir: Path) -> list[tuple[dict[str, Any], Path]]:
    chart = read_yaml(chart_dir / "Chart.yaml")
    deps = []
    for dep in chart.get("dependencies") or []:
        repo = str(dep.get("repository") or "")
        if repo.startswith("file://"):
            deps.append((dep, (chart_dir / repo.removeprefix("file://")).resolve()))
    return deps


@cache
def chart_digest(chart_dir: Path) -> str:
    """sha256 over the chart's files and, recursively, those of its file:// dependencies."""
    h = hashlib.sha256()
    for path in _files(chart_dir):
        h.update(str(path.relative_to(chart_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    for dep, dep_dir in _file_dependencies(chart_dir):
        h.update(f"dep:{dep['name']}:{chart_digest(dep_dir)}".encode())
    return h.hexdigest()


def _newest_source_mtime(chart_dir: Path) -> float:
    """Newest change to the chart's own files or, recursively, to its file:// dependencies' (a
    parent packages its dependency together with the dependency's own built charts/)."""
    own = max((p.stat().st_mtime for p in _files(chart_dir)), default=0.0)
    return max([own, *(_newest_source_mtime(d) for _, d in _file_dependencies(chart_dir))])


def dependencies_stale(chart_dir: Path) -> bool:
    """True when the chart's file:// dependencies must be packaged again: an archive is missing or
    older than its sources, or Chart.lock is missing or older than Chart.yaml."""
    deps = _file_dependencies(chart_dir)
    if not deps:
        return False
    lock = chart_dir / "Chart.lock"
    if not lock.exists() or lock.stat().st_mtime < (chart_dir / "Chart.yaml").stat().st_mtime:
        return True
    for dep, dep_dir in deps:
        archives = list((chart_dir / "charts").glob(f"{dep['name']}-*.tgz"))
        if not archives or max(a.stat().st_mtime for a in archives) < _newest_source_mtime(dep_dir):
            return True
    return False


def build_order(chart_dirs: Iterable[Path]) -> list[Path]:
    """The charts and their file:// dependencies, each after what it depends on."""
    order: list[Path] = []

    def visit(chart_dir: Path) -> None:
        for _, dep_dir in _file_dependencies(chart_dir):
            visit(dep_dir)
        if chart_dir not in order:
            order.append(chart_dir)

    for chart_dir in chart_dirs:
        visit(chart_dir.resolve())
    return order


def build_dependencies(helm: Path, chart_dirs: Iterable[Path], log: Callable[[str], None] | None = None) -> list[Path]:
    """Package the file:// dependencies of each chart that needs it, dependencies first; return the
    charts rebuilt. `dependency update --skip-refresh` rather than `build`: a Chart.lock left from an
    older Chart.yaml makes `build` refuse, and every dependency here is local."""
    stale = [c for c in build_order(chart_dirs) if dependencies_stale(c)]
    if stale and log:
        log(f"packaging chart dependencies of {', '.join(c.name for c in stale)}")
    rebuilt = []
    for chart_dir in stale:
        # Another process may be packaging the same chart (a second command, a parallel test): helm's temporary
        # folder in the chart is not its own then. One at a time, holding a lock on the chart's Chart.yaml.
        with open(chart_dir / "Chart.yaml", "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            if not dependencies_stale(chart_dir):  # the other one did it
                continue
            done = subprocess.run(
                [str(helm), "dependency", "update", "--skip-refresh", str(chart_dir)], capture_output=True, text=True
            )
        if done.returncode != 0:
            raise ChartError(f"`helm dependency update {chart_dir}` failed: {done.stderr.strip()}")
        rebuilt.append(chart_dir)
    return rebuilt


# `kubeVersion: ">=1.33.0-0"`: the lowest Kubernetes minor a chart installs on.
_FLOOR = re.compile(r">=\s*v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class KubeFloor:
    version: tuple[int, int]
    source: Path  # the Chart.yaml that sets it

    def __str__(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def kube_version_floor(charts_dir: Path) -> KubeFloor | None:
    """The oldest Kubernetes every chart of the suite accepts: the highest `>=` floor among the charts'
    `kubeVersion`s (None when no chart names one). Preflight refuses an older server with it, before
    Helm would refuse the first chart."""
    found: KubeFloor | None = None
    for chart_yaml in sorted(charts_dir.glob("*/Chart.yaml")):
        match = _FLOOR.search(str(read_yaml(chart_yaml).get("kubeVersion") or ""))
        if match:
            version = (int(match[1]), int(match[2]))
            if found is None or version > found.version:
                found = KubeFloor(version, chart_yaml)
    return found
