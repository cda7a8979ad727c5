"""A training run on this machine (`--executor auto` with no cluster answering, so the local subprocess):
real training against a real S3-compatible store, the same records as on a cluster, its artifacts
downloaded, and no credential value in any output, log or run folder."""

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from train_cli import cli, leaked, write_spec

from deploy.cluster.objectstore import StoreAccess
from deploy.errors import PlanError
from deploy.workloads.progress import Display
from deploy.workloads.train import progress
from deploy.workloads.train.workload import TRAIN


def rendered_bars(log: str) -> str:
    """What the follower's display prints for a pod whose log is `log` (launch._progress_ticker's path)."""
    display = Display(1, TRAIN.unit)
    step = TRAIN.progress(log) if TRAIN.progress else None
    assert step is not None
    display.step(step, "pod-0")
    out = Console(file=io.StringIO(), width=200, color_system=None)
    out.print(display.progress)
    return out.file.getvalue()  # type: ignore[attr-defined]


def test_a_run_here_trains_records_and_its_artifacts_download(
    objectstore: StoreAccess, credentials: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    spec = write_spec(tmp_path, "here-cnn")
    endpoint = f"objectStore.endpoint={objectstore.endpoint}"
    outputs = []

    def run(*args: str) -> str:
        done = cli(runs, *args)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout + done.stderr

    said = run("train", "submit", str(spec), "--credentials-env-file", str(credentials), "--set", endpoint)
    assert "the local control plane is not running: running training run here-cnn here, as a local subprocess" in said
    assert "training run here-cnn: done on this machine" in said
    [record] = [json.loads(line) for line in (runs / "train-here-cnn" / "results.jsonl").read_text().splitlines()]
    metrics = record["result"]["metrics"]
    assert record["config"] == 0 and record["group"] == "train" and metrics["steps"] == 8  # 2 epochs x 4 batches
    assert metrics["epochLoss"][1] < metrics["epochLoss"][0]  # it learns
    assert record["result"]["artifacts"]["model"] == "training/here-cnn-train/final/model.pt"

    # The bars a cluster run shows while followed: the run's, and its steps' with the epoch, step and loss of
    # the runner's last progress lines; the same lines, as the follower reads them from a pod's log.
    log = (runs / "train-here-cnn" / "logs" / "local-1.log").read_text()
    last = progress.of_log(log)
    shown = f"epoch 1, step 8/8, loss {last['loss']:.4g}, {last['samplesPerSec']} samples/s"
    assert re.search(r"runs\s.*1 done, 0 running, 0 pending, 0 failed", said), said
    assert re.search(rf"steps\s.*{re.escape(shown)} \(attempt 1\)", said), said
    assert shown in rendered_bars(log)

    status = json.loads(cli(runs, "train", "status", "here-cnn", "-o", "json").stdout)
    assert status["executor"] == "local" and status["phase"] == "Succeeded"
    assert status["progress"]["step"] == 8 and status["progress"]["event"] == "done"
    assert "here-cnn" in run("train", "list")
    tail = cli(runs, "train", "logs", "here-cnn", "--tail", "2").stdout
    assert "KAIML_RESULT " in tail and len(tail.splitlines()) == 2

    into = tmp_path / "artifacts"
    run("train", "artifacts", "here-cnn", str(into), "--credentials-env-file", str(credentials))
    assert (into / "model.pt").stat().st_size > 0
    assert json.loads((into / "metrics.json").read_text())["weightsSha256"] == metrics["weightsSha256"]
    assert "KAIML_RESULT" in (into / "logs" / "local-1.log").read_text()

    again = run("train", "submit", str(spec), "--credentials-env-file", str(credentials), "--set", endpoint)
    assert "has its result already" in again
    assert not leaked(objectstore, outputs, [runs, into])


def test_local_runs_need_the_key_pair_and_no_cluster_option(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "no-keys")
    done = cli(tmp_path / "runs", "train", "submit", str(spec), "--executor", "local")
    assert done.returncode == PlanError.exit_code and "--credentials-env-file F" in done.stderr, done.stderr
    done = cli(tmp_path / "runs", "train", "submit", str(spec), "--executor", "local", "--local")
    assert done.returncode == PlanError.exit_code and "takes no --local" in done.stderr, done.stderr


@pytest.mark.parametrize("line", ["access-key", "secret-key=x\n=y", "a b=c"])
def test_a_bad_env_file_is_refused_without_its_values(tmp_path: Path, line: str) -> None:
    file = tmp_path / "bad.env"
    file.write_text(f"# keys\n{line}\n")
    spec = write_spec(tmp_path, "bad-keys")
    done = cli(tmp_path / "runs", "train", "submit", str(spec), "--executor", "local", "--credentials-env-file",
               str(file))  # fmt: skip
    assert done.returncode == 5 and f"{file}, line" in done.stderr, done.stderr
    assert "=y" not in done.stderr and "=c" not in done.stderr
