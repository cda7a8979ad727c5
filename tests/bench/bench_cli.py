"""The deploy CLI as a user runs it (a subprocess), for the bench tests."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy.paths import REPO

# A pod label the tests set through the chart's podLabels (kwok serves tests/fixtures/pod.log as every
# pod's log whatever its labels: tests/conftest.py).
LOG_LABELS = 'podLabels.kai-ml\\.io/test-logs="true"'


def cli_args(kubeconfig: Path | None, *args: str) -> list[str]:
    target = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return [sys.executable, "-m", "deploy", *args, *target]


def cli_env(runs: Path) -> dict[str, str]:
    return {**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"}


def cli(kubeconfig: Path | None, runs: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(kubeconfig, *args), cwd=REPO, env=cli_env(runs), capture_output=True, text=True, timeout=timeout
    )


def start(kubeconfig: Path, runs: Path, *args: str) -> subprocess.Popen[str]:
    """The CLI in the background (a sweep followed while a test disturbs it)."""
    return subprocess.Popen(
        cli_args(kubeconfig, *args),
        cwd=REPO,
        env=cli_env(runs),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_sweep(folder: Path, name: str, **fields: Any) -> Path:
    """A small CPU-cheap model-latency sweep; `fields` override or add top-level keys."""
    sweep = {
        "kind": "model-latency",
        "name": name,
        "base": {"model": "mlp", "inputShape": [64], "warmup": 1, "iterations": 5},
        "priorityClassName": "medium-priority-batch",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
        "ttlSecondsAfterFinished": 600,
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path
