"""Finding the config: in a pod (KAIML_CONFIG_INDEXES + JOB_COMPLETION_INDEX) and from a file."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runner_cases import FEW, TINY

from runner.config import cluster_index, load_cluster, parse_document
from runner.errors import ConfigError


def write_sweep(directory: Path, sweep: str = "zoo") -> None:
    """The ConfigMap as charts/benchmark renders it: config-<index>.json per config."""
    models = ["mlp", "cnn", "transformer", "mlp", "cnn", "transformer"]
    for index, model in enumerate(models):
        config = {**TINY[model], **FEW, "gpuType": "", "gpuCount": 0, "nodePool": "cpu-general"}
        doc = {"sweep": sweep, "kind": "model-latency", "index": index, "config": config}
        (directory / f"config-{index}.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(("completion", "expected"), [("0", 2), ("1", 5), ("2", 4)])
def test_in_cluster_picks_indexes_at_the_completion_index(
    completion: str,
    expected: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_runner: Callable[..., Any],
    validate: Callable[[dict[str, Any]], None],
) -> None:
    write_sweep(tmp_path)
    monkeypatch.setenv("KAIML_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("KAIML_CONFIG_INDEXES", "2,5,4")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", completion)
    code, _, record = run_runner(argv=[])
    assert code == 0, record["error"]
    validate(record)
    assert (record["sweep"], record["index"]) == ("zoo", expected)
    assert record["config"] == json.loads((tmp_path / f"config-{expected}.json").read_text())["config"]


def test_without_an_index_list_the_completion_index_is_the_config_index(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    run = load_cluster({"KAIML_CONFIG_DIR": str(tmp_path), "JOB_COMPLETION_INDEX": "3"})
    assert (run.index, run.config["model"]) == (3, "mlp")


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({}, "JOB_COMPLETION_INDEX"),
        ({"JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX"),
        ({"JOB_COMPLETION_INDEX": "3", "KAIML_CONFIG_INDEXES": "2,5,4"}, "KAIML_CONFIG_INDEXES"),
        ({"JOB_COMPLETION_INDEX": "0", "KAIML_CONFIG_INDEXES": "2,,4"}, "KAIML_CONFIG_INDEXES"),
    ],
)
def test_bad_cluster_environment_names_the_variable(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        cluster_index(env)
    assert e.value.key == key


def test_missing_config_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_runner: Callable[..., Any]
) -> None:
    monkeypatch.setenv("KAIML_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("KAIML_CONFIG_INDEXES", "7")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "0")
    monkeypatch.setenv("KAIML_SWEEP", "zoo")
    code, _, record = run_runner(argv=[])
    assert code == 3
    assert (record["status"], record["sweep"], record["index"]) == ("config-error", "zoo", 7)
    assert "config-7.json does not exist" in record["error"]


def test_bare_config_file_is_kind_model_latency() -> None:
    run = parse_document({"model": "mlp", "batchSize": 1, "inputShape": [4]}, "f.json")
    assert (run.kind, run.sweep, run.index) == ("model-latency", "local", 0)
    assert "kind" not in run.config


@pytest.mark.parametrize(
    ("doc", "key"),
    [([], "config"), ({"config": 3}, "config"), ({"kind": ""}, "kind"), ({"config": {}, "index": -1}, "index")],
)
def test_malformed_documents(doc: Any, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_document(doc, "f.json")
    assert e.value.key == key


def test_unreadable_and_non_json_files(tmp_path: Path, run_runner: Callable[..., Any]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    for path in (bad, tmp_path / "absent.json"):
        code, _, record = run_runner(argv=["--config", str(path)])
        assert code == 3 and record["error"].startswith("bad config: config: ")
        assert record["index"] is None
