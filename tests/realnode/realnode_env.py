"""The real-node test cluster's names and handle (shared by conftest.py and the tests)."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.cluster.local import LocalCluster
from deploy.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "bench"))
from bench_cli import cli

NAME = os.environ.get("KAIML_REALNODE_CLUSTER", "kaiml-realnode-test")
VALUES = REPO / "tests" / "fixtures" / "realnode-values.yaml"
POOL = "real-cpu"
TAG = "realnode-test"


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

    def image_flags(self) -> list[str]:
        """The platform's own flags: environment, the real pool's values, and the image's registry and tag."""
        return ["--env", "dev", "-f", str(VALUES), "--registry", self.registry, "--tag", TAG]
