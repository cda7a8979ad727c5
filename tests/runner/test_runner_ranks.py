"""`python -m runner.ranks`: real rank processes on loopback (gloo on CPU), per-rank records and
the aggregate, as the issue's `--local` run will produce them."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from runner import stats
from runner.aggregate import aggregate
from runner.errors import ConfigError
from runner.ranks import free_port, load_spec
from runner.result import ORDER, find_result

REPO = Path(__file__).resolve().parents[2]
TINY_MLP = {
    "model": "mlp",
    "batchSize": 2,
    "inputShape": [16],
    "modelArgs": {"hidden": 16, "layers": 1},
    "warmup": 2,
    "iterations": 30,
}


def launch(tmp_path: Path, spec: dict[str, Any], ranks: int, suffix: str = ".json") -> tuple[int, dict, list[dict]]:
    """(exit code, the aggregate from stdout, each rank's record from its log)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"spec{suffix}"
    path.write_text(yaml.safe_dump(spec) if suffix == ".yaml" else json.dumps(spec))
    out = tmp_path / "out"
    env = {**os.environ, "KAIML_DEVICE": "cpu", "KAIML_START_LEAD_MS": "300", "KAIML_RENDEZVOUS_TIMEOUT_S": "60"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner.ranks",
            "--ranks",
            str(ranks),
            "--config",
            str(path),
            "--output-dir",
            str(out),
            "--timeout",
            "120",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    total = find_result(proc.stdout)
    assert total is not None, proc.stderr
    records = [find_result((out / f"rank-{r}.log").read_text()) for r in range(ranks)]
    assert json.loads((out / "aggregate.json").read_text()) == total
    return proc.returncode, total, records  # type: ignore[return-value]


def union_stats(records: list[dict]) -> dict:
    return stats.latency_stats([v for r in records for v in r["samples"]["values"]])


def test_coordinated_latency_on_four_ranks(tmp_path: Path, validate: Callable[[dict], None]) -> None:
    code, total, records = launch(
        tmp_path, {"name": "coord", "mode": "coordinated", "kind": "model-latency", "config": TINY_MLP}, 4, ".yaml"
    )
    assert code == 0, total
    for rank, record in enumerate(records):
        validate(record)
        assert (record["rank"], record["world_size"], record["mode"], record["sweep"]) == (
            rank,
            4,
            "coordinated",
            "coord",
        )
        assert len(record["samples"]["values"]) == 30
        assert record["latency_ms"] == stats.latency_stats(record["samples"]["values"])
    validate(total)
    assert total["status"] == "ok" and total["world_size"] == 4 and total["iterations"] == 120
    assert total["latency_ms"] == union_stats(records)
    starts = [r["start_ns"] for r in records]
    assert total["start_skew_ms"] == pytest.approx((max(starts) - min(starts)) / 1e6, abs=1e-6)
    assert total["start_skew_ms"] < 100  # the windows overlap (the benchmark measures the real figure)


def test_distributed_allreduce_on_four_ranks(tmp_path: Path, validate: Callable[[dict], None]) -> None:
    spec = {"name": "ar", "kind": "allreduce", "config": {"sizes": [1024, 65536], "warmup": 1, "iterations": 5}}
    code, total, records = launch(tmp_path, spec, 4)
    assert code == 0, total
    for record in records:
        validate(record)
        assert record["mode"] == "distributed" and record["metrics"]["backend"] == "gloo"
        assert [row["bytes"] for row in record["metrics"]["allreduce"]] == [1024, 65536]
    validate(total)
    assert total["latency_ms"] == union_stats(records)
    rows = total["metrics"]["allreduce"]
    for i, row in enumerate(rows):
        assert row["time_us"] == max(r["metrics"]["allreduce"][i]["time_us"] for r in records)
        assert row["busbw_gbps"] == pytest.approx(row["algbw_gbps"] * 2 * 3 / 4, rel=1e-4)


def test_data_parallel_step_and_a_server_search_on_two_ranks(tmp_path: Path) -> None:
    ddp = {"name": "ddp", "kind": "ddp-step", "config": {**TINY_MLP, "batchSize": 4, "iterations": 5}}
    code, total, records = launch(tmp_path / "ddp", ddp, 2)
    assert code == 0, total
    assert total["mode"] == "distributed"
    assert total["throughput"] == pytest.approx(sum(r["throughput"] for r in records), abs=0.01)
    server = {
        "name": "srv",
        "kind": "model-latency",
        "config": {
            **TINY_MLP,
            "scenario": {
                "name": "server",
                "p99BoundMs": 500,
                "minQps": 20,
                "maxQps": 80,
                "trialSeconds": 0.25,
                "minQueries": 10,
                "budgetSeconds": 3,
                "tolerance": 0.5,
            },
        },
    }
    code, total, records = launch(tmp_path / "srv", server, 2)
    assert code == 0, total
    trials = [[t["passed"] for t in r["metrics"]["trials"]] for r in records]
    assert trials[0] == trials[1]  # the ranks agreed on every verdict, so they ran the same trials
    assert total["metrics"]["qps"] == pytest.approx(sum(r["metrics"]["qps"] for r in records))
    assert total["latency_ms"] == union_stats(records)


def test_a_bad_config_fails_every_rank_with_exit_3(tmp_path: Path) -> None:
    code, total, records = launch(tmp_path, {"kind": "allreduce", "config": {"sizes": [3]}}, 2)
    assert code == 3
    assert total["status"] == "config-error"
    assert total["error"].startswith("rank 0: bad config: sizes: ")
    assert all(r["status"] == "config-error" and r["rank"] == i for i, r in enumerate(records))


def test_a_distributed_kind_outside_a_multi_rank_run_is_refused(run_runner: Callable[..., Any]) -> None:
    code, _, record = run_runner({"kind": "allreduce", "config": {"sizes": [1024]}})
    assert code == 3 and record["error"].startswith("bad config: WORLD_SIZE: unset")


def test_a_run_spec_whose_mode_does_not_match_its_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\nmode: coordinated\nkind: allreduce\nconfig: {}\n")
    with pytest.raises(ConfigError, match=r"mode: .* kind allreduce runs distributed, not 'coordinated'"):
        load_spec(path)


def test_example_run_specs_load_and_match_the_schema() -> None:
    schema = json.loads((REPO / "deploy" / "workloads" / "runs" / "run.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    specs = sorted((REPO / "examples" / "runs").glob("*.yaml"))
    assert len(specs) >= 4
    for path in specs:
        validator.validate(yaml.safe_load(path.read_text()))
        spec = load_spec(path)
        assert spec.ranks and spec.run.sweep == path.stem
    assert not validator.is_valid({"name": "x", "kind": "allreduce", "mode": "coordinated", "config": {}})
    assert not validator.is_valid({"name": "X_1", "kind": "allreduce", "config": {}})


def test_a_rank_of_a_world_of_one_reports_its_samples(
    run_runner: Callable[..., Any], validate: Callable[[dict], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "0")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    code, _, record = run_runner(TINY_MLP)
    assert code == 0
    validate(record)
    assert (record["rank"], record["world_size"], record["mode"]) == (0, 1, "coordinated")
    assert record["latency_ms"] == stats.latency_stats(record["samples"]["values"])
    assert record["start_ns"] > 0
    total = aggregate([record])
    assert total["latency_ms"] == record["latency_ms"] and total["start_skew_ms"] == 0


def test_a_single_run_record_has_no_multi_rank_fields(run_runner: Callable[..., Any]) -> None:
    _, _, record = run_runner(TINY_MLP)
    assert list(record) == list(ORDER)
