"""The deploy CLI as a user runs it (a subprocess), and the files a training test writes: a spec and
the key pair's env file."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy.cluster.objectstore import StoreAccess
from deploy.paths import REPO

# A pod label the tests set through the chart's podLabels (kwok serves tests/fixtures/pod.log as every
# pod's log whatever its labels: tests/conftest.py).
LOG_LABELS = 'podLabels.kai-ml\\.io/test-logs="true"'


def cli(
    runs: Path, *args: str, kubeconfig: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    target = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    env = {**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "deploy", *args, *target], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def write_spec(folder: Path, name: str, **fields: Any) -> Path:
    """A tiny CPU run of the runner's own cnn (seconds on one core); `fields` override or add keys (None
    removes one)."""
    spec = {
        "name": name,
        "framework": "runner",
        "model": "cnn",
        "modelArgs": {"width": 4, "blocks": 1},
        "dataset": "synthetic",
        "datasetArgs": {"samples": 64, "classes": 2, "imageSize": 8},
        "epochs": 2,
        "batchSize": 16,
        "learningRate": 0.05,
        "seed": 5,
        "checkpointEvery": 3,
        "logEvery": 1,
        "nodePool": "cpu-optimized",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
        "ttlSecondsAfterFinished": 600,
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, sort_keys=False))
    return path


def write_credentials(store: StoreAccess, path: Path) -> Path:
    path.write_text(f"access-key={store.access_key}\nsecret-key={store.secret_key}\n")
    path.chmod(0o600)
    return path


def leaked(store: StoreAccess, texts: list[str], folders: list[Path]) -> list[str]:
    """Where the key pair appears: in any of `texts` (outputs) or any file under `folders`."""
    found = []
    secrets = [store.secret_key, store.access_key]
    for n, text in enumerate(texts):
        if any(s in text for s in secrets):
            found.append(f"output {n}")
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets):
                found.append(str(path))
    return found
