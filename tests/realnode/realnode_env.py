"""The real-node test cluster's names and handle (shared by conftest.py and the tests)."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy import tools
from deploy.cluster.controlplane import LocalCluster
from deploy.cluster.realnode import REAL_LABEL
from deploy.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "bench"))
from bench_cli import cli

NAME = os.environ.get("KAIML_REALNODE_CLUSTER", "kaiml-realnode-test")
VALUES = REPO / "tests" / "fixtures" / "realnode-values.yaml"
POOL = "real-cpu"
# Another tag per session (KAIML_REALNODE_TAG) keeps parallel sessions off each other's image in the shared build cache.
TAG = os.environ.get("KAIML_REALNODE_TAG", "realnode-test")


@dataclass
class RealCluster:
    local: LocalCluster
    registry: str
    node: str
    runs: Path

    @property
    def kubeconfig(self) -> Path:
        return self.local.kubeconfig

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """The CLI against this cluster."""
        return cli(self.kubeconfig, self.runs, *args, timeout=timeout)

    def offline(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI for commands that read the runs folder only (`bench results`)."""
        return cli(None, self.runs, *args)

    def kubectl(self, *args: str, timeout: float = 60) -> str:
        """The project's kubectl against this cluster; asserts it succeeded (its stderr in the message)."""
        cmd = [str(tools.tool("kubectl")), "--kubeconfig", str(self.kubeconfig), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def image_flags(self) -> list[str]:
        """The platform's own flags: environment, the real pool's values, and the image's registry and tag."""
        return ["--env", "dev", "-f", str(VALUES), "--registry", self.registry, "--tag", TAG]


def real_pod(
    name: str,
    namespace: str,
    image: str,
    command: list[str],
    labels: dict[str, str] | None = None,
    **container: Any,
) -> dict[str, Any]:
    """A pod pinned to the real node under the restricted profile (non-root, read-only root, no token);
    `container` adds fields to its one container (env, volumeMounts)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "nodeSelector": {REAL_LABEL: "true"},
            "tolerations": [{"key": REAL_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": command,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    **container,
                }
            ],
        },
    }
