"""A host that cannot run the real node gets one paragraph that says what is missing, before
anything starts. Produced for real: the CLI run as an unprivileged user."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.cluster import hostcheck
from deploy.paths import REPO

pytestmark = pytest.mark.realnode


def test_this_host_can_run_the_real_node() -> None:
    # CI's hosts can: a missing piece here fails loudly instead of skipping tests/realnode.
    assert hostcheck.missing_requirements() == []


def test_without_root_cluster_up_says_what_is_missing_and_starts_nothing(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) runs the CLI as an unprivileged user"
    tmp_path.chmod(0o777)
    cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "deploy"]
    env = {"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(tmp_path), "HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run(
        [*cmd, "cluster", "up", "--name", "kaiml-no-root", "--real-node", "cpu-optimized"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "cannot run the local cluster's real node" in done.stderr
    assert "runs as root" in done.stderr
    assert "without --real-node" in done.stderr
    assert not (tmp_path / "kai-ml-platform").exists(), "nothing was started or written"


def test_a_real_node_pool_the_environment_lacks_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "cluster", "up", "--name", "kaiml-no-pool", "--real-node", "nope"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--real-node nope" in done.stderr and "cpu-optimized" in done.stderr
    assert not (tmp_path / "kai-ml-platform").exists(), "nothing was started or written"
