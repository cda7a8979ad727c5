"""Each built-in model and a TorchScript file run through the CLI; every record validates."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from runner_cases import FEW, TINY

from runner.kinds.model_latency import LatencySpec, prepare
from runner.models import BUILTIN, mlp


def test_every_builtin_model_has_a_tiny_config() -> None:
    assert set(TINY) == set(BUILTIN)


@pytest.mark.parametrize("model", sorted(TINY))
def test_builtin_model_runs_and_validates(
    model: str, run_runner: Callable[..., Any], validate: Callable[[dict[str, Any]], None], tmp_path: Path
) -> None:
    config = {**TINY[model], **FEW}
    output = tmp_path / "out" / "result.json"
    code, _, record = run_runner(config, ["--output", str(output)])
    assert code == 0, record["error"]
    validate(record)
    assert json.loads(output.read_text()) == record
    assert record["status"] == "ok" and record["error"] is None
    assert record["config"] == config and record["kind"] == "model-latency"
    assert record["iterations"] == 5
    lat = record["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert record["throughput"] == pytest.approx(config["batchSize"] * 1000 / lat["mean"], rel=1e-6)
    device = record["device"]
    assert device["type"] == "cpu" and device["torch"] == torch.__version__ and device["gpu"] is None
    assert device["node"] and device["cpu"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precisions_run_on_cpu(precision: str, run_runner: Callable[..., Any]) -> None:
    code, _, record = run_runner({**TINY["mlp"], **FEW, "precision": precision})
    assert code == 0, record["error"]


def test_fp16_without_cpu_kernels_is_refused_naming_precision(
    run_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a CPU op has no half kernel, the config fails with exit 3, not a silent fp32 run."""
    real = torch.nn.Linear.forward

    def no_half(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float16:
            raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'")
        return real(self, x)

    monkeypatch.setattr(torch.nn.Linear, "forward", no_half)
    code, _, record = run_runner({**TINY["mlp"], **FEW, "precision": "fp16"})
    assert code == 3
    assert record["status"] == "config-error"
    assert "precision: fp16 is not supported on CPU" in record["error"]


def test_node_name_comes_from_the_downward_api(run_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "gpu-node-7")
    _, _, record = run_runner({**TINY["mlp"], **FEW, "gpuType": "nvidia-t4"})
    assert record["device"]["node"] == "gpu-node-7"
    assert record["device"]["gpu_type"] == "nvidia-t4"


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
def test_torchscript_file_loads_and_runs(
    tmp_path: Path, run_runner: Callable[..., Any], validate: Callable[[dict[str, Any]], None]
) -> None:
    path = tmp_path / "mlp.pt"
    torch.jit.script(mlp([16], hidden=16, layers=1)).save(str(path))
    config = {"model": "torchscript", "modelPath": str(path), "batchSize": 3, "inputShape": [16], **FEW}
    code, _, record = run_runner(config)
    assert code == 0, record["error"]
    validate(record)


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
def test_torchscript_rejecting_the_shape_names_input_shape(tmp_path: Path, run_runner: Callable[..., Any]) -> None:
    path = tmp_path / "mlp.pt"
    torch.jit.trace(mlp([16], hidden=16, layers=1), torch.randn(1, 16)).save(str(path))
    code, _, record = run_runner({"model": "torchscript", "modelPath": str(path), "batchSize": 1, "inputShape": [7]})
    assert code == 3
    assert record["error"].startswith("bad config: inputShape: the TorchScript model rejects")


def test_prepared_forward_is_deterministic() -> None:
    spec = LatencySpec(model="mlp", batch_size=2, input_shape=(8,), model_args={"hidden": 8, "layers": 1})
    a, b = prepare(spec, torch.device("cpu")), prepare(spec, torch.device("cpu"))
    with torch.inference_mode():
        assert torch.equal(a(), b())  # type: ignore[arg-type]
