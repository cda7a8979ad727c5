"""The dev platform, installed by each bench test module that needs a cluster and removed after
it (module scope: a directory without __init__.py gets no package teardown of its own)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench_cli import cli


@pytest.fixture(scope="module")
def platform(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """dev deployed with room for eight one-GPU configs at once in its benchmarks quota; yields
    the runs folder."""
    runs = tmp_path_factory.mktemp("runs")
    gpus = "policy.namespaces.benchmarks.quota.requests\\.nvidia\\.com/gpu=8"
    done = cli(kubeconfig, runs, "--env", "dev", "--set", gpus)
    assert done.returncode == 0, done.stderr
    yield runs
    done = cli(kubeconfig, runs, "destroy", "--env", "dev", "--yes")
    assert done.returncode == 0, done.stderr
