"""Real pods on the local cluster's real node: the runner image built here, pulled by a real
kubelet from the cluster's registry, a sweep whose results come from real container logs, a
config that fails in its container, the restricted security context as seen from inside, and a
`cluster down` that leaves nothing behind (no process, mount, namespace, route or iptables rule)."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from realnode_env import POOL, TAG, RealCluster, real_pod

from deploy.cluster import procs
from deploy.cluster.nodenet import NETNS_DIR
from deploy.cluster.realnode import REAL_LABEL, RealNode

pytestmark = pytest.mark.realnode


def _sweep(folder: Path, name: str, top: dict[str, Any] | None = None, **base: object) -> Path:
    sweep: dict[str, Any] = {
        "kind": "model-latency",
        "name": name,
        "base": {"model": "mlp", "inputShape": [64], "warmup": 1, "iterations": 5, "nodePool": POOL, **base},
        "matrix": {"batchSize": [1, 2, 4]},
        "priorityClassName": "medium-priority-batch",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "parallelism": 3,
        "ttlSecondsAfterFinished": 600,
        **(top or {}),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_the_real_node_is_ready_with_its_pool_labels_and_taints(real_cluster: RealCluster) -> None:
    node = json.loads(real_cluster.kubectl("get", "node", real_cluster.node, "-o", "json"))
    assert node["metadata"]["labels"][REAL_LABEL] == "true"
    assert {"key": REAL_LABEL, "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]
    # kwok leaves it alone: no kwok annotation, and its status comes from a kubelet.
    assert "kwok.x-k8s.io/node" not in (node["metadata"].get("annotations") or {})
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"


def test_a_sweep_runs_in_real_containers_and_reports_from_their_logs(real_cluster: RealCluster, tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, "real-ok")
    done = real_cluster.cli("bench", "run", str(sweep), *real_cluster.image_flags(), "--timeout", "5m")
    assert done.returncode == 0, done.stderr
    assert "3 of 3 configs have a result" in done.stderr

    listed = real_cluster.offline("bench", "results", "real-ok", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["config"] for r in rows) == [0, 1, 2]
    records = [
        json.loads(line) for line in (real_cluster.runs / "bench-real-ok" / "results.jsonl").read_text().splitlines()
    ]
    for record in records:
        assert record["node"] == real_cluster.node
        device = record["result"]["device"]
        assert device["node"] == real_cluster.node
        assert device["type"] == "cpu" and device["torch"].startswith("1.13")
        # The restricted profile, seen from inside the running container.
        assert device["uid"] == 65532
        assert device["root_read_only"] is True
    pods = json.loads(real_cluster.kubectl("get", "pods", "-A", "-l", "kai-ml.io/benchmark=real-ok", "-o", "json"))[
        "items"
    ]
    assert pods
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://")
        assert status["image"].startswith(real_cluster.registry + "/kai-ml/benchmark-runner:")
        assert status["state"]["terminated"]["exitCode"] == 0


MODELS = {"models": {"claimName": "models"}}
BENCHMARKS = "benchmarks-dev"
WRITE_MODEL = "import torch; torch.jit.script(torch.nn.Linear(64, 8)).save('/models/linear.pt')"


@pytest.fixture(scope="module")
def model_volume(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The claim `models` in the benchmarks namespace, bound to a directory of this machine (a hostPath
    volume), with a TorchScript file written into it by a pod of the runner image."""
    folder = tmp_path_factory.mktemp("models")
    os.chmod(folder, 0o777)  # the pods run as uid 65532
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "realnode-models"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": str(folder)},
            "storageClassName": "",
            "claimRef": {"namespace": BENCHMARKS, "name": "models"},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": BENCHMARKS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": "realnode-models",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    image = f"{real_cluster.registry}/kai-ml/benchmark-runner:{TAG}"
    writer = real_pod("model-writer", BENCHMARKS, image, ["python", "-c", WRITE_MODEL],
                      volumeMounts=[{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}],
                      env=[{"name": "HOME", "value": "/tmp"}])  # fmt: skip
    writer["spec"]["volumes"] = [
        {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    manifest = folder.parent / "models.yaml"
    manifest.write_text(yaml.safe_dump_all([volume, claim, writer]))
    real_cluster.kubectl("apply", "-f", str(manifest))
    real_cluster.kubectl("wait", "-n", BENCHMARKS, "pod/model-writer", "--for=jsonpath={.status.phase}=Succeeded",
                         "--timeout=180s", timeout=200)  # fmt: skip
    assert (folder / "linear.pt").stat().st_size > 0
    return folder  # the cluster goes with the session (and test_cluster_down_... takes it down first)


def test_a_torchscript_model_comes_from_the_model_volume(
    real_cluster: RealCluster, model_volume: Path, tmp_path: Path
) -> None:
    sweep = _sweep(tmp_path, "real-model", MODELS, model="torchscript", modelPath="/models/linear.pt")
    done = real_cluster.cli("bench", "run", str(sweep), *real_cluster.image_flags(), "--timeout", "5m")
    assert done.returncode == 0, done.stderr
    assert "3 of 3 configs have a result" in done.stderr
    records = [
        json.loads(line) for line in (real_cluster.runs / "bench-real-model" / "results.jsonl").read_text().splitlines()
    ]
    assert {r["result"]["config"]["modelPath"] for r in records} == {"/models/linear.pt"}
    assert all(r["result"]["status"] == "ok" and r["node"] == real_cluster.node for r in records)


def test_a_config_that_fails_in_its_container_says_why(
    real_cluster: RealCluster, model_volume: Path, tmp_path: Path
) -> None:
    # A TorchScript file that is not in the model volume: the runner's config error (exit 3).
    sweep = _sweep(tmp_path, "real-bad", MODELS, model="torchscript", modelPath="/models/missing.pt")
    done = real_cluster.cli("bench", "run", str(sweep), *real_cluster.image_flags(), "--timeout", "5m")
    assert done.returncode == 1, done.stderr
    assert "missing.pt does not exist" in done.stderr
    status = real_cluster.cli("bench", "status", "real-bad", "--env", "dev")
    assert status.returncode == 0, status.stderr
    assert "exit 3" in status.stdout + status.stderr
    assert "missing.pt does not exist" in status.stdout + status.stderr
    # Stored with the run: `bench results` lists each failed config with its reason, pods or not.
    listed = real_cluster.offline("bench", "results", "real-bad", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["config"] for r in rows) == [0, 1, 2]
    assert all(r["failure"].startswith("exit 3") and "missing.pt does not exist" in r["failure"] for r in rows)


def test_a_config_past_its_deadline_is_killed_on_the_node(real_cluster: RealCluster, tmp_path: Path) -> None:
    """configDeadline is the pods' activeDeadlineSeconds: the real kubelet kills the container."""
    top = {"configDeadline": "5s", "backoffLimitPerIndex": 0, "matrix": {"batchSize": [1]}}
    sweep = _sweep(tmp_path, "real-late", top, iterations=100_000_000)
    done = real_cluster.cli("bench", "run", str(sweep), *real_cluster.image_flags(), "--timeout", "5m")
    assert done.returncode == 1, done.stderr
    assert "config 0: deadline exceeded: ran longer than its deadline (5 s)" in done.stderr, done.stderr
    status = real_cluster.cli("bench", "status", "real-late", "--env", "dev", "-o", "json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)
    assert row["failures"]["0"].startswith("deadline exceeded: ran longer than its deadline (5 s)")


CLIENT = """
import socket, time, urllib.request
for _ in range(60):
    try:
        ip = socket.gethostbyname("ranks")
        status = urllib.request.urlopen("http://ranks:8080/", timeout=2).status
        print("resolved", ip, "status", status)
        break
    except OSError:
        time.sleep(1)
else:
    raise SystemExit("ranks never resolved or answered")
"""


def test_pods_resolve_a_headless_service_by_name_and_reach_its_pod(real_cluster: RealCluster, tmp_path: Path) -> None:
    # What the ranks of a multi-node job need: cluster DNS for a headless Service, pod-to-pod traffic.
    image = f"{real_cluster.registry}/kai-ml/benchmark-runner:{TAG}"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ranks", "namespace": "dns-test"},
        "spec": {"clusterIP": "None", "selector": {"app": "rank"}, "ports": [{"port": 8080}]},
    }
    server = real_pod(
        "rank-0", "dns-test", image, ["python", "-m", "http.server", "8080", "-d", "/tmp"], {"app": "rank"}
    )
    client = real_pod("client", "dns-test", image, ["python", "-c", CLIENT])
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dns-test"}}
    manifest = tmp_path / "dns.yaml"
    manifest.write_text(yaml.safe_dump_all([namespace, service, server, client]))
    real_cluster.kubectl("apply", "-f", str(manifest))
    real_cluster.kubectl("wait", "-n", "dns-test", "pod/client", "--for=jsonpath={.status.phase}=Succeeded",
             "--timeout=120s")  # fmt: skip
    rank_ip = real_cluster.kubectl("get", "-n", "dns-test", "pod/rank-0", "-o", "jsonpath={.status.podIP}")
    assert real_cluster.kubectl("logs", "-n", "dns-test", "client").strip() == f"resolved {rank_ip} status 200"


def test_cluster_down_leaves_no_process_mount_netns_or_cgroup(real_cluster: RealCluster) -> None:
    node = RealNode(real_cluster.local.name)
    pids = list(node.processes().values())
    assert pids, "the real node runs before it is taken down"
    # Every rule of the node (kubelet, kube-proxy, policy engine) lives in its own network namespace.
    inside = subprocess.run([*node.net.enter(), "iptables-save"], capture_output=True, text=True, check=True).stdout
    assert "KUBE-SERVICES" in inside and "KUBE-ROUTER-FORWARD" in inside
    # None on the host: no Service or policy chain, nothing that names the node's addresses.
    host = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert "KUBE-SERVICES" not in host and "KUBE-ROUTER" not in host and node.subnet_prefix not in host
    real_cluster.local.down()
    assert not any(procs.alive(p) for p in pids)
    assert not procs.with_arg(str(node.socket)), "a containerd shim of the node survived"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.dir) not in mounts and str(node.run_dir) not in mounts
    assert not Path(f"/sys/class/net/{node.net.host_if}").exists()
    assert not (NETNS_DIR / node.net.netns).exists()
    assert not node._cgroup_dirs()
    netns = subprocess.run(["ip", "-all", "netns", "exec", "ip", "-4", "-o", "addr"], capture_output=True, text=True)
    assert node.subnet_prefix not in netns.stdout
    assert node.subnet_prefix not in subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    assert not node.dir.exists() and not node.run_dir.exists()
