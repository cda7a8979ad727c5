"""`load run` on the local control plane (kwok's fake nodes: pods are scheduled and complete, but run
no container): the release sized from the concurrency (100,000 -> 200 workers and 50 record
processors), its own namespace with its policy, removed afterwards (by `load delete`, and by the run
itself once followed), and a run that cannot schedule reported and cleaned up."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from load_cli import cli

pytestmark = pytest.mark.cluster


def kubectl_json(kubectl: list[str], *args: str) -> dict:
    done = subprocess.run([*kubectl, *args, "-o", "json"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def gone(kubectl: list[str], namespace: str, timeout: int = 180) -> bool:
    """The namespace is deleted (not just terminating) within `timeout` seconds."""
    wait = ["wait", "--for=delete", f"namespace/{namespace}", f"--timeout={timeout}s"]
    return subprocess.run([*kubectl, *wait], capture_output=True, text=True, check=False).returncode == 0


def releases(kubeconfig: Path) -> list[str]:
    from deploy import tools

    done = subprocess.run([str(tools.tool("helm")), "--kubeconfig", str(kubeconfig), "list", "-A", "-q"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.split()


def test_a_run_is_sized_installed_in_its_own_namespace_and_deleted(
    platform_cluster: Path, runs: Path, kubectl: list[str], endpoint: str
) -> None:
    load = ("load", "run", "--endpoint", endpoint, "--model", "m", "--streaming", "--concurrency", "100000")
    started = cli(platform_cluster, runs, *load, "--duration", "30", "--name", "big", "--no-follow")
    assert started.returncode == 0, started.stderr
    assert "installed load-big: 1 runs in 3 Jobs, namespace load-big" in started.stderr

    jobs = {j["metadata"]["name"]: j for j in kubectl_json(kubectl, "-n", "load-big", "get", "jobs")["items"]}
    assert {n: j["spec"]["completions"] for n, j in jobs.items()} == {
        "big-controller": 1,
        "big-worker": 200,
        "big-record-processor": 50,
    }
    namespace = kubectl_json(kubectl, "get", "namespace", "load-big")["metadata"]["labels"]
    assert namespace["kai-ml.io/load-run"] == "big"
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    [quota] = kubectl_json(kubectl, "-n", "load-big", "get", "resourcequota")["items"]
    assert quota["spec"]["hard"]["pods"] == "251"
    policies = {p["metadata"]["name"] for p in kubectl_json(kubectl, "-n", "load-big", "get", "networkpolicy")["items"]}
    assert policies == {f"big-{p}" for p in ("default-deny", "controller", "worker", "record-processor", "endpoint")}

    # Every pod is admitted (restricted Pod Security, the quota) and scheduled onto the pool's kwok node,
    # which completes it: each Job completes with all its indexes.
    wait = ["-n", "load-big", "wait", "--for=condition=Complete", "job", "--all", "--timeout=300s"]
    done = subprocess.run([*kubectl, *wait], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    pods = kubectl_json(kubectl, "-n", "load-big", "get", "pods", "-l", "kai-ml.io/run=big")["items"]
    assert len(pods) == 251 and {p["spec"]["nodeName"] for p in pods} <= {n for n in _pool_nodes(kubectl)}

    status = cli(platform_cluster, runs, "load", "status", "big", "--env", "dev", "-o", "json")
    assert status.returncode == 0, status.stderr
    assert {g["group"]: g["succeeded"] for g in json.loads(status.stdout)} == {
        "controller": 1,
        "worker": 200,
        "record-processor": 50,
    }

    deleted = cli(platform_cluster, runs, "load", "delete", "big", "--env", "dev")
    assert deleted.returncode == 0, deleted.stderr
    assert gone(kubectl, "load-big") and "load-big" not in releases(platform_cluster)


def _pool_nodes(kubectl: list[str]) -> set[str]:
    nodes = kubectl_json(kubectl, "get", "nodes", "-l", "node-type=cpu-optimized")["items"]
    return {n["metadata"]["name"] for n in nodes}


def test_a_followed_run_removes_its_release_and_namespace(
    platform_cluster: Path, runs: Path, kubectl: list[str], endpoint: str
) -> None:
    """On kwok the controller's pod runs nothing and leaves no result: the run says so, exit 1, and its
    release and namespace are gone afterwards all the same."""
    args = ("--model", "m", "--concurrency", "1000", "--duration", "5", "--name", "small")
    done = cli(platform_cluster, runs, "load", "run", "--endpoint", endpoint, *args)
    assert done.returncode == 1, done.stderr
    assert "0 of 1 runs have a result, 1 failed" in done.stderr
    assert "uninstalled load-small" in done.stderr
    assert gone(kubectl, "load-small") and "load-small" not in releases(platform_cluster)


def test_a_run_that_cannot_schedule_is_reported_and_cleaned_up(
    platform_cluster: Path, runs: Path, kubectl: list[str], endpoint: str
) -> None:
    huge = ("--set", "controller.resources.requests.cpu=500", "--set", "controller.resources.limits.cpu=500")
    args = ("--model", "m", "--concurrency", "10", "--duration", "5", "--name", "stuck", "--deadline", "20", *huge)
    started = time.monotonic()
    done = cli(platform_cluster, runs, "load", "run", "--endpoint", endpoint, *args)
    assert done.returncode == 1, done.stderr
    assert "0 of 1 runs have a result, 1 failed" in done.stderr
    assert "deadline exceeded" in done.stderr and "it was pending: " in done.stderr, done.stderr
    assert "insufficient cpu" in done.stderr
    assert "uninstalled load-stuck" in done.stderr
    assert gone(kubectl, "load-stuck") and time.monotonic() - started < 240


# kwok serves tests/fixtures/loadgen-controller.log (a real controller's log of a 20-request run, made by
# tests/fixtures/make_loadgen_log.py) as the log of the pods in this namespace (tests/conftest.py).
LOGS_NAMESPACE = "load-logs"


def test_load_follow_brings_the_exports_and_the_records_home(
    platform_cluster: Path, runs: Path, kubectl: list[str], endpoint: str
) -> None:
    """Launched without following, then `load follow`: the controller's log (through the API server) gives
    the summary and the per-request records, written into the run folder's artifacts/ under AIPerf's
    names as a `--here` run writes them; `load results` shows the table; the namespace goes."""
    args = ("--model", "m", "--concurrency", "10", "--duration", "5", "--name", "logs", "--namespace", LOGS_NAMESPACE)
    started = cli(platform_cluster, runs, "load", "run", "--endpoint", endpoint, *args, "--no-follow")
    assert started.returncode == 0, started.stderr
    followed = cli(platform_cluster, runs, "load", "follow", "logs")
    assert followed.returncode == 0, followed.stderr
    assert "1 of 1 runs have a result" in followed.stderr

    artifacts = runs / "load-logs" / "artifacts"
    summary = json.loads((artifacts / "profile_export_aiperf.json").read_text())
    acc = summary["accounting"]
    lines = (artifacts / "profile_export.jsonl").read_text().splitlines()
    assert len(lines) == acc["recorded"] + acc["errors"] == 20
    assert sorted(json.loads(line)["metadata"]["session_num"] for line in lines) == list(range(20))
    assert (artifacts / "profile_export_aiperf.csv").read_text().startswith("Metric,")
    assert json.loads((artifacts / "READY").read_text())["ok"] is True
    assert "LOADGEN_RESULT" in (artifacts / "logs" / "loadgen.log").read_text()
    # Every pod's log came home before the namespace went, less the records (they are in the JSONL).
    kept = {p.name: p.read_text() for p in (artifacts / "logs").glob("*.log") if p.name != "loadgen.log"}
    for role in ("controller", "worker", "record-processor"):
        assert any(role in name for name in kept), (role, sorted(kept))
    assert all("LOADGEN_RESULT" in text and "LOADGEN_RECORDS" not in text for text in kept.values())
    assert "kept " in followed.stderr and " pod logs in " in followed.stderr

    shown = cli(None, runs, "load", "results", "logs")
    assert shown.returncode == 0, shown.stderr
    assert "Time to First Token" in shown.stderr and "Request Throughput" in shown.stderr  # the table: stderr
    assert gone(kubectl, LOGS_NAMESPACE)
