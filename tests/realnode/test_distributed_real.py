"""A distributed run in real pods (runs before test_real_node.py, whose last test takes the cluster
down): two ranks on the real node (ranksPerNode 2) join one gloo process group through rank 0's stable
DNS name under the run's headless Service, over the pod network, with the image's Debian torch 1.13;
each rank reports its own record and `run results` aggregates them."""

import json
from pathlib import Path

import pytest
import yaml
from realnode_env import POOL, RealCluster

pytestmark = pytest.mark.realnode


def test_two_ranks_all_reduce_over_gloo_in_real_pods(real_cluster: RealCluster, tmp_path: Path) -> None:
    spec = {
        "name": "real-ar",
        "kind": "allreduce",
        "config": {"sizes": [4096, 262144], "warmup": 2, "iterations": 10},
        "nodes": [real_cluster.node],
        "nodePool": POOL,
        "ranksPerNode": 2,
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "startTimeoutSeconds": 180,
    }
    path = tmp_path / "real-ar.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = real_cluster.cli("run", "start", str(path), *real_cluster.image_flags(), "--timeout", "5m")
    assert done.returncode == 0, done.stderr
    assert "2 of 2 ranks have a result" in done.stderr

    records = [
        json.loads(line) for line in (real_cluster.runs / "run-real-ar" / "results.jsonl").read_text().splitlines()
    ]
    assert sorted(r["config"] for r in records) == [0, 1]
    for record in records:
        result = record["result"]
        assert result["status"] == "ok", result.get("error")
        assert (result["rank"], result["world_size"], result["mode"]) == (record["config"], 2, "distributed")
        assert result["metrics"]["backend"] == "gloo"
        assert result["device"]["torch"].startswith("1.13") and result["device"]["node"] == real_cluster.node
        assert record["node"] == real_cluster.node
    listed = real_cluster.offline("run", "results", "real-ar", "--format", "json")
    total = json.loads(listed.stdout)["aggregate"]
    assert total["status"] == "ok" and total["world_size"] == 2
    assert [row["bytes"] for row in total["metrics"]["allreduce"]] == [4096, 262144]
    assert all(row["busbw_gbps"] > 0 for row in total["metrics"]["allreduce"])

    # Two pods, each with its own IP on the node's bridge: the group ran over the pod network.
    pods = json.loads(
        real_cluster.kubectl("get", "pods", "-n", "benchmarks-dev", "-l", "kai-ml.io/run=real-ar", "-o", "json")
    )["items"]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(pods) == 2 and len(ips) == 2
    assert {p["spec"]["hostname"] for p in pods} == {"real-ar-n0-0", "real-ar-n0-1"}
    assert real_cluster.cli("run", "stop", "real-ar", "--env", "dev").returncode == 0
