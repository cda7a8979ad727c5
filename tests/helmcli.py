"""The project's helm against a test cluster, for the cluster tests that install charts with plain Helm."""

import subprocess
from pathlib import Path

from deploy import tools


def helm(kubeconfig: Path, *args: str) -> str:
    """Run helm; assert it succeeded (its stderr in the message); its stdout."""
    done = subprocess.run(
        [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True
    )
    assert done.returncode == 0, f"helm {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout
