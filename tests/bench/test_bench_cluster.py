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


def test_a_sweep_is_picked_up_again_and_never_emptied(platform: Path, kubeconfig: Path, tmp_path: Path) -> None:
    """--no-follow, then `bench follow`; `bench run` of the same sweep resumes, other values are refused
    unless --restart, which keeps the earlier results beside the new ones."""
    sweep = tmp_path / "resume.yaml"
    sweep.write_text(SWEEP.read_text().replace("name: bench-test", "name: bench-resume"))
    launch = ("bench", "run", str(sweep), "--env", "dev", "--set", LOG_LABELS, "--timeout", "2m")
    started = cli(kubeconfig, platform, *launch, "--no-follow")
    assert started.returncode == 0, started.stderr
    assert "bench follow bench-resume" in started.stderr
    results = platform / "bench-bench-resume" / "results.jsonl"
    assert not results.exists()

    followed = cli(kubeconfig, platform, "bench", "follow", "bench-resume", "--env", "dev")
    assert followed.returncode == 0, followed.stderr
    assert "6 of 6 configs have a result" in followed.stderr
    first = results.read_text()
    assert len(first.splitlines()) == 6

    again = cli(kubeconfig, platform, *launch)
    assert again.returncode == 0, again.stderr
    assert "picking it up" in again.stderr and "6 of 6 configs have a result" in again.stderr
    assert results.read_text() == first  # nothing emptied, nothing recorded twice

    other = (*launch, "--set", "parallelism=1")
    refused = cli(kubeconfig, platform, *other)
    assert refused.returncode != 0 and "launched before with other values" in refused.stderr, refused.stderr
    assert "--restart" in refused.stderr and results.read_text() == first

    restarted = cli(kubeconfig, platform, *other, "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert (platform / "bench-bench-resume" / "results-1.jsonl").read_text() == first
    assert len(results.read_text().splitlines()) == 6

    missing = cli(kubeconfig, platform, "bench", "follow", "nothing-here", "--env", "dev")
    assert missing.returncode != 0 and "no sweep nothing-here was launched from here" in missing.stderr
    assert cli(kubeconfig, platform, "bench", "delete", "bench-resume", "--env", "dev").returncode == 0
