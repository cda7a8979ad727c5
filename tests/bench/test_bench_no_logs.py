"""`bench run` on a cluster like a user's local one: no kwok ClusterLogs, so kwok's fake nodes run no
container and the API server answers each log read with 400. Each such result is lost, run again up
to backoffLimitPerIndex times, then its config fails with the server's reason; the command ends with
its summary and exit 1, and the release is whole (deployed, its Jobs finished)."""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench_cli import cli, write_sweep
from kubernetes import client

from deploy import tools
from deploy.cluster.controlplane import LocalCluster
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment
from deploy.workloads.bench.workload import BENCH
from deploy.workloads.release import HELM_DRIVER
from deploy.workloads.status import run_status
from deploy.workloads.store import ResultStore, read_records

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def bare() -> Iterator[LocalCluster]:
    """A cluster without the session cluster's ClusterLogs document (which serves a log to every pod)."""
    local = LocalCluster("kaiml-no-logs")
    local.down()
    try:
        local.up(node_pools(load_environment("dev")), log=print)
        yield local
    finally:
        local.down()


def test_pods_that_leave_no_log_fail_their_configs_without_a_crash(bare: LocalCluster, tmp_path: Path) -> None:
    kubeconfig = bare.kubeconfig
    deployed = cli(kubeconfig, tmp_path, "--env", "dev")
    assert deployed.returncode == 0, deployed.stderr
    sweep = write_sweep(tmp_path, "no-logs", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-t4"},
                        matrix={"batchSize": [1, 2]}, backoffLimitPerIndex=1)  # fmt: skip

    done = cli(kubeconfig, tmp_path, "bench", "run", str(sweep), "--env", "dev", "--timeout", "2m")

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "0 of 2 configs have a result, 2 failed (configs 0, 1)" in done.stderr, done.stderr
    reasons = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("config ")]
    assert len(reasons) == 2, done.stderr
    for reason in reasons:
        assert "log unavailable" in reason and "400" in reason and "(2 times)" in reason, reason
    assert "results lost (their pods' logs gone or unreadable): running configs" in done.stderr
    # No result, and each failure stored with its reason (what `bench results` lists).
    records = list(read_records(tmp_path / "bench-no-logs" / "results.jsonl"))
    assert sorted(r["config"] for r in records) == [0, 1] and not any("result" in r for r in records)
    assert all("log unavailable" in r["failure"] and "400" in r["failure"] for r in records), records
    listed = cli(None, tmp_path, "bench", "results", "no-logs", "--format", "csv")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("log unavailable") == 2, listed.stdout
    # Their pods succeeded, so only the stored failures say why: `bench status` shows them.
    store = ResultStore(tmp_path / "bench-no-logs")
    rows = run_status(bare.api_client(), BENCH, "benchmarks-dev", "no-logs", store.recorded, {}, store.failed)
    shown = {index: why for row in rows for index, why in row.failures.items()}
    assert shown == store.failed and len(shown) == 2

    # The release is whole: deployed with its re-run Job(s), every Job finished. Its records are in the
    # namespace its pods run in (release_namespace's default).
    status = subprocess.run(
        [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig), "status", "bench-no-logs", "-o", "json",
         "-n", "benchmarks-dev"],
        capture_output=True, text=True, env={**os.environ, HELM_DRIVER: "configmap"},  # workload releases' storage
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["info"]["status"] == "deployed"
    batch = client.BatchV1Api(bare.api_client())

    def finished() -> list[str] | None:
        jobs = batch.list_namespaced_job("benchmarks-dev", label_selector="kai-ml.io/benchmark=no-logs").items
        complete = [
            j for j in jobs if any(c.type == "Complete" and c.status == "True" for c in j.status.conditions or [])
        ]
        return [j.metadata.name for j in jobs] if len(complete) == len(jobs) else None

    deadline = time.monotonic() + 60  # a Job's status follows its last pod's by a moment
    while (names := finished()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert names is not None, "the sweep's Jobs did not all complete"
    assert len(names) >= 2, names  # the sweep's Job and its re-run Job(s)
    print(done.stderr)
