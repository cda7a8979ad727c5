"""Kind `train`: configs refused before anything runs (exit 3, the key named), the store settings a
pod must have, and the example specs against the schema and the runner."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from runner_cases import TRAIN

from deploy.workloads.train.spec import LAUNCHER_KEYS, runner_config
from runner.training import spec

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "deploy" / "workloads" / "train" / "training.schema.json"
EXAMPLES = sorted((REPO / "examples" / "training").glob("*.yaml"))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"model": "resnet9000"}, "model"),
        ({"model": "fasterrcnn_resnet50_fpn"}, "model"),  # detection, not classification
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batchSize": 0}, "batchSize"),
        ({"learningRate": 0}, "learningRate"),
        ({"learningRate": "0.1"}, "learningRate"),
        ({"framework": "timm"}, "framework"),
        ({"dataset": "imagenet"}, "dataset"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"checkpointEvery": 0}, "checkpointEvery"),
        ({"seed": -1}, "seed"),
        ({"epoch": 3}, "epoch"),
        ({"modelArgs": {"weights": "IMAGENET1K_V1"}}, "modelArgs.weights"),
        ({"modelArgs": {"num_classes": 3}}, "modelArgs.num_classes"),
        ({"model": "resnet18", "modelArgs": {"depth": 3}}, "modelArgs"),
        ({"modelArgs": {"width_mult": "wide"}}, "modelArgs"),
        ({"datasetArgs": {"classes": 1}}, "datasetArgs.classes"),
        ({"datasetArgs": {"path": "/data"}}, "datasetArgs.path"),
        ({"resources": "big"}, "resources"),
    ],
)
def test_bad_train_config_exits_3_naming_the_key(
    change: dict[str, Any], key: str, run_runner: Callable[..., Any], validate: Callable[[dict[str, Any]], None]
) -> None:
    """Refused before the store is even looked for: no KAIML_OBJECTSTORE_* is set here."""
    code, _, record = run_runner({**TRAIN, **change})
    assert code == 3, record["error"]
    validate(record)
    assert record["status"] == "config-error"
    assert record["error"].startswith(f"bad config: {key}: "), record["error"]


def test_missing_required_key_is_named(run_runner: Callable[..., Any]) -> None:
    config = {k: v for k, v in TRAIN.items() if k != "epochs"}
    code, _, record = run_runner(config)
    assert (code, record["error"].split(":")[1].strip()) == (3, "epochs")


def test_several_nodes_are_refused_with_the_reason(run_runner: Callable[..., Any]) -> None:
    code, _, record = run_runner({**TRAIN, "nodes": 2})
    assert code == 3
    assert record["error"].startswith("bad config: nodes: 2: ")
    assert "coordinated-run" in record["error"] and "DDP" in record["error"]


def test_store_settings_are_required(run_runner: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    code, _, record = run_runner(TRAIN)
    assert code == 3 and record["error"].startswith("bad config: KAIML_OBJECTSTORE_ENDPOINT: ")
    monkeypatch.setenv("KAIML_OBJECTSTORE_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("KAIML_OBJECTSTORE_BUCKET", "b")
    monkeypatch.setenv("KAIML_OBJECTSTORE_CREDENTIALS_DIR", str(tmp_path / "no-secret"))
    code, _, record = run_runner(TRAIN)
    assert code == 3 and record["error"].startswith("bad config: KAIML_OBJECTSTORE_CREDENTIALS_DIR: ")
    assert "access-key" in record["error"]


def test_digest_ignores_where_the_run_is_scheduled() -> None:
    base = {k: v for k, v in TRAIN.items() if k != "kind"}
    placed = {**base, "gpuType": "nvidia-h100", "resources": {"limits": {"cpu": "4"}}, "nodePool": "gpu"}
    assert spec.parse(base).digest == spec.parse(placed).digest
    assert spec.parse(base).digest != spec.parse({**base, "seed": 8}).digest


def test_examples_fit_the_schema_and_the_runner() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert EXAMPLES, "examples/training/ has no spec"
    for path in EXAMPLES:
        doc = yaml.safe_load(path.read_text())
        jsonschema.Draft202012Validator(schema).validate(doc)
        parsed = spec.parse(runner_config(doc))
        assert parsed.epochs >= 1 and parsed.model, path


def test_schema_and_runner_know_the_same_keys() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["properties"]) == {*LAUNCHER_KEYS, *spec.KEYS}
    assert set(schema["required"]) == {"name", *spec.REQUIRED}
    assert set(schema["properties"]["datasetArgs"]["properties"]) == set(spec.DATASET_ARGS)


@pytest.mark.parametrize(
    ("change", "where"),
    [({"epochs": 0}, "epochs"), ({"model": ""}, "model"), ({"nodes": 2}, "nodes"), ({"extra": 1}, "extra")],
)
def test_schema_refuses_what_the_runner_refuses(change: dict[str, Any], where: str) -> None:
    schema = json.loads(SCHEMA.read_text())
    doc = {**yaml.safe_load(EXAMPLES[0].read_text()), **change}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert errors and any(where in str([*e.path, e.message]) for e in errors), errors
