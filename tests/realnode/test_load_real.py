"""A load run in real pods on the real node: the target endpoint as a pod behind a headless Service,
`load run` with a controller, 2 workers and 1 record processor from the loadgen image built here
(Debian packages), every request accounted for once, the summary and the per-request records brought
home from the controller's log through the API server, the controller's live lines streamed while it
runs, and the run's namespace removed afterwards."""

import json
import re
from pathlib import Path

import pytest
import yaml
from realnode_env import POOL, TAG, RealCluster, real_pod

pytestmark = pytest.mark.realnode

REQUESTS = 1200  # some seconds of load: the live view has lines to show
SMALL = [f"{role}.resources.requests.cpu=100m" for role in ("controller", "worker", "recordProcessor")]


def _target(real_cluster: RealCluster, folder: Path) -> str:
    """`python -m loadgen target` in a pod of namespace load-target; returns its Service's URL."""
    image = f"{real_cluster.registry}/kai-ml/loadgen:{TAG}"
    args = ["python", "-m", "loadgen", "target", "--host", "0.0.0.0", "--port", "8000", "--ttft-ms", "20",
            "--itl-ms", "5", "--output-tokens", "8"]  # fmt: skip
    pod = real_pod("target", "load-target", image, args, {"app": "llm"})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "llm", "namespace": "load-target"},
        "spec": {"clusterIP": "None", "selector": {"app": "llm"}, "ports": [{"port": 8000}]},
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load-target"}}
    manifest = folder / "target.yaml"
    manifest.write_text(yaml.safe_dump_all([namespace, service, pod]))
    real_cluster.kubectl("apply", "-f", str(manifest))
    real_cluster.kubectl("wait", "-n", "load-target", "pod/target", "--for=condition=Ready", "--timeout=120s")
    return "http://llm.load-target.svc:8000"


def test_a_load_run_in_real_pods_accounts_for_every_request(real_cluster: RealCluster, tmp_path: Path) -> None:
    endpoint = _target(real_cluster, tmp_path)
    sets = [arg for s in SMALL for arg in ("--set", s)]
    done = real_cluster.cli(
        "load", "run", "--endpoint", endpoint, "--model", "m", "--streaming", "--concurrency", "20",
        "--requests", str(REQUESTS), "--workers", "2", "--record-processors", "1", "--node-pool", POOL,
        "--name", "real", *real_cluster.image_flags(), *sets, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stderr)  # the progress, the metrics table and the accounting line, for the record
    assert "1 of 1 runs have a result" in done.stderr
    # The live view: the controller's once-a-second lines, streamed from its pod's log.
    assert re.search(r"controller \[\s*[0-9.]+s\] done [0-9]+ \| [0-9.]+ req/s \| errors 0", done.stderr), done.stderr
    assert f"sent {REQUESTS} = recorded {REQUESTS} + errors 0 (lost 0, duplicates 0)" in done.stderr

    folder = real_cluster.runs / "load-real"
    [record] = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    summary = record["result"]
    assert record["node"] == real_cluster.node and record["group"] == "controller"
    assert summary["accounting"] == {"sent": REQUESTS, "recorded": REQUESTS, "errors": 0, "duplicates": 0,
                                     "lost": 0, "warmup_sent": 0, "warmup_recorded": 0}  # fmt: skip
    assert summary["request_count"]["avg"] == REQUESTS
    # Each role ran in a pod of its own (its id is its pod's name) and said bye with its counts.
    roles = summary["engine"]["roles"]
    workers = [r for r in roles if r["role"] == "worker"]
    processors = [r for r in roles if r["role"] == "record-processor"]
    assert len(workers) == 2 and len(processors) == 1
    assert all(r["id"].startswith("real-worker-") for r in workers), workers
    assert processors[0]["id"].startswith("real-record-processor-") and processors[0]["processed"] == REQUESTS
    # Not faster than the target's configuration but for its timers, which fire up to 1 ms early on an absolute
    # schedule (as in tests/load/test_load_here.py; seen here: ITL p50 4.998 ms).
    timer_ms = 1
    assert summary["time_to_first_token"]["p50"] >= 20 - timer_ms
    assert summary["inter_token_latency"]["p50"] >= 5 - 2 * timer_ms / 7
    artifacts = folder / "artifacts"
    home = json.loads((artifacts / "profile_export_aiperf.json").read_text())
    assert home["accounting"]["recorded"] == REQUESTS
    # The per-request records came home through the controller's log: one line per recorded request.
    lines = (artifacts / "profile_export.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["metadata"]["session_num"] for line in lines) == list(range(REQUESTS))
    assert {f.name for f in artifacts.iterdir()} >= {"profile_export_aiperf.csv", "READY", "logs"}
    # Each role's own log, from its real container, came home before the namespace went.
    kept = {p.name: p.read_text() for p in (artifacts / "logs").glob("*.log") if p.name != "loadgen.log"}
    assert len([n for n in kept if "-worker-" in n]) == 2 and len([n for n in kept if "record-processor" in n]) == 1
    assert all("LOADGEN_RECORDS" not in text for text in kept.values())

    assert "uninstalled load-real" in done.stderr
    real_cluster.kubectl("wait", "--for=delete", "namespace/load-real", "--timeout=120s")
    real_cluster.kubectl("delete", "namespace", "load-target", "--wait=false")
