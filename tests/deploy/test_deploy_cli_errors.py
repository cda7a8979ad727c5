"""Bad input through the real entry point: one paragraph on stderr, a documented non-zero exit code,
nothing applied (none of these reaches a cluster: the kubeconfigs point nowhere)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: gone
  context: {cluster: gone, user: u}
current-context: gone
"""


def deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "400", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(UNREACHABLE_KUBECONFIG)
    return path


def one_paragraph(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_environment(suite, kubeconfig):
    r = deploy("--env", "nope", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert "unknown environment 'nope'" in one_paragraph(r)


def test_invalid_values_file_names_file_and_line(suite, kubeconfig, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [unclosed\n")
    r = deploy("--env", "dev", "-f", str(bad), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert f"{bad}:3:1: invalid YAML" in one_paragraph(r)


def test_missing_values_file(suite, kubeconfig, tmp_path):
    r = deploy("--env", "dev", "-f", str(tmp_path / "missing.yaml"), "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    assert "missing.yaml (given with -f) does not exist" in one_paragraph(r)


def test_schema_violation_names_the_key(suite, kubeconfig):
    r = deploy("--env", "dev", "--set", "coordinator.replicas=-1", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 5
    text = one_paragraph(r)
    assert "coordinator.replicas (set at --set coordinator.replicas=-1)" in text and "minimum" in text


def test_unknown_component_in_only(suite, kubeconfig):
    r = deploy("--env", "dev", "--only", "coordinator,wasm", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 2
    assert "unknown component in --only: wasm" in one_paragraph(r)


def test_missing_helm_binary(suite, kubeconfig, tmp_path):
    r = deploy("--env", "dev", "--kubeconfig", str(kubeconfig), env={"KAIML_TOOLS_BIN": str(tmp_path)})
    assert r.returncode == 3
    assert "`helm` is not installed" in one_paragraph(r)


def test_unreachable_context(suite, kubeconfig):
    r = deploy("--env", "dev", "--context", "gone", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 4
    assert "does not answer at https://127.0.0.1:1" in one_paragraph(r)


def test_unknown_context(suite, kubeconfig):
    r = deploy("--env", "dev", "--context", "elsewhere", "--kubeconfig", str(kubeconfig))
    assert r.returncode == 4
    assert "context 'elsewhere' is not in" in one_paragraph(r)


def test_root_options_before_a_command_are_refused(suite):
    r = deploy("--env", "prod", "plan")
    assert r.returncode == 2
    assert "must come after the command" in r.stderr


def test_plan_prints_levels(suite):
    r = deploy("plan", "--env", "staging", "--only", "coordinator", "--with-deps")
    assert r.returncode == 0, r.stderr
    assert "level 0:" in r.stderr and "platform-cluster" in r.stderr and "staging-coordinator" in r.stderr
    assert "staging-cache" not in r.stderr.split("not planned")[0]


def test_help_documents_exit_codes():
    r = deploy("--help")
    assert "Exit codes: 0 success" in r.stdout
