"""Bad input to `load run` is refused with one line and the usage exit code (64) before anything is applied: an
unreachable endpoint, a bad URL, concurrency 0 (checked here, before any cluster is asked), and an
existing namespace that is not the run's (checked on the cluster, before the release is installed)."""

import subprocess
from pathlib import Path

import pytest
from load_cli import cli, closed_port

from deploy.errors import EX_USAGE

LOAD = ("load", "run", "--model", "m", "--duration", "5", "--name", "bad")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", f"http://127.0.0.1:{closed_port()}", "--concurrency", "10"), "cannot connect to 127.0.0.1:"),
        (("--endpoint", "ftp://llm:8000", "--concurrency", "10"), "want an http:// or https:// URL with a host"),
        (("--endpoint", "http://127.0.0.1:8000", "--concurrency", "0"), "--concurrency must be at least 1 (got 0)"),
        (("--endpoint", "http://[::1", "--concurrency", "10"), "--endpoint 'http://[::1'"),
        (("--endpoint", "http://127.0.0.1:8000", "--concurrency", "10", "--workers", "0"), "--workers must be at"),
    ],
)
def test_bad_input_is_one_line_and_nothing_starts(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    # No --kubeconfig and no cluster: had the command got as far as a cluster, it would have said so.
    done = cli(None, tmp_path, *LOAD, *args)
    assert done.returncode == EX_USAGE, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "load-bad").exists()


@pytest.mark.cluster
def test_a_namespace_the_run_does_not_own_is_refused(
    platform_cluster: Path, runs: Path, kubectl: list[str], endpoint: str
) -> None:
    subprocess.run([*kubectl, "create", "namespace", "someone-elses"], check=True, capture_output=True)
    try:
        done = cli(platform_cluster, runs, *LOAD, "--endpoint", endpoint, "--concurrency", "10",
                   "--namespace", "someone-elses")  # fmt: skip
        assert done.returncode == EX_USAGE, done.stderr
        assert "namespace someone-elses exists and is not made by a load run" in done.stderr, done.stderr
        listed = ["-n", "someone-elses", "get", "jobs,services,networkpolicies", "-o", "name"]
        objects = subprocess.run([*kubectl, *listed], capture_output=True, text=True, check=True)
        assert objects.stdout.strip() == ""
        status = subprocess.run([*kubectl, "get", "secrets", "-A", "-l", "name=load-bad", "-o", "name"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        assert status.stdout.strip() == ""  # no Helm release record
    finally:
        subprocess.run([*kubectl, "delete", "namespace", "someone-elses", "--wait=false"], capture_output=True)
