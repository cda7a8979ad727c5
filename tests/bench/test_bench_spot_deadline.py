"""On the local control plane (kwok nodes made from dev's pools): a spot sweep's pods land on the
spot GPU nodes of their GPU type, and a sweep past its deadline ends with its configs failed as
"deadline exceeded" (the Jobs' activeDeadlineSeconds, enforced by the real Job controller), in the
summary, in `bench status` and, stored, in `bench results`."""

import json
from pathlib import Path
from typing import Any

import pytest
from bench_cli import LOG_LABELS, cli, write_sweep
from test_bench_disruption import HOLD, core, pool_nodes, results, sweeps  # noqa: F401 (fixtures)

from deploy.cluster.controlplane import LocalCluster

pytestmark = pytest.mark.cluster


def test_a_spot_sweep_lands_on_spot_gpu_nodes(
    core: Any,  # noqa: F811 (the fixture)
    kubeconfig: Path,
    platform: Path,
    tmp_path: Path,
    sweeps: list[str],  # noqa: F811 (the fixture)
) -> None:
    sweeps.append("spot")
    sweep = write_sweep(tmp_path, "spot", base={"model": "mlp", "inputShape": [64]}, spot=True,
                        matrix={"gpuType": ["nvidia-t4", "nvidia-a100"], "batchSize": [1, 2]},
                        priorityClassName="preemptible")  # fmt: skip
    done = cli(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev", "--set", LOG_LABELS)
    assert done.returncode == 0, done.stderr
    assert "4 of 4 configs have a result" in done.stderr
    spot_t4, spot_a100 = pool_nodes(core, "spot-gpu-t4"), pool_nodes(core, "spot-gpu-a100")
    assert spot_t4 and spot_a100
    by_gpu: dict[str, set[str]] = {}
    for record in results(platform, "spot"):
        by_gpu.setdefault(record["gpuType"], set()).add(record["node"])
    assert by_gpu == {"nvidia-t4": set(spot_t4), "nvidia-a100": set(spot_a100)}


def test_a_sweep_past_its_deadline_fails_what_is_unfinished(
    cluster: LocalCluster,
    kubeconfig: Path,
    platform: Path,
    tmp_path: Path,
    sweeps: list[str],  # noqa: F811 (the fixture)
) -> None:
    sweeps.append("late")
    # Each pod holds Running for 10 minutes: the sweep's 8 s deadline passes first.
    sweep = write_sweep(tmp_path, "late", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-t4"},
                        matrix={"batchSize": [1, 2]}, deadline="8s")  # fmt: skip
    done = cli(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev",
               "--set", LOG_LABELS, "--set", HOLD.format("600s"), timeout=180)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "0 of 2 configs have a result, 2 failed" in done.stderr, done.stderr
    reasons = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("config ")]
    assert len(reasons) == 2 and all("deadline exceeded" in r and "(8 s" in r for r in reasons), done.stderr

    status = cli(kubeconfig, platform, "bench", "status", "late", "--env", "dev", "-o", "json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)
    assert row["job_failed"].startswith("deadline exceeded")
    assert sorted(row["failures"]) == ["0", "1"]
    assert all(why.startswith("deadline exceeded") for why in row["failures"].values())

    listed = cli(None, platform, "bench", "results", "late", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["config"] for r in rows) == [0, 1]
    assert all(r["failure"].startswith("deadline exceeded") and "result" not in r for r in rows)
