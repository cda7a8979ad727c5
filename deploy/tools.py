"""Locate the binaries that no package registry ships, building them on first use.

The build (tools/build-tools.sh) is cached per version under ${XDG_CACHE_HOME:-~/.cache}/kai-ml-platform:
a fresh clone finds the cache and only links it (a second); a machine where nothing ran before
builds once, with progress. A KAIML_TOOLS_BIN folder is the user's own and is never built into."""

import os
import subprocess
from pathlib import Path

from deploy.errors import ToolMissingError
from deploy.paths import TOOLS_SCRIPT, tools_bin

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "kwokctl")
# binary -> the build-tools.sh target that makes it
TARGETS = {
    "helm": "helm",
    "helm-docs": "helm_docs",
    "ct": "chart_testing",
    "etcd": "etcd",
    "kwok": "kwok",
    "kwokctl": "kwok",
    "helmfile": "helmfile",
    **{b: "kubernetes" for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")},
}
COLD_BUILD = "a cold build of every tool takes 10 to 25 minutes on 2 cores, once; it is cached afterwards"


def _script() -> str:
    return str(TOOLS_SCRIPT.relative_to(TOOLS_SCRIPT.parent.parent))


def tool(name: str) -> Path:
    """Path of a project tool, built (or linked from the cache) first when it is missing."""
    return ensure((name,))[name]


def ensure(names: tuple[str, ...], build: bool = True) -> dict[str, Path]:
    """The named tools; any that is missing is built first by the (cached, idempotent) build
    script, unless build is False or KAIML_TOOLS_BIN names the folder."""
    missing = [n for n in names if not (tools_bin() / n).exists()]
    if missing and build and "KAIML_TOOLS_BIN" not in os.environ:
        from deploy.console import log

        targets = sorted({TARGETS.get(n, n) for n in missing})
        log(
            f"{', '.join(missing)} not in {tools_bin()}: running `{_script()} {' '.join(targets)}` "
            f"(with a warm cache it only links the tools; {COLD_BUILD})"
        )
        # The build script prints its own progress to stderr.
        result = subprocess.run(["bash", str(TOOLS_SCRIPT), *targets], env=os.environ.copy(), check=False)
        if result.returncode != 0:
            raise ToolMissingError(
                f"building {', '.join(missing)} with `{_script()}` failed (exit {result.returncode}); see its "
                "output above."
            )
    for name in names:
        if not (tools_bin() / name).exists():
            raise ToolMissingError(
                f"`{name}` is not installed in {tools_bin()}. Build the project's tools with `{_script()}` "
                f"({COLD_BUILD}), or point KAIML_TOOLS_BIN at a folder that has it."
            )
    return {n: tools_bin() / n for n in names}
