"""Training runs on the local control plane (kwok nodes: the pod runs no container, and kwok serves
tests/fixtures/pod.log as its log): the credentials Secret refused when missing and written without
echo, submit -> Running -> Succeeded, status with the quota as the pending reason, stop keeping the logs,
and no credential value anywhere."""

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from train_cli import LOG_LABELS, cli, leaked, write_spec

from deploy.cluster.objectstore import StoreAccess

pytestmark = pytest.mark.cluster

HOLD = 'podAnnotations.pod-complete\\.stage\\.kwok\\.x-k8s\\.io/delay="120s"'


@pytest.fixture(scope="module")
def platform(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """dev deployed (the training namespace, its quota of 1 GPU, training-runner); yields the runs folder."""
    runs = tmp_path_factory.mktemp("runs")
    done = cli(runs, "--env", "dev", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
    yield runs
    done = cli(runs, "destroy", "--env", "dev", "--yes", kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_training_on_the_cluster(
    platform: Path, kubeconfig: Path, objectstore: StoreAccess, credentials: Path, tmp_path: Path
) -> None:
    outputs: list[str] = []

    def train(*args: str, ok: bool = True) -> Any:
        done = cli(platform, *args, "--env", "dev", kubeconfig=kubeconfig)
        outputs.extend([done.stdout, done.stderr])
        if ok:
            assert done.returncode == 0, done.stderr + done.stdout
        return done

    spec = write_spec(tmp_path, "kwok-run")
    # This machine's store (127.0.0.1) is not one dev's platform-policy lets training pods reach: refused
    # before anything is applied. The kwok pods run nothing, so the chart's default store stands in.
    unreachable = train("train", "submit", str(spec), "--executor", "kubernetes", "--set",
                        f"objectStore.endpoint={objectstore.endpoint}", ok=False)  # fmt: skip
    assert unreachable.returncode == 5, unreachable.stderr  # ValuesError, as for a bad spec
    assert f"the training pods may not reach {objectstore.endpoint}" in unreachable.stderr
    assert not (platform / "train-kwok-run" / "values.json").exists()
    submit = ("train", "submit", str(spec), "--executor", "kubernetes", "--set", LOG_LABELS)

    refused = train(*submit, ok=False)
    assert refused.returncode == 1, refused.stderr
    assert "the Secret training-dev/r2-credentials that training run kwok-run needs does not exist" in refused.stderr
    assert "Nothing was applied" in refused.stderr and "secrets set training/r2-credentials" in refused.stderr
    assert not (platform / "train-kwok-run" / "values.json").exists()

    made = train("secrets", "set", "training/r2-credentials", "--from-env-file", str(credentials))
    assert "Secret training-dev/r2-credentials created with the keys access-key, secret-key" in made.stderr
    again = train("secrets", "set", "training/r2-credentials", "--from-env-file", str(credentials))
    assert "updated" in again.stderr

    done = train(*submit)
    assert "1 of 1 runs have a result" in done.stderr, done.stderr
    status = json.loads(train("train", "status", "kwok-run", "-o", "json").stdout)
    assert status["phase"] == "Succeeded" and status["namespace"] == "training-dev"
    assert status["groups"][0]["succeeded"] == 1 and status["groups"][0]["results"] == 1
    assert "kwok-run" in cli(platform, "train", "list").stderr
    assert "KAIML_RESULT" in train("train", "logs", "kwok-run", "--tail", "2").stdout
    stopped = train("train", "stop", "kwok-run")
    assert "uninstalled train-kwok-run" in stopped.stderr and "pod logs" in stopped.stderr
    assert list((platform / "train-kwok-run" / "logs").glob("kwok-run-train-*.log"))
    assert "no Job" in json.loads(train("train", "status", "kwok-run", "-o", "json").stdout)["phase"]

    # The training namespace's quota holds one GPU: a second GPU run waits, and says why.
    holds = {}
    for name in ("gpu-first", "gpu-second"):
        gpu = write_spec(tmp_path, name, nodePool=None, gpuType="nvidia-a100", resources=None)
        train("train", "submit", str(gpu), "--executor", "kubernetes", "--set", HOLD, "--no-follow")
        holds[name] = gpu

    def phase(name: str) -> dict[str, Any]:
        return json.loads(train("train", "status", name, "-o", "json").stdout)

    wait_for("gpu-first running", lambda: phase("gpu-first")["phase"] == "Running")
    waiting = wait_for("the quota as gpu-second's pending reason",
                       lambda: phase("gpu-second")["groups"][0]["pending"])  # fmt: skip
    assert any("quota exceeded" in why and "nvidia.com/gpu" in why for why in waiting), waiting
    text = train("train", "status", "gpu-second").stdout + train("train", "status", "gpu-second").stderr
    assert "quota exceeded" in text
    for name in holds:
        train("train", "stop", name)
    assert not leaked(objectstore, outputs, [platform])
