"""Fixtures of the deploy tool's tests: a small chart suite of our own (the contract's shape:
umbrella with aliases, library chart via file://, schemas, env values with a .j2 file) copied to a
temporary folder, and environment variables pointing the tool at it."""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Suite:
    root: Path

    @property
    def charts(self) -> Path:
        return self.root / "charts"

    @property
    def values(self) -> Path:
        return self.root / "values"

    @property
    def runs(self) -> Path:
        return self.root / "runs"


def copy_suite(dest: Path) -> Suite:
    shutil.copytree(FIXTURES, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("charts/*/charts"))
    return Suite(dest)


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Suite:
    s = copy_suite(tmp_path / "suite")
    monkeypatch.setenv("KAIML_CHARTS_DIR", str(s.charts))
    monkeypatch.setenv("KAIML_VALUES_DIR", str(s.values))
    monkeypatch.setenv("KAIML_RUNS_DIR", str(s.runs))
    return s


@pytest.fixture(scope="session")
def shared_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """One copy for the integration tests (dependencies built once)."""
    yield copy_suite(tmp_path_factory.mktemp("suite"))


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Path:
    """The session's local control plane (tests/conftest.py): the fixture suite deploys there too;
    its pools have no nodes, which preflight only warns about."""
    return kubeconfig
