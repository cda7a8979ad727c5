"""Run specs to charts/run's values: the checks that need no cluster, each refusal naming the file,
the key and the rule; and the report's rows (each rank, then the aggregate over their raw samples)."""

import copy
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
        {"name": "n0", "node": "cpu-optimized-0", "nodePool": "cpu-optimized", "indexes": [0, 1]},
        {"name": "n1", "node": "cpu-optimized-1", "nodePool": "cpu-optimized", "indexes": [2, 3]},
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
        ({"nodes": None, "nodeCount": 2, "gpuType": "nvidia-t4"}, r"nodePool and gpuType: give one"),
        ({"nodes": None, "nodePool": None, "nodeCount": 2}, r"nodeCount 2 of what: add nodePool .* or gpuType"),
        ({"nodePool": None, "gpuType": "nvidia-t4"}, r"'nodeCount' is a dependency of 'gpuType'"),
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


def _retyped(env: str, **types: str) -> dict:
    """The environment's values with the GPU type of some pools changed (pool -> type)."""
    values = copy.deepcopy(load_environment(env))
    for pool, gpu_type in types.items():
        values["global"]["nodePools"][pool.replace("_", "-")]["gpu"]["type"] = gpu_type
    return values


def test_a_gpu_type_is_every_pool_of_that_type_but_the_spot_pools_by_name() -> None:
    dev = load_environment("dev")
    assert [p.name for p in spec.candidate_pools({"gpuType": "nvidia-t4"}, dev, "s.yaml")] == ["gpu-optimized"]
    shared = _retyped("dev", gpu_high_end="nvidia-t4")
    assert [p.name for p in spec.candidate_pools({"gpuType": "nvidia-t4"}, shared, "s.yaml")] == [
        "gpu-high-end",
        "gpu-optimized",
    ]


def test_a_gpu_type_no_pool_has_is_refused_naming_the_types_that_exist() -> None:
    with pytest.raises(ValuesError) as err:
        spec.candidate_pools({"gpuType": "nvidia-h100"}, load_environment("dev"), "s.yaml")
    assert str(err.value) == (
        "run spec s.yaml: gpuType 'nvidia-h100': no pool of global.nodePools has it as gpu.type; the GPU types of "
        "the pools a run may use: nvidia-a100, nvidia-t4."
    )
    spot_only = _retyped("dev", spot_gpu_t4="nvidia-l4")
    with pytest.raises(ValuesError, match=r"gpuType 'nvidia-l4': only spot pools have it \(spot-gpu-t4\), and a run"):
        spec.candidate_pools({"gpuType": "nvidia-l4"}, spot_only, "s.yaml")


def test_more_gpus_per_node_than_the_pools_of_the_type_have_is_refused() -> None:
    run = {**spec.DEFAULTS, "name": "r", "gpuType": "nvidia-t4", "nodes": ["a"], "ranksPerNode": 3, "gpusPerRank": 2}
    with pytest.raises(ValuesError, match=r"3 x gpusPerRank 2 = 6 GPUs per node, more than a node of GPU type "
                                          r"nvidia-t4 \(pool gpu-optimized\) has \(4\)"):  # fmt: skip
        spec.check_environment(run, load_environment("prod"), "s.yaml")


def test_nodes_chosen_by_gpu_type_keep_each_its_own_pool(tmp_path: Path) -> None:
    """What `run start` plans once it has chosen the nodes of a GPU type that two pools share."""
    run = spec.load(write(tmp_path, nodes=None, nodePool=None, gpuType="nvidia-t4", nodeCount=2))
    placed = {"gpu-high-end-0": "gpu-high-end", "gpu-optimized-0": "gpu-optimized"}
    values = spec.chart_values({**run, "nodes": list(placed)}, _retyped("prod", gpu_high_end="nvidia-t4"), "s", placed)
    assert [(g["node"], g["nodePool"], g["indexes"]) for g in values["groups"]] == [
        ("gpu-high-end-0", "gpu-high-end", [0, 1]),
        ("gpu-optimized-0", "gpu-optimized", [2, 3]),
    ]
    assert [(u["config"]["nodePool"], u["config"]["gpuType"]) for u in values["units"]] == [
        ("gpu-high-end", "nvidia-t4")
    ] * 2 + [("gpu-optimized", "nvidia-t4")] * 2
    assert values["gpusPerRank"] == 1


def test_an_unknown_gpu_type_is_refused_before_any_cluster_is_touched(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "tests" / "bench"))
    from bench_cli import cli

    spec_file = write(tmp_path, nodes=None, nodePool=None, gpuType="nvidia-h100", nodeCount=2)
    done = cli(tmp_path / "no-such-kubeconfig", tmp_path, "run", "start", str(spec_file), "--env", "dev")
    assert done.returncode == 5, done.stderr
    message = " ".join(done.stderr.split())
    assert f"run spec {spec_file}: gpuType 'nvidia-h100': no pool of global.nodePools has it" in message
    assert "the GPU types of the pools a run may use: nvidia-a100, nvidia-t4." in message
