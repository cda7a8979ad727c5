"""What the user reads: messages print user text, paths and commands literally (rich would take
`[runner]` for markup and eat it), and --help names the command the user typed."""

import os
import subprocess
import sys
from pathlib import Path

from deploy import console as con
from deploy.errors import ToolMissingError

REPO = Path(__file__).resolve().parents[2]


def test_error_keeps_brackets_of_a_command() -> None:
    err = ToolMissingError("install the runner extra (`.venv/bin/pip install -e '.[runner]'`) or [bold]a cluster[/]")
    with con.console.capture() as captured:
        con.error(str(err))
    assert " ".join(captured.get().split()) == f"error: {err}"


def test_log_and_warning_keep_brackets() -> None:
    with con.console.capture() as captured:
        con.log("wrote runs/[x]/plot.png")
        con.warning("values [dim] and [/] and a trailing backslash \\")
    assert captured.get() == "> wrote runs/[x]/plot.png\nwarning: values [dim] and [/] and a trailing backslash \\\n"


def test_cli_error_prints_a_bracketed_path(suite, tmp_path: Path) -> None:
    missing = tmp_path / "[runner]" / "values[1].yaml"
    r = subprocess.run(
        [sys.executable, "-m", "deploy", "--env", "dev", "-f", str(missing), "--kubeconfig", str(tmp_path / "none")],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 5, r.stderr
    assert r.stderr.startswith("error: ") and f" {missing} " in r.stderr  # brackets and all


def test_help_names_the_command_typed() -> None:
    r = subprocess.run(
        ["bash", "deploy.sh", "--help"],
        cwd=REPO,
        env={**os.environ, "KAIML_VENV": sys.prefix, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "Usage: deploy.sh [OPTIONS] [COMMAND]" in r.stdout
    assert "[bootstrap]" not in r.stderr  # an environment with more extras than `dev` serves as it is
    assert "python -m deploy" not in r.stdout
