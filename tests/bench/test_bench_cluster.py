"""`bench run` on the local control plane: the dev platform installed, a 6-config sweep launched as
two Indexed Jobs, each config's result collected once from its pod's log (kwok serves
tests/fixtures/pod.log for pods labelled kai-ml.io/test-logs), then results, plot and delete."""

import json
from pathlib import Path

import pytest
from bench_cli import LOG_LABELS, cli

from deploy.paths import REPO

pytestmark = pytest.mark.cluster

SWEEP = REPO / "tests" / "fixtures" / "bench-sweep.yaml"


def test_a_sweep_runs_and_every_config_reports_once(platform: Path, kubeconfig: Path) -> None:
    done = cli(kubeconfig, platform, "bench", "run", str(SWEEP), "--env", "dev", "--set", LOG_LABELS, "--timeout", "2m")
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
