"""`bench run` on the local control plane: the dev platform installed, a 6-config sweep launched as
two Indexed Jobs, each config's result collected once from its pod's log (kwok serves
tests/fixtures/pod.log for pods labelled kai-ml.io/test-logs), then results, plot and delete."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.paths import REPO

pytestmark = pytest.mark.cluster

SWEEP = REPO / "tests" / "fixtures" / "bench-sweep.yaml"


def cli(kubeconfig: Path | None, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    target = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args, *target],
        cwd=REPO,
        env={**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def platform(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """dev deployed with room for six one-GPU configs at once in its benchmarks quota."""
    runs = tmp_path_factory.mktemp("runs")
    gpus = "policy.namespaces.benchmarks.quota.requests\\.nvidia\\.com/gpu=8"
    done = cli(kubeconfig, runs, "--env", "dev", "--set", gpus)
    assert done.returncode == 0, done.stderr
    yield runs
    done = cli(kubeconfig, runs, "destroy", "--env", "dev", "--yes")
    assert done.returncode == 0, done.stderr


def test_a_sweep_runs_and_every_config_reports_once(platform: Path, kubeconfig: Path) -> None:
    labels = 'podLabels.kai-ml\\.io/test-logs="true"'
    done = cli(kubeconfig, platform, "bench", "run", str(SWEEP), "--env", "dev", "--set", labels, "--timeout", "2m")
    assert done.returncode == 0, done.stderr
    assert "6 of 6 configs have a result" in done.stderr

    listed = cli(None, platform, "bench", "results", "bench-test", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["config"] for r in rows) == list(range(6))
    # Results belong to the config of the pod's completion index, never to the log's own index.
    by_config = {r["config"]: r for r in rows}
    assert {by_config[i]["gpuType"] for i in (0, 1, 2)} == {"nvidia-t4"}
    assert {by_config[i]["gpuType"] for i in (3, 4, 5)} == {"nvidia-a100"}

    plot = platform / "latency.png"
    assert cli(None, platform, "bench", "results", "bench-test", "--plot", str(plot)).returncode == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    gone = cli(kubeconfig, platform, "bench", "delete", "bench-test", "--env", "dev")
    assert gone.returncode == 0, gone.stderr
    kept = cli(None, platform, "bench", "results", "bench-test", "--format", "json")
    assert len(json.loads(kept.stdout)) == 6
