"""`run start|status|stop` on the local control plane (kwok nodes from the environments' pools: two
gpu-optimized nodes of 4 GPUs each): ranks pinned to the named nodes, a named node that cannot take its
ranks refused before anything is applied, a run whose ranks do not all start released whole after its
start timeout with the reason, `run stop` removing every pod, a count of nodes chosen from a pool or a
GPU type, and Ctrl-C while the ranks wait for the start releasing the whole run."""

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from bench_cli import cli_args, cli_env

from deploy.paths import REPO

pytestmark = pytest.mark.cluster

NAMESPACE = "benchmarks-dev"
NODES = ["gpu-optimized-0", "gpu-optimized-1"]
# Two pools of one GPU type: gpu-high-end re-typed T4 for the run (its node keeps its own labels and taint).
SHARED_T4 = "global:\n  nodePools:\n    gpu-high-end:\n      gpu: {type: nvidia-t4}\n"
# kwok completes a Job's pod at once unless told to keep it Running (deploy/cluster/stages.yaml): ranks
# that run on, as a benchmark's do, keep holding their GPUs and their share of the quota.
KEEP_RUNNING = ("--set", "podAnnotations.pod-complete\\.stage\\.kwok\\.x-k8s\\.io/delay=300s")


def write_spec(folder: Path, name: str, **fields: Any) -> Path:
    spec = {
        "name": name,
        "kind": "model-latency",
        "config": {"model": "mlp", "batchSize": 1, "inputShape": [16], "warmup": 1, "iterations": 5},
        "nodes": NODES,
        "nodePool": "gpu-optimized",
        "ranksPerNode": 2,
        "gpusPerRank": 1,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
        "startTimeoutSeconds": 60,
        **fields,
    }
    spec = {k: v for k, v in spec.items() if v is not None}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def pods(kubectl: list[str], run: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*kubectl, "-n", NAMESPACE, "get", "pods", "-l", f"kai-ml.io/run={run}", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["items"]


def wait_gone(kubectl: list[str], run: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while (left := pods(kubectl, run)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def hog(kubectl: list[str], name: str, namespace: str, node: str, gpus: int) -> None:
    """A restricted pod bound to `node` that holds `gpus` GPUs (kwok runs it; its requests count)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "tolerations": [{"operator": "Exists"}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "hog",
                    "image": "kai-ml/benchmark-runner:0.1.0",
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": gpus},
                        "limits": {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": gpus},
                    },
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), check=True, capture_output=True, text=True)


def unhog(kubectl: list[str], name: str, namespace: str) -> None:
    subprocess.run(
        [*kubectl, "-n", namespace, "delete", "pod", name, "--wait", "--grace-period=0", "--force"],
        check=True,
        capture_output=True,
    )


def test_ranks_land_on_their_named_nodes_and_stop_removes_every_pod(platform, kubectl, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "pinned")
    started = platform.cli(
        "run", "start", str(spec), "--env", "dev", "-f", str(platform.values), "--no-follow", *KEEP_RUNNING
    )
    assert started.returncode == 0, started.stderr
    assert "installed run-pinned: 4 ranks in 2 Jobs" in started.stderr
    placed = {}
    for pod in pods(kubectl, "pinned"):
        labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
        group = labels["kai-ml.io/group"]
        rank = int(annotations["batch.kubernetes.io/job-completion-index"]) + (2 if group == "n1" else 0)
        placed[rank] = pod["spec"]["nodeName"]
        assert pod["spec"]["hostname"] == f"pinned-{group}-{annotations['batch.kubernetes.io/job-completion-index']}"
        assert pod["spec"]["subdomain"] == "pinned"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert pod["status"]["phase"] == "Running"
    assert placed == {0: NODES[0], 1: NODES[0], 2: NODES[1], 3: NODES[1]}

    status = platform.cli("run", "status", "pinned", "--env", "dev", "-o", "json")
    assert status.returncode == 0, status.stderr
    assert sorted(g["group"] for g in json.loads(status.stdout)) == ["n0", "n1"]

    stopped = platform.cli("run", "stop", "pinned", "--env", "dev")
    assert stopped.returncode == 0, stopped.stderr
    assert "uninstalled run-pinned" in stopped.stderr
    assert wait_gone(kubectl, "pinned") == []


def test_a_named_node_without_free_gpus_or_tainted_is_refused_before_apply(platform, kubectl, tmp_path: Path) -> None:
    hog(kubectl, "gpu-hog", "default", NODES[1], 3)  # 1 of 4 GPUs left; the run needs 2 there
    taint = [*kubectl, "taint", "node", NODES[0], "maintenance=true:NoSchedule"]
    subprocess.run(taint, check=True, capture_output=True)
    try:
        refused = platform.cli(
            "run", "start", str(write_spec(tmp_path, "refused")), "--env", "dev", "-f", str(platform.values)
        )
    finally:
        subprocess.run([*taint[:-1], "maintenance=true:NoSchedule-"], check=True, capture_output=True)
        unhog(kubectl, "gpu-hog", "default")
    assert refused.returncode == 1, refused.stderr
    message = " ".join(refused.stderr.split())
    assert "run refused refused before anything was applied" in message
    assert (f"{NODES[0]}: tainted maintenance=true:NoSchedule, which the run does not tolerate") in message
    # The platform's own GPU pods may hold one there too: at most 1 is free either way.
    assert re.search(rf"{NODES[1]}: [01] free GPUs of 4, the run needs 2 there; held by [^.]*default/gpu-hog", message)
    helm_status = platform.cli("run", "status", "refused", "--env", "dev", "-o", "json")
    assert json.loads(helm_status.stdout) == []  # no Job was ever made
    assert pods(kubectl, "refused") == []


def test_ranks_that_cannot_all_start_release_the_whole_run_with_the_reason(platform, kubectl, tmp_path: Path) -> None:
    """The nodes are free, but the namespace's GPU quota (8) is 6 used by another pod: two ranks are
    admitted and start, the other two are never created. After the start timeout nothing is left."""
    hog(kubectl, "quota-hog", NAMESPACE, "gpu-high-end-0", 6)
    try:
        spec = write_spec(tmp_path, "partial", startTimeoutSeconds=8)
        begun = time.monotonic()
        released = platform.cli("run", "start", str(spec), "--env", "dev", "-f", str(platform.values), *KEEP_RUNNING)
        took = time.monotonic() - begun
        left = wait_gone(kubectl, "partial")
    finally:
        unhog(kubectl, "quota-hog", NAMESPACE)
    assert released.returncode == 1, released.stderr
    message = " ".join(released.stderr.split())
    assert "run partial released: 2 of 4 ranks did not start within 8 s: rank" in message
    assert message.count("its pod was not created: quota exceeded") == 2, message
    assert (
        "Nothing of it is left running (uninstalled run-partial: Jobs partial-n0, partial-n1; pods partial-n" in message
    )
    assert took >= 8
    assert left == []  # the two ranks that did start hold no GPU any more
    listed = platform.cli("run", "status", "partial", "--env", "dev", "-o", "json")
    assert json.loads(listed.stdout) == []


def test_a_count_of_nodes_is_chosen_among_those_that_can_take_the_ranks(platform, kubectl, tmp_path: Path) -> None:
    taint = [*kubectl, "taint", "node", NODES[0], "maintenance=true:NoSchedule"]
    subprocess.run(taint, check=True, capture_output=True)
    try:
        too_many = write_spec(tmp_path, "counted", nodes=None, nodeCount=2)
        refused = platform.cli("run", "start", str(too_many), "--env", "dev", "-f", str(platform.values))
        one = write_spec(tmp_path, "counted", nodes=None, nodeCount=1)
        started = platform.cli(
            "run", "start", str(one), "--env", "dev", "-f", str(platform.values), "--no-follow", *KEEP_RUNNING
        )
    finally:
        subprocess.run([*taint[:-1], "maintenance=true:NoSchedule-"], check=True, capture_output=True)
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 1, refused.stderr
    assert "nodeCount 2 of pool gpu-optimized, but 1 of its 2 nodes can take their ranks now" in message
    assert f"{NODES[0]}: tainted maintenance=true:NoSchedule" in message
    assert started.returncode == 0, started.stderr
    assert f"run counted: nodeCount 1 of pool gpu-optimized: {NODES[1]}" in " ".join(started.stderr.split())
    assert {p["spec"]["nodeName"] for p in pods(kubectl, "counted")} == {NODES[1]}
    assert platform.cli("run", "stop", "counted", "--env", "dev").returncode == 0
    assert wait_gone(kubectl, "counted") == []


def test_a_count_of_nodes_of_a_gpu_type_comes_from_all_its_pools_first_by_name(
    platform, kubectl, tmp_path: Path
) -> None:
    """T4 nodes of two pools (gpu-high-end-0, gpu-optimized-0 and -1; spot-gpu-t4-0 is a spot pool's and
    never chosen): a node tainted against the run and one without the free GPUs are passed over, each
    named with why; the ranks of each chosen node tolerate its own pool."""
    shared = tmp_path / "shared-t4.yaml"
    shared.write_text(SHARED_T4)
    values = ("-f", str(platform.values), "-f", str(shared))
    typed = write_spec(tmp_path, "typed", nodes=None, nodePool=None, gpuType="nvidia-t4", nodeCount=2)
    taint = [*kubectl, "taint", "node", NODES[0], "maintenance=true:NoSchedule"]
    subprocess.run(taint, check=True, capture_output=True)
    try:
        hog(kubectl, "t4-hog", "default", "gpu-high-end-0", 7)  # 1 of 8 GPUs left; the run needs 2 there
        try:
            refused = platform.cli("run", "start", str(typed), "--env", "dev", *values)
            after_refusal = pods(kubectl, "typed")
        finally:
            unhog(kubectl, "t4-hog", "default")
        started = platform.cli("run", "start", str(typed), "--env", "dev", *values, "--no-follow", *KEEP_RUNNING)
    finally:
        subprocess.run([*taint[:-1], "maintenance=true:NoSchedule-"], check=True, capture_output=True)
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 1, refused.stderr
    assert (
        "run typed refused before anything was applied: nodeCount 2 of GPU type nvidia-t4 (pools gpu-high-end, "
        f"gpu-optimized), but 1 of its 3 nodes can take their ranks now ({NODES[1]}); the others cannot: "
        "gpu-high-end-0: " in message
    ), message
    hogged = r"gpu-high-end-0: [01] free GPUs of 8, the run needs 2 there; held by [^;]*default/t4-hog"
    assert re.search(hogged, message)
    assert f"{NODES[0]}: tainted maintenance=true:NoSchedule, which the run does not tolerate" in message
    assert "spot-gpu-t4" not in message
    assert after_refusal == []

    chosen = " ".join(started.stderr.split())
    assert started.returncode == 0, started.stderr
    assert (
        "run typed: nodeCount 2 of GPU type nvidia-t4 (pools gpu-high-end, gpu-optimized): gpu-high-end-0 "
        f"(gpu-high-end), {NODES[1]} (gpu-optimized); passed over {NODES[0]}: tainted maintenance" in chosen
    ), chosen
    placed = {}
    for pod in pods(kubectl, "typed"):
        assert pod["status"]["phase"] == "Running"
        pool = pod["spec"]["nodeSelector"]["node-type"]
        placed.setdefault(pod["spec"]["nodeName"], set()).add(pool)
        assert {"key": "node-type", "operator": "Equal", "value": pool, "effect": "NoSchedule"} in pod["spec"][
            "tolerations"
        ]
    assert placed == {"gpu-high-end-0": {"gpu-high-end"}, NODES[1]: {"gpu-optimized"}}
    assert platform.cli("run", "stop", "typed", "--env", "dev").returncode == 0
    assert wait_gone(kubectl, "typed") == []


def test_ctrl_c_while_the_ranks_wait_for_the_start_removes_the_release_and_every_pod(
    platform, kubectl, tmp_path: Path
) -> None:
    """Two of four ranks start, the quota keeps the other two from being created, and the launch waits
    for them (a 300 s start timeout). Ctrl-C, as a terminal sends it (SIGINT to the command's process
    group), uninstalls the run; a second Ctrl-C while it does so is ignored (it used to cut the uninstall
    short). The command exits 130 once the release and every pod are gone, naming what it removed."""
    hog(kubectl, "quota-hog", NAMESPACE, "gpu-high-end-0", 6)
    try:
        spec = write_spec(tmp_path, "interrupted", startTimeoutSeconds=300)
        args = ["run", "start", str(spec), "--env", "dev", "-f", str(platform.values), *KEEP_RUNNING]
        proc = subprocess.Popen(
            cli_args(platform.kubeconfig, *args),
            cwd=REPO,
            env=cli_env(platform.runs),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(line for line in proc.stderr), daemon=True)
        reader.start()

        def wait_for(ready: Any) -> None:
            deadline = time.monotonic() + 120
            while not ready():
                assert proc.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "".join(lines)
                time.sleep(0.1)

        try:
            wait_for(
                lambda: (
                    any("installed run-interrupted" in line for line in lines)
                    and sum(p["status"].get("phase") == "Running" for p in pods(kubectl, "interrupted")) == 2
                )
            )
            os.killpg(proc.pid, signal.SIGINT)
            wait_for(lambda: any("removing run-interrupted" in line for line in lines))
            os.killpg(proc.pid, signal.SIGINT)  # impatient: while the release is being removed
            proc.wait(timeout=180)
            at_exit = pods(kubectl, "interrupted")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=10)
    finally:
        unhog(kubectl, "quota-hog", NAMESPACE)
    message = " ".join("".join(lines).split())
    assert proc.returncode == 130, message
    assert (
        "interrupted before every rank had started: removing run-interrupted (Ctrl-C again is ignored until it is "
        "gone) > uninstalled run-interrupted: Jobs interrupted-n0, interrupted-n1; pods interrupted-n"
    ) in message, message
    assert at_exit == []
    again = platform.cli("run", "follow", "interrupted", "--env", "dev")
    assert again.returncode != 0 and "run-interrupted is not installed" in " ".join(again.stderr.split())
    assert json.loads(platform.cli("run", "status", "interrupted", "--env", "dev", "-o", "json").stdout) == []
