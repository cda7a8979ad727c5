"""`helm lint --strict` of the umbrella with every environment and of every chart with
each of its ci/*-values.yaml; `ct lint` (Chart.yaml schema, yamllint) of every chart;
yamllint of the environment files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from chartkit import ENVIRONMENTS, UMBRELLA, run_helm, tool

from deploy.paths import CHARTS, REPO, VALUES, tools_bin

CT_CONFIG = Path(__file__).parent / "ct"
CI_VALUES = sorted(CHARTS.glob("*/ci/*-values.yaml"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_umbrella_lints_strictly_with_each_environment(helm: str, env: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(UMBRELLA), "-f", str(VALUES / f"{env}.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=[f"{p.parts[-3]}/{p.name}" for p in CI_VALUES])
def test_chart_lints_strictly_with_its_ci_values(helm: str, values: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(values.parent.parent), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_chart_has_ci_values() -> None:
    charts = {p.parent.name for p in CHARTS.glob("*/Chart.yaml")} - {"platform-lib"}
    assert charts == {p.parts[-3] for p in CI_VALUES}


def test_ct_lint_passes_for_every_chart(helm: str) -> None:
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(tools_bin()), str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    result = subprocess.run(
        [
            tool("ct"),
            "lint",
            "--all",
            "--config",
            str(CT_CONFIG / "ct.yaml"),
            "--lint-conf",
            str(CT_CONFIG / "lintconf.yaml"),
            "--chart-yaml-schema",
            str(CT_CONFIG / "chart_schema.yaml"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_environment_files_pass_yamllint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(CT_CONFIG / "lintconf.yaml"), str(VALUES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
