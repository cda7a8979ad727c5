"""The README's first sweep, as written: `./deploy.sh bench run examples/sweeps/quickstart.yaml --local`
runs every config here, then `bench results quickstart --plot` prints the table and writes the plot."""

import os
import subprocess
import sys
from pathlib import Path

from deploy.paths import REPO


def deploy_sh(runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "deploy.sh"), *args],
        cwd=REPO,
        # the test's own environment (it has the runner extra, as tools/test.sh installs it)
        env={**os.environ, "KAIML_VENV": sys.prefix, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_readme_quickstart_runs_here_and_reports(tmp_path: Path) -> None:
    done = deploy_sh(tmp_path, "bench", "run", "examples/sweeps/quickstart.yaml", "--here")
    assert done.returncode == 0, done.stderr
    assert "6 of 6 configs have a result, 0 failed" in done.stderr
    assert "[bootstrap]" not in done.stderr  # the runner extra is there already: nothing installed

    plot = tmp_path / "quickstart.png"
    shown = deploy_sh(tmp_path, "bench", "results", "quickstart", "--plot", str(plot))
    assert shown.returncode == 0, shown.stderr
    assert "quickstart: 6 results" in shown.stderr
    for model in ("mlp", "cnn", "transformer"):
        assert model in shown.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
