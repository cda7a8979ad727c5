"""Exit codes, the KAIML_RESULT line, the kinds registry and the CLI's help."""

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_cases import FEW, TINY

from runner import kinds
from runner.errors import RunnerError
from runner.kinds import Measurement
from runner.result import MARKER, Result, find_result, parse_line

REPO = Path(__file__).resolve().parents[2]
MLP = {**TINY["mlp"], **FEW}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"model": "resnet9000"}, "model"),
        ({"precision": "fp8"}, "precision"),
        ({"inputShape": []}, "inputShape"),
        ({"inputShape": [32, 32]}, "inputShape"),
        ({"inputShape": "32"}, "inputShape"),
        ({"batchSize": 0}, "batchSize"),
        ({"iterations": 0}, "iterations"),
        ({"warmup": 1.5}, "warmup"),
        ({"batchsize": 4}, "batchsize"),
        ({"modelArgs": {"depth": 3}}, "modelArgs.depth"),
        ({"modelArgs": {"hidden": -1}}, "modelArgs.hidden"),
        ({"modelPath": "/x.pt"}, "modelPath"),
        ({"model": "torchscript", "modelArgs": {}}, "modelPath"),
        ({"model": "transformer", "inputShape": [8, 30], "modelArgs": {"heads": 4}}, "modelArgs.heads"),
        ({"model": "cnn", "inputShape": [3, 4, 4], "modelArgs": {"blocks": 3}}, "inputShape"),
        ({"kind": "training"}, "kind"),
    ],
)
def test_bad_config_exits_3_naming_the_key(
    change: dict[str, Any],
    key: str,
    run_runner: Callable[..., Any],
    validate: Callable[[dict[str, Any]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, record = run_runner({**MLP, **change})
    assert code == 3
    validate(record)
    assert record["status"] == "config-error"
    assert record["error"].startswith(f"bad config: {key}: ")
    assert f"bad config: {key}: " in capsys.readouterr().err
    assert record["latency_ms"] is None and record["throughput"] is None


def test_config_error_code_follows_the_chart(run_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIML_CONFIG_ERROR_EXIT_CODE", "42")
    code, _, _ = run_runner({**MLP, "model": "nope"})
    assert code == 42


@pytest.fixture
def boom_kind() -> Iterator[None]:
    """A kind registered from outside the package: the registry needs no other change."""

    @kinds.register("test-boom")
    def boom(config: dict[str, Any]) -> Measurement:
        if config.get("crash"):
            raise RunnerError("the device went away")
        return Measurement(device={"type": "cpu", "node": "n", "hostname": "h", "cpu": "c", "torch": None})

    yield
    kinds._REGISTRY.pop("test-boom")


@pytest.mark.usefixtures("boom_kind")
def test_other_failures_exit_1(run_runner: Callable[..., Any], validate: Callable[[dict[str, Any]], None]) -> None:
    code, _, record = run_runner({"kind": "test-boom", "crash": True})
    assert code == 1
    validate(record)
    assert (record["status"], record["kind"]) == ("error", "test-boom")
    assert record["error"] == "RunnerError: the device went away"


@pytest.mark.usefixtures("boom_kind")
def test_a_registered_kind_runs_through_the_cli(run_runner: Callable[..., Any]) -> None:
    code, _, record = run_runner({"kind": "test-boom"})
    assert code == 0 and record["kind"] == "test-boom" and record["config"] == {}


def test_gpu_config_without_cuda_is_an_error_not_a_cpu_run(
    run_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAIML_DEVICE")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, record = run_runner({**MLP, "gpuType": "nvidia-t4", "gpuCount": 1})
    assert code == 1
    assert "gpuCount=1" in record["error"] and "no CUDA device" in record["error"]


def test_the_process_prints_exactly_one_compact_result_line(tmp_path: Path) -> None:
    """The real process: stdout is one line, `KAIML_RESULT ` + compact JSON; logs go to stderr."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"sweep": "s\nweird\u2028name", "index": 4, "config": MLP}))
    env = {**os.environ, "KAIML_DEVICE": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--config", str(config)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and proc.stdout.endswith("\n")
    line = proc.stdout.rstrip("\n")
    assert line.isascii()
    prefix, _, payload = line.partition(" ")
    record = json.loads(payload)
    assert prefix == MARKER
    assert payload == json.dumps(record, separators=(",", ":"))
    assert (record["sweep"], record["index"]) == ("s\nweird\u2028name", 4)
    assert "runner: " in proc.stderr


def test_bad_config_process_exit_code(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({**MLP, "precision": "fp64"}))
    env = {**os.environ, "KAIML_DEVICE": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--config", str(config)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 3
    assert "precision" in proc.stderr and parse_line(proc.stdout)["status"] == "config-error"


def test_help_explains_modes_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--config", "--output", "JOB_COMPLETION_INDEX", "KAIML_CONFIG_INDEXES", "exit codes", MARKER):
        assert needle in text


def test_parse_line_and_find_result_read_logs() -> None:
    record = Result(
        sweep="s", index=1, kind="k", config={}, started="2026-01-01T00:00:00.000Z", status="error", error="x"
    )
    line = record.to_line()
    assert parse_line(line) == record.to_dict()
    assert parse_line("2026-01-01T00:00:00.1Z " + line) == record.to_dict()  # kubectl logs --timestamps
    assert parse_line("KAIML_RESULT {broken") is None and parse_line("hello") is None
    log = "\n".join(["runner: starting", line.replace('"index":1', '"index":2'), "noise", line])
    assert find_result(log)["index"] == 1
    assert find_result("nothing here") is None


def test_result_record_fits_a_log_line_of_any_size_but_stays_small(run_runner: Callable[..., Any]) -> None:
    """The record is far under the 4 KiB a termination message would allow (not the channel, but a
    sign that nothing large slipped in)."""
    _, lines, _ = run_runner(MLP)
    assert len(lines[0].encode()) < 2048


def test_image_and_pyproject_pin_the_same_torch() -> None:
    dockerfile = (REPO / "runner" / "Dockerfile").read_text()
    requirements = (REPO / "runner" / "requirements.txt").read_text().splitlines()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "torch==2.13.0" in pyproject["project"]["optional-dependencies"]["runner"]
    pins = [line for line in requirements if line and not line.startswith("#")]
    assert "torch==2.13.0" in pins and all("==" in pin for pin in pins)
    assert "-r /tmp/requirements.txt" in dockerfile
    assert "USER 65532:65532" in dockerfile
    assert "HOME=/tmp" in dockerfile and "TMPDIR=/tmp" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "runner"]' in dockerfile
