"""The command groups load when their command runs: the plain deploy (a no-op re-run is the hot
path) imports none of them, and --help, a typo's suggestion and each command still find them all."""

import os
import subprocess
import sys

from deploy.paths import REPO


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_deploy_path_imports_no_command_group() -> None:
    groups = "('deploy.commands.', 'deploy.workloads')"
    code = f"import sys, deploy.cli; print(sorted(m for m in sys.modules if m.startswith({groups})))"
    assert python(code) == "['deploy.commands.options']"


def test_help_and_typos_find_every_command() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deploy", *args],
            cwd=REPO,
            env={**os.environ, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            check=False,
        )

    listed = cli("--help").stdout
    for name in ("plan", "diff", "status", "rollback", "destroy", "nodes", "cluster", "bench"):
        assert f"│ {name} " in listed, listed
    assert "Did you mean 'nodes'?" in cli("nope").stderr
    assert "Print the release graph" in cli("plan", "--help").stdout
    assert "Benchmark sweeps" in cli("bench", "--help").stdout
