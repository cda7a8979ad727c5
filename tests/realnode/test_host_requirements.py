"""A host that cannot run the real node gets one paragraph that says what is missing, before
anything starts. Produced for real: the CLI run as an unprivileged user."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deploy.cluster import hostcheck
from deploy.cluster.nodenet import NodeNetwork
from deploy.errors import EX_USAGE, ClusterError
from deploy.paths import REPO

pytestmark = pytest.mark.realnode


def test_this_host_can_run_the_real_node() -> None:
    # CI's hosts can: a missing piece here fails loudly instead of skipping tests/realnode.
    assert hostcheck.missing_requirements() == []


def test_without_root_cluster_up_says_what_is_missing_and_starts_nothing() -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) runs the CLI as an unprivileged user"
    # The user's own home and state folder (pytest's tmp_path sits under a folder only root may enter).
    home = Path(tempfile.mkdtemp(prefix="kaiml-no-root-"))
    home.chmod(0o777)
    cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "deploy"]
    env = {"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(home), "HOME": str(home), "COLUMNS": "200"}
    try:
        done = subprocess.run(
            [*cmd, "cluster", "up", "--name", "kaiml-no-root"],  # the real node is the default
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode != 0
        assert "cannot run the local cluster's real node" in done.stderr, done.stderr
        assert "runs as root" in done.stderr
        # Only what is missing: the packages are installed (in /usr/sbin, outside this user's PATH).
        assert "Debian packages" not in done.stderr, done.stderr
        assert "--no-real-node" in done.stderr
        assert not (home / "kai-ml-platform").exists(), "nothing was started or written"
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        # A pool the environment lacks: named, with the pools it has.
        (["--real-node", "nope"], ClusterError.exit_code, ["--real-node nope", "cpu-optimized", "--no-real-node"]),
        # The default pool (dev's real-cpu) in an environment without it: the way out named.
        (["--env", "staging"], ClusterError.exit_code, ["--real-node real-cpu", "--no-real-node"]),
        (["--real-node", "real-cpu", "--no-real-node"], EX_USAGE, ["give one of them"]),
    ],
    ids=["unknown-pool", "env-without-the-default-pool", "both-flags"],
)
def test_a_real_node_that_cannot_be_made_is_refused_before_anything_starts(
    tmp_path: Path, args: list[str], code: int, said: list[str]
) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "cluster", "up", "--name", "kaiml-no-pool", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    message = " ".join(done.stderr.split())
    assert done.returncode == code, message
    assert all(words in message for words in said), message
    assert not (tmp_path / "kai-ml-platform").exists(), "nothing was started or written"


def test_a_node_network_another_cluster_holds_is_refused_and_left_alone() -> None:
    # Interface names and addresses come from a hash of the cluster's name; a clash must not take
    # over (or, on `down`, delete) the other cluster's link. The other cluster: a bridge of that name.
    net = NodeNetwork("kaiml-clash-probe")
    link = Path(f"/sys/class/net/{net.host_if}")
    assert not link.exists() and not net.exists(), f"{net.host_if} is in use on this machine"
    subprocess.run(["ip", "link", "add", net.host_if, "type", "bridge"], check=True)
    try:
        with pytest.raises(ClusterError, match=f"needs the interface {net.host_if}.*another local cluster"):
            net.up()
        assert not net.exists(), "no namespace was made"
        net.down()
        assert link.exists(), "the other cluster's interface is left alone"
    finally:
        subprocess.run(["ip", "link", "delete", net.host_if], check=False)
