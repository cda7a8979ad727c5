"""Kind `train` against a real S3-compatible server: a run SIGKILLed after a checkpoint and started
again ends with bitwise the weights of a run that was not interrupted, redoing at most one
checkpoint interval; progress lines and the record; no credential value in any output."""

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from runner_cases import TRAIN

from deploy.cluster.objectstore import StoreAccess
from runner import progress
from runner.result import find_result

REPO = Path(__file__).resolve().parents[2]


def _env(store_env: dict[str, str], run_id: str) -> dict[str, str]:
    # One intra-op thread: the same in every run (the determinism contract), and no oversubscription.
    return {
        **os.environ,
        **store_env,
        "KAIML_RUN_ID": run_id,
        "KAIML_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }


def _config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    return path


def _run(config: Path, env: dict[str, str], output: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "runner", "--config", str(config)]
    if output:
        argv += ["--output", str(output)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def _download(objectstore: StoreAccess, key: str) -> bytes:
    data = objectstore.client().get(objectstore.bucket, key)
    assert data is not None, f"no object {key}"
    return data


def _weights(objectstore: StoreAccess, key: str) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(_download(objectstore, key)), weights_only=True)


def test_killed_run_resumes_to_bitwise_identical_weights(
    objectstore: StoreAccess,
    store_env: dict[str, str],
    tmp_path: Path,
    validate: Callable[[dict[str, Any]], None],
) -> None:
    config = _config(tmp_path, TRAIN)
    outputs: list[str] = []

    # The reference: one run from start to end.
    whole = _run(config, _env(store_env, "whole"), output=tmp_path / "whole.json")
    outputs += [whole.stdout, whole.stderr, (tmp_path / "whole.json").read_text()]
    assert whole.returncode == 0, whole.stderr
    reference = find_result(whole.stdout)
    assert reference is not None
    validate(reference)
    assert reference["metrics"]["resumedFromStep"] == 0 and reference["metrics"]["steps"] == 24

    # The interrupted run: SIGKILL as soon as it says its first checkpoint is in the store.
    env = _env(store_env, "killed")
    with (tmp_path / "killed.err").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        seen: list[dict[str, Any]] = []
        for line in proc.stdout:
            outputs.append(line)
            record = progress.parse_line(line)
            if record:
                seen.append(record)
                if record["event"] == "checkpoint":
                    proc.send_signal(signal.SIGKILL)
                    break
        rest = proc.stdout.read()
        assert proc.wait(timeout=60) == -signal.SIGKILL
    outputs += [rest, (tmp_path / "killed.err").read_text()]
    assert find_result(rest) is None, "the killed run finished before the kill: make TRAIN longer"
    seen += [r for r in map(progress.parse_line, rest.splitlines()) if r]
    first = next(r for r in seen if r["event"] == "checkpoint")
    assert first["step"] == TRAIN["checkpointEvery"]
    reached = max(r["step"] for r in seen if r["event"] == "step")

    # Started again with the same config and run id: resumes from the latest checkpoint.
    again = _run(config, env, output=tmp_path / "again.json")
    outputs += [again.stdout, again.stderr, (tmp_path / "again.json").read_text()]
    assert again.returncode == 0, again.stderr
    resumed = find_result(again.stdout)
    assert resumed is not None
    validate(resumed)
    m = resumed["metrics"]
    assert m["resumedFromStep"] >= first["step"] and m["resumedFromStep"] % TRAIN["checkpointEvery"] == 0
    assert reached - m["resumedFromStep"] <= TRAIN["checkpointEvery"], "more than one interval redone"
    assert m["stepsRun"] == 24 - m["resumedFromStep"] == resumed["iterations"]
    starts = [progress.parse_line(line) for line in again.stdout.splitlines()]
    assert {"event": "start", "step": m["resumedFromStep"]}.items() <= next(r for r in starts if r).items()

    # Bitwise the same weights, losses and accuracy.
    assert m["weightsSha256"] == reference["metrics"]["weightsSha256"]
    for key in ("epochLoss", "finalLoss", "heldoutAccuracy", "steps"):
        assert m[key] == reference["metrics"][key], key
    a = _weights(objectstore, reference["artifacts"]["model"])
    b = _weights(objectstore, resumed["artifacts"]["model"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["artifacts"]["model"] == "training/killed/final/model.pt"
    assert json.loads(_download(objectstore, resumed["artifacts"]["metrics"]))["weightsSha256"] == m["weightsSha256"]

    # Progress: one step line per step (logEvery 1), epochs with their loss, loss falling.
    steps = [r for r in map(progress.parse_line, whole.stdout.splitlines()) if r and r["event"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 25))
    assert all(r["samplesPerSec"] > 0 and r["loss"] > 0 for r in steps)
    assert reference["metrics"]["epochLoss"][-1] < reference["metrics"]["epochLoss"][0]

    # Only the latest checkpoint is kept next to its pointer.
    names = set(objectstore.client().keys(objectstore.bucket, "training/killed/"))
    assert sum(n.startswith("training/killed/checkpoints/step-") for n in names) == 1
    assert "training/killed/checkpoints/latest" in names

    for text in outputs:
        assert objectstore.secret_key not in text and objectstore.access_key not in text


def test_another_config_under_the_same_run_id_is_refused(
    store_env: dict[str, str], run_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**store_env, "KAIML_RUN_ID": "shared"}.items():
        monkeypatch.setenv(name, value)
    short = {**TRAIN, "epochs": 1, "checkpointEvery": 2, "datasetArgs": {"samples": 24, "classes": 4, "imageSize": 16}}
    code, _, record = run_runner(short)
    assert code == 0, record["error"]
    code, _, record = run_runner({**short, "seed": 8})
    assert code == 3
    assert record["error"].startswith("bad config: KAIML_RUN_ID: training/shared holds checkpoints of another config")


@pytest.mark.parametrize("wrong", ["secret", "access"])
def test_wrong_credentials_fail_without_printing_any(
    wrong: str,
    objectstore: StoreAccess,
    store_env: dict[str, str],
    tmp_path: Path,
    run_runner: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The runner in this process: its log (stderr), its stdout and its --output file."""
    bad_value = "wrong-" + os.urandom(8).hex()
    secret = tmp_path / "bad-secret"
    secret.mkdir()
    (secret / "access-key").write_text(bad_value if wrong == "access" else objectstore.access_key)
    (secret / "secret-key").write_text(bad_value if wrong == "secret" else objectstore.secret_key)
    for name, value in {**store_env, "KAIML_OBJECTSTORE_CREDENTIALS_DIR": str(secret)}.items():
        monkeypatch.setenv(name, value)
    code, lines, record = run_runner(TRAIN, ["--output", str(tmp_path / "bad.json")])
    assert code == 1 and record["status"] == "error"
    assert ("SignatureDoesNotMatch" if wrong == "secret" else "InvalidAccessKeyId") in record["error"]
    printed = capsys.readouterr()
    for text in (*lines, printed.out, printed.err, (tmp_path / "bad.json").read_text()):
        for value in (bad_value, objectstore.secret_key, objectstore.access_key):
            assert value not in text


def test_redaction_replaces_both_values() -> None:
    from runner.training.store import Credentials

    creds = Credentials(access_key="AKIAEXAMPLE", secret_key="s3cr3t/+value")
    assert creds.redact("key AKIAEXAMPLE sig s3cr3t/+value") == "key [redacted] sig [redacted]"
    assert "s3cr3t" not in repr(creds) and "AKIA" not in repr(creds)
