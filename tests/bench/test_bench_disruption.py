"""A sweep disturbed while it runs, on the local control plane: a node deleted under its pods, a pod
preempted by a higher-priority one, and configs that cannot start (a taint, the quota). Each config's
pods are held Running with kwok's stage delay (the pod-complete annotation), so that the
disturbance lands mid-sweep; every result must still arrive, once."""

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_cli import LOG_LABELS, cli, start, write_sweep
from faults import restart_apiserver

from deploy.cluster.controlplane import LocalCluster
from deploy.cluster.fakenodes import apply_nodes, fake_node
from deploy.kube import watch as kube
from deploy.platform.nodepools import node_pools
from deploy.platform.values import load_environment
from deploy.workloads.store import read_records

pytestmark = pytest.mark.cluster

NAMESPACE = "benchmarks-dev"
A100_POOL = "gpu-high-end"
T4_POOL = "gpu-optimized"
HOLD = "podAnnotations.pod-complete\\.stage\\.kwok\\.x-k8s\\.io/delay={}"


@pytest.fixture
def core(cluster: LocalCluster) -> Any:
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 120, proc: subprocess.Popen[str] | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"bench run ended (exit {proc.returncode}) before {what}: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def sweep_pods(core: Any, sweep: str) -> list[dict[str, Any]]:
    pods, _ = kube.list_all(core.list_namespaced_pod, NAMESPACE, label_selector=f"kai-ml.io/benchmark={sweep}")
    return pods


def running_on(core: Any, sweep: str, node: str, n: int) -> list[str] | None:
    names = [
        p["metadata"]["name"]
        for p in sweep_pods(core, sweep)
        if kube.get(p, "spec", "nodeName") == node and kube.get(p, "status", "phase") == "Running"
    ]
    return names if len(names) >= n else None


def pool_nodes(core: Any, pool: str) -> list[str]:
    nodes, _ = kube.list_all(core.list_node, label_selector=f"node-type={pool}")
    return [n["metadata"]["name"] for n in nodes]


def cordon(core: Any, nodes: list[str], on: bool) -> None:
    for node in nodes:
        core.patch_node(node, {"spec": {"unschedulable": on}})


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"bench run did not finish in {timeout}s: {err[-3000:]}")
    return proc.returncode, err


def gone(delete: Callable[..., Any], name: str) -> None:
    """Delete `name` unless the test did already."""
    from kubernetes.client.rest import ApiException

    try:
        delete(name)
    except ApiException as err:
        if err.status != 404:
            raise


def results(runs: Path, sweep: str) -> list[dict[str, Any]]:
    return list(read_records(runs / f"bench-{sweep}" / "results.jsonl"))


@pytest.fixture
def sweeps(kubeconfig: Path, platform: Path) -> Iterator[list[str]]:
    """Names of the sweeps a test launched: deleted afterwards, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        cli(kubeconfig, platform, "bench", "delete", name, "--env", "dev")


def test_a_deleted_node_s_configs_are_retried_and_report_once(
    core: Any, kubeconfig: Path, platform: Path, tmp_path: Path, sweeps: list[str]
) -> None:
    pool = node_pools(load_environment("dev"))[A100_POOL]
    extra = fake_node(pool, 90)
    doomed = extra["metadata"]["name"]
    others = pool_nodes(core, A100_POOL)
    apply_nodes(core, [extra])
    cordon(core, others, True)  # the sweep starts on the node that will go
    sweeps.append("node-loss")
    sweep = write_sweep(tmp_path, "node-loss", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-a100"},
                        matrix={"batchSize": [1, 2, 3, 4]}, parallelism=4)  # fmt: skip
    proc = start(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev",
                 "--set", LOG_LABELS, "--set", HOLD.format("8s"))  # fmt: skip
    try:
        first = wait_for(
            "4 pods running on the doomed node", lambda: running_on(core, "node-loss", doomed, 4), proc=proc
        )
        core.delete_node(doomed)
        cordon(core, others, False)
        code, err = finish(proc)
    finally:
        cordon(core, others, False)
        if proc.poll() is None:
            proc.kill()
        gone(core.delete_node, doomed)
    assert code == 0, err
    assert "4 of 4 configs have a result" in err
    records = results(platform, "node-loss")
    assert sorted(r["config"] for r in records) == [0, 1, 2, 3]
    # Each result came from a replacement pod on a node that still exists.
    assert not {r["pod"] for r in records} & set(first)
    assert {r["node"] for r in records} <= set(others)


def test_a_preempted_config_is_retried_and_reports_once(
    core: Any, kubeconfig: Path, platform: Path, tmp_path: Path, sweeps: list[str]
) -> None:
    node, *others = pool_nodes(core, A100_POOL)
    cordon(core, others, True)
    sweeps.append("preempted")
    # Two one-GPU configs: the preemptor wants all 8 GPUs of the node, so both must go.
    sweep = write_sweep(tmp_path, "preempted",
                        base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-a100"},
                        matrix={"batchSize": [1, 2]}, parallelism=2)  # fmt: skip
    proc = start(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev",
                 "--set", LOG_LABELS, "--set", HOLD.format("15s"))  # fmt: skip
    preemptor = preemptor_pod(node)
    try:
        victims = wait_for("both configs running", lambda: running_on(core, "preempted", node, 2), proc=proc)
        core.create_namespace({"metadata": {"name": "preemptor"}})
        core.create_namespaced_pod("preemptor", preemptor)
        # The scheduler evicts the sweep's pods; the Jobs make new ones, which wait for the GPUs.
        wait_for("the victims replaced by pending pods", lambda: replaced(core, victims), proc=proc)
        core.delete_namespace("preemptor")  # the important work is done: the GPUs come back
        code, err = finish(proc)
    finally:
        cordon(core, others, False)
        if proc.poll() is None:
            proc.kill()
        gone(core.delete_namespace, "preemptor")
    assert code == 0, err
    assert "2 of 2 configs have a result" in err
    records = results(platform, "preempted")
    assert sorted(r["config"] for r in records) == [0, 1]
    assert not {r["pod"] for r in records} & set(victims)
    events, _ = kube.list_all(core.list_namespaced_event, NAMESPACE, field_selector="reason=Preempted")
    assert {kube.get(e, "involvedObject", "name") for e in events} >= set(victims)


def test_an_api_server_restart_mid_sweep_loses_no_result(
    cluster: LocalCluster, core: Any, kubeconfig: Path, platform: Path, tmp_path: Path, sweeps: list[str]
) -> None:
    """The watches and log reads ride out the outage (retried, resumed from their last version)."""
    sweeps.append("api-restart")
    sweep = write_sweep(tmp_path, "api-restart", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-a100"},
                        matrix={"batchSize": [1, 2, 3, 4, 5, 6]}, parallelism=3)  # fmt: skip
    proc = start(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev",
                 "--set", LOG_LABELS, "--set", HOLD.format("4s"))  # fmt: skip
    try:
        wait_for("the sweep's first pods running", lambda: running_anywhere(core, "api-restart"), proc=proc)
        restart_apiserver(cluster, downtime=3)
        code, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert "6 of 6 configs have a result" in err
    assert sorted(r["config"] for r in results(platform, "api-restart")) == list(range(6))


def running_anywhere(core: Any, sweep: str) -> bool:
    return any(kube.get(p, "status", "phase") == "Running" for p in sweep_pods(core, sweep))


def preemptor_pod(node: str) -> dict[str, Any]:
    """A high-priority-batch pod that wants every GPU of `node`."""
    return {
        "metadata": {"name": "urgent"},
        "spec": {
            "priorityClassName": "high-priority-batch",
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "node-type", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"nvidia.com/gpu": "8"}, "limits": {"nvidia.com/gpu": "8"}},
                }
            ],
        },
    }


def replaced(core: Any, victims: list[str]) -> bool:
    pods = sweep_pods(core, "preempted")
    names = {p["metadata"]["name"] for p in pods if not kube.get(p, "metadata", "deletionTimestamp")}
    return not names & set(victims) and len(names) >= 2


def test_pending_configs_say_why(
    core: Any, kubeconfig: Path, platform: Path, tmp_path: Path, sweeps: list[str]
) -> None:
    """t4 nodes tainted for maintenance, then eight a100 configs whose GPUs pass the quota (8)
    together with the waiting t4 pods': `bench status -o json` names each cause while they wait."""
    t4_nodes = pool_nodes(core, T4_POOL)
    taint = {"key": "kai-ml.io/maintenance", "value": "true", "effect": "NoSchedule"}
    for node in t4_nodes:
        core.patch_node(node, {"spec": {"taints": [*node_taints(core, node), taint]}})
    sweeps += ["tainted", "over-quota"]
    tainted = write_sweep(tmp_path, "tainted", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-t4"},
                          matrix={"batchSize": [1, 2]}, parallelism=2)  # fmt: skip
    over = write_sweep(tmp_path, "over-quota", base={"model": "mlp", "inputShape": [64], "gpuType": "nvidia-a100"},
                       matrix={"batchSize": list(range(1, 9))}, parallelism=8)  # fmt: skip
    try:
        for sweep in (tainted, over):
            done = cli(kubeconfig, platform, "bench", "run", str(sweep), "--env", "dev", "--no-follow",
                       "--set", LOG_LABELS, "--set", HOLD.format("60s"))  # fmt: skip
            assert done.returncode == 0, done.stderr
            if sweep is tainted:  # its two pending pods hold 2 of the quota's 8 GPUs
                wait_for("the tainted sweep's pods", lambda: len(sweep_pods(core, "tainted")) == 2)

        def pending(sweep: str, cause: str) -> list[str] | None:
            status = cli(kubeconfig, platform, "bench", "status", sweep, "--env", "dev", "-o", "json")
            assert status.returncode == 0, status.stderr
            reasons = [why for row in json.loads(status.stdout) for why in row["pending"]]
            return reasons if any(cause in why for why in reasons) else None

        t4 = wait_for("the taint in bench status", lambda: pending("tainted", "taint not tolerated"), timeout=60)
        a100 = wait_for("the quota in bench status", lambda: pending("over-quota", "quota exceeded"), timeout=60)
    finally:
        for node in t4_nodes:
            kept = [t for t in node_taints(core, node) if t.get("key") != taint["key"]]
            core.patch_node(node, {"spec": {"taints": kept}})
    assert any("taint not tolerated" in why for why in t4), t4
    # 2 GPUs held by the tainted sweep's pending pods + 6 here fill the quota's 8: the rest are refused.
    assert any("quota exceeded" in why and "nvidia.com/gpu" in why for why in a100), a100


def node_taints(core: Any, node: str) -> list[dict[str, Any]]:
    resp = core.read_node(node, _preload_content=False)
    return kube.get(json.loads(resp.data), "spec", "taints", default=[])
