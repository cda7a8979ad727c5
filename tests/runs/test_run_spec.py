"""Run specs to charts/run's values: the checks that need no cluster, each refusal naming the file,
the key and the rule; and the report's rows (each rank, then the aggregate over their raw samples)."""

from pathlib import Path

import pytest
import yaml

from deploy.errors import ValuesError
from deploy.paths import REPO
from deploy.platform.values import load_environment
from deploy.workloads.runs import report, spec
from runner import stats

EXAMPLE = REPO / "examples" / "runs" / "allreduce-gloo.yaml"


def write(tmp_path: Path, **changes: object) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_example_becomes_one_group_per_node_and_one_unit_per_rank() -> None:
    values = spec.plan_run(EXAMPLE, load_environment("dev"))
    assert values["groups"] == [
        {"name": "n0", "node": "cpu-optimized-0", "indexes": [0, 1]},
        {"name": "n1", "node": "cpu-optimized-1", "indexes": [2, 3]},
    ]
    assert [u["index"] for u in values["units"]] == [0, 1, 2, 3]
    assert values["units"][3]["config"] == {
        "rank": 3,
        "node": "cpu-optimized-1",
        "nodePool": "cpu-optimized",
        "gpuType": "",
        "gpuCount": 0,
    }
    assert values["gpusPerRank"] == 0 and values["backoffLimitPerIndex"] == 0
    assert values["run"] == {"name": "allreduce-gloo", "kind": "allreduce", "mode": "distributed"}
    assert values["global"]["namespaces"] == {"benchmarks": "benchmarks-dev"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nodes": ["Bad_Node"]}, r"nodes\[0\]: 'Bad_Node' does not match"),
        ({"nodePool": None}, r"\(top level\): 'nodePool' is a dependency of 'nodes'"),
        ({"ranksPerNode": 0}, r"ranksPerNode: 0 is less than the minimum of 1"),
        ({"nodez": ["x"]}, r"nodez: unknown key"),
        ({"mode": "coordinated"}, r"mode: 'distributed' was expected"),
        ({"ranks": 3}, r"ranks 3 is not len\(nodes\) x ranksPerNode = 2 x 2 = 4"),
        ({"nodePool": "gpu-huge"}, r"nodePool 'gpu-huge' is not a node pool of global.nodePools"),
        ({"nodePool": "gpu-optimized", "gpusPerRank": 3}, r"ranksPerNode 2 x gpusPerRank 3 = 6 GPUs per node, more"),
        ({"priorityClassName": "urgent"}, r"priorityClassName 'urgent' is not a PriorityClass"),
        ({"nodes": None, "nodePool": None, "ranksPerNode": None}, r"no `nodes`: a run on a cluster is pinned"),
        (
            {"resources": {"requests": {"cpu": "4", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}},
            r"resources.requests.cpu is above resources.limits.cpu",
        ),
        ({"ranksPerNode": 20}, r"its 40 ranks together ask for pods 40, more than the benchmarks namespace allows"),
        ({"nodeCount": 2}, r"nodes and nodeCount: give one"),
        ({"nodes": None, "nodeCount": 2}, r"nodeCount 2: the nodes are chosen on the cluster by `run start`"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(tmp_path: Path, changes: dict, message: str) -> None:
    path = write(tmp_path, **changes)
    if "ranksPerNode" in changes and changes["ranksPerNode"] == 20:
        path = write(tmp_path, ranks=None, **changes)
    with pytest.raises(ValuesError, match=message) as err:
        spec.plan_run(path, load_environment("dev"))
    assert str(path) in str(err.value)


def _rank(rank: int, values: list[int], start: int) -> dict:
    return {
        "config": rank,
        "node": f"node-{rank // 2}",
        "result": {
            "schema": "kaiml.result/v1",
            "sweep": "r",
            "index": 0,
            "kind": "model-latency",
            "config": {},
            "device": {"node": f"node-{rank // 2}"},
            "started": "2026-01-01T00:00:00Z",
            "finished": "2026-01-01T00:00:01Z",
            "status": "ok",
            "error": None,
            "mode": "coordinated",
            "rank": rank,
            "world_size": 3,
            "latency_ms": stats.latency_stats(values),
            "throughput": 10.0,
            "iterations": len(values),
            "samples": {"encoding": "raw", "unit": "ns", "values": values},
            "start_ns": start,
        },
    }


def test_report_rows_are_the_ranks_then_the_aggregate_over_the_union_of_samples() -> None:
    # Very different ranks: the mean of their p99s would be far from the union's p99.
    samples = [[1_000_000] * 98 + [2_000_000] * 2, [5_000_000] * 100, [1_000_000] * 50 + [90_000_000] * 50]
    records = [_rank(r, s, 1_000_000_000 + r * 1_500_000) for r, s in enumerate(samples)]
    table = report.rows(list(reversed(records)))
    assert [r["rank"] for r in table] == [0, 1, 2, "all"]
    union = stats.latency_stats([v for s in samples for v in s])
    assert (table[-1]["p50_ms"], table[-1]["p99_ms"]) == (union["p50"], union["p99"])
    assert table[-1]["p99_ms"] != pytest.approx(sum(r["p99_ms"] for r in table[:3]) / 3, rel=0.1)
    assert [r["start_ms"] for r in table] == [0.0, 1.5, 3.0, 3.0]  # offsets, then the skew
    assert table[-1]["throughput"] == 30.0 and table[-1]["node"] == "2 nodes"
    assert report.as_csv(table).splitlines()[0] == ",".join(report.COLUMNS)


def test_records_that_are_not_one_run_report_why_there_is_no_aggregate() -> None:
    lone = _rank(0, [1_000_000], 1)
    del lone["result"]["rank"]
    [row, total] = report.rows([lone])
    assert row["rank"] == 0 and total["status"].startswith("no aggregate: record 0 has no rank")


def test_a_bad_spec_is_refused_before_any_cluster_is_touched(tmp_path: Path) -> None:
    """The plan's refusal comes first: with a kubeconfig that does not exist, a connection would fail
    otherwise (and without one, the local control plane would be started)."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "bench"))
    from bench_cli import cli

    spec_file = REPO / "examples" / "runs" / "latency-t4-nodes.yaml"
    done = cli(tmp_path / "no-such-kubeconfig", tmp_path, "run", "start", str(spec_file), "--env", "dev")
    assert done.returncode == 5, done.stderr
    assert "the run could only start in part" in " ".join(done.stderr.split())
