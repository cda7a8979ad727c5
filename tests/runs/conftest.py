"""The dev platform for the run tests on the local control plane, with room in its benchmarks quota for a
4-GPU run (the same values file goes to `run start`, whose plan checks the quota), removed after the
module."""

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_cli import cli

QUOTA = """policy:
  namespaces:
    benchmarks:
      quota:
        requests.nvidia.com/gpu: 8
"""


@dataclass
class Platform:
    kubeconfig: Path
    runs: Path
    values: Path

    def cli(self, *args: str, timeout: float = 300):
        return cli(self.kubeconfig, self.runs, *args, timeout=timeout)


@pytest.fixture(scope="module")
def platform(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    runs = tmp_path_factory.mktemp("runs")
    values = runs / "quota.yaml"
    values.write_text(QUOTA)
    done = cli(kubeconfig, runs, "--env", "dev", "-f", str(values))
    assert done.returncode == 0, done.stderr
    yield Platform(kubeconfig, runs, values)
    done = cli(kubeconfig, runs, "destroy", "--env", "dev", "--yes")
    assert done.returncode == 0, done.stderr
