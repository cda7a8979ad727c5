"""`bench run` on the local control plane: the dev platform installed, a 6-config sweep launched as
two Indexed Jobs, each config's result collected once from its pod's log (kwok serves
tests/fixtures/pod.log for pods labelled kai-ml.io/test-logs), then results, plot and delete."""

import json
import subprocess
from pathlib import Path

import pytest
from bench_cli import LOG_LABELS, cli, write_sweep
from kubernetes import client
from kubernetes.config import new_client_from_config

from deploy import tools
from deploy.bench.store import read_records
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


def test_pods_that_leave_no_log_fail_their_configs_without_a_crash(
    platform: Path, kubeconfig: Path, tmp_path: Path
) -> None:
    """A user's local cluster has no ClusterLogs: kwok's fake nodes run no container, and the API server
    answers a log read with 400. Each such result is lost, run again up to backoffLimitPerIndex times,
    then its config fails with the server's reason; the command ends with its summary and exit 1."""
    sweep = write_sweep(tmp_path, "no-logs", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-t4"},
                        matrix={"batchSize": [1, 2]}, backoffLimitPerIndex=1)  # fmt: skip
    try:
        done = cli(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev", "--timeout", "2m")
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert "0 of 2 configs have a result, 2 failed (configs 0, 1)" in done.stderr, done.stderr
        reasons = [line for line in done.stderr.splitlines() if line.strip().startswith("config ")]
        assert len(reasons) == 2 and all("log unavailable" in r and "400" in r and "(2 times)" in r for r in reasons)
        assert "results lost (their pods' logs gone or unreadable): running configs" in done.stderr
        assert not list(read_records(platform / "bench-no-logs" / "results.jsonl"))

        # The release is whole: deployed with its re-run Job, every Job finished.
        status = subprocess.run(
            [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig), "status", "bench-no-logs", "-o", "json"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["info"]["status"] == "deployed"
        jobs = client.BatchV1Api(new_client_from_config(str(kubeconfig))).list_namespaced_job(
            "benchmarks-dev", label_selector="kai-ml.io/benchmark=no-logs"
        )
        assert len(jobs.items) >= 2  # the sweep's Job and its re-run Job(s)
        for job in jobs.items:
            assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or []), job.status
    finally:
        cli(kubeconfig, platform, "bench", "delete", "no-logs", "--env", "dev")
