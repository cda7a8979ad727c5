"""Locate (and on request build) the binaries that no package registry ships."""

import os
import subprocess
from pathlib import Path

from deploy.errors import ToolMissingError
from deploy.paths import TOOLS_SCRIPT, tools_bin

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "kwokctl")


def tool(name: str) -> Path:
    """Path of a project tool; the project's own build wins over one on PATH."""
    path = tools_bin() / name
    if path.exists():
        return path
    raise ToolMissingError(
        f"`{name}` is not installed in {tools_bin()}. Build the project's tools once with "
        f"`{TOOLS_SCRIPT.relative_to(TOOLS_SCRIPT.parent.parent)}` (a cold build takes about 10 minutes on "
        "2 cores and is cached afterwards), or point KAIML_TOOLS_BIN at a folder that has it."
    )


def ensure(names: tuple[str, ...], build: bool = True) -> dict[str, Path]:
    """Return the named tools, running the (cached, idempotent) build script first if any is missing."""
    missing = [n for n in names if not (tools_bin() / n).exists()]
    if missing and build:
        # The build script prints its own progress; a cached run takes a second.
        result = subprocess.run(["bash", str(TOOLS_SCRIPT)], env=os.environ.copy(), check=False)
        if result.returncode != 0:
            raise ToolMissingError(
                f"building {', '.join(missing)} failed (exit {result.returncode}); see the output above."
            )
    return {n: tool(n) for n in names}
