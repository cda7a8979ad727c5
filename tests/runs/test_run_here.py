"""`run start SPEC --here`: the ranks as local processes (runner.ranks), one record per rank in the
run's results.jsonl, and `run results` whose aggregate percentiles are those of the union of the ranks'
samples; a spec that is bad for the runner fails with its reason and stores nothing."""

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_cli import cli

from runner import stats
from runner.aggregate import aggregate

TINY = {
    "model": "mlp",
    "batchSize": 2,
    "inputShape": [16],
    "modelArgs": {"hidden": 16, "layers": 1},
    "warmup": 2,
    "iterations": 40,
}


def _spec(tmp_path: Path, name: str, kind: str, config: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "ranks": 4, "kind": kind, "config": config}))
    return path


def test_four_coordinated_ranks_here_record_each_rank_and_the_union_aggregate(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = cli(None, runs, "run", "start", str(_spec(tmp_path, "coord", "model-latency", TINY)), "--here", timeout=240)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (runs / "run-coord" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["config"] for r in lines) == [0, 1, 2, 3]
    for line in lines:
        assert line["result"]["rank"] == line["config"] and line["result"]["world_size"] == 4
        assert line["pod"] == f"rank-{line['config']}" and line["group"] == "here"
        assert len(line["result"]["samples"]["values"]) == 40
    listed = cli(None, runs, "run", "results", "coord", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    total = json.loads(listed.stdout)["aggregate"]
    union = stats.latency_stats([v for line in lines for v in line["result"]["samples"]["values"]])
    assert total["latency_ms"] == union and total["iterations"] == 160
    assert total == aggregate([line["result"] for line in sorted(lines, key=lambda r: r["config"])])
    assert total["start_skew_ms"] < 100
    table = cli(None, runs, "run", "results", "coord", "--format", "csv")
    rows = table.stdout.splitlines()
    assert rows[0].startswith("rank,node,status") and rows[-1].startswith("all,")
    assert float(rows[-1].split(",")[6]) == union["p99"]


def test_four_distributed_ranks_here_all_reduce_over_gloo(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    spec = _spec(tmp_path, "ar", "allreduce", {"sizes": [4096, 65536], "warmup": 1, "iterations": 5})
    done = cli(None, runs, "run", "start", str(spec), "--here", timeout=240)
    assert done.returncode == 0, done.stderr
    total = json.loads(cli(None, runs, "run", "results", "ar", "--format", "json").stdout)["aggregate"]
    assert total["status"] == "ok" and total["mode"] == "distributed" and total["world_size"] == 4
    assert [row["bytes"] for row in total["metrics"]["allreduce"]] == [4096, 65536]
    assert total["metrics"]["backend"] == "gloo"
    plot = tmp_path / "ar.png"
    assert cli(None, runs, "run", "results", "ar", "--plot", str(plot)).returncode == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_config_the_runner_refuses_fails_every_rank_with_its_reason(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = cli(
        None,
        runs,
        "run",
        "start",
        str(_spec(tmp_path, "bad", "allreduce", {"sizes": [3]})),
        "--here",
        "--ranks",
        "2",
        timeout=240,
    )
    assert done.returncode == 1
    assert "bad config: sizes" in done.stderr


def test_cluster_options_are_refused_with_here(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "opts", "model-latency", TINY)
    done = cli(None, tmp_path, "run", "start", str(spec), "--here", "--local")
    assert done.returncode == 64 and "--here runs the ranks on this machine without a cluster" in done.stderr
    done = cli(None, tmp_path, "run", "start", str(spec), "--ranks", "2")
    assert done.returncode == 64 and "--ranks: only with --here" in done.stderr
