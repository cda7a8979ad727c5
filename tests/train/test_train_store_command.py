"""`./deploy.sh cluster store up|down`: the local object store a user starts for training runs on this
machine, as the README says: its endpoint printed, its key pair only in a file of theirs, a run against it,
and nothing left running after `down`."""

import json
import os
import subprocess
import sys
from pathlib import Path

from train_cli import write_spec

from deploy.cluster import procs
from deploy.paths import REPO

NAME = "kaiml-store-test"


def deploy_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "KAIML_RUNS_DIR": str(tmp_path / "runs")}
    return subprocess.run([sys.executable, "-m", "deploy", *args], cwd=REPO, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_a_user_starts_the_store_trains_against_it_and_stops_it(tmp_path: Path) -> None:
    up = deploy_cli(tmp_path, "cluster", "store", "up", "--name", NAME)
    assert up.returncode == 0, up.stderr
    endpoint = up.stdout.strip()
    assert endpoint.startswith("http://127.0.0.1:")
    creds = tmp_path / "state" / "kai-ml-platform" / "objectstore" / NAME / "credentials.env"
    assert str(creds) in up.stderr and creds.stat().st_mode & 0o777 == 0o600
    keys = dict(line.split("=", 1) for line in creds.read_text().splitlines())
    assert set(keys) == {"access-key", "secret-key"}
    assert not any(value in up.stdout + up.stderr for value in keys.values())

    again = deploy_cli(tmp_path, "cluster", "store", "up", "--name", NAME)
    assert again.returncode == 0 and again.stdout.strip() == endpoint  # found running, not a second one

    spec = write_spec(tmp_path, "store-cnn")
    trained = deploy_cli(tmp_path, "train", "submit", str(spec), "--executor", "local", "--credentials-env-file",
                         str(creds), "--set", f"objectStore.endpoint={endpoint}")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "training run store-cnn: done on this machine" in trained.stdout + trained.stderr

    pid = int(json.loads((creds.parent / "store.json").read_text())["pid"])
    down = deploy_cli(tmp_path, "cluster", "store", "down", "--name", NAME)
    assert down.returncode == 0 and "stopped" in down.stderr, down.stderr
    assert not procs.alive(pid) and not creds.parent.exists()
    assert "no object store" in deploy_cli(tmp_path, "cluster", "store", "down", "--name", NAME).stderr
