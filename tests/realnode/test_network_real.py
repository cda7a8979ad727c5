"""Services and NetworkPolicy on the real node, for real: kube-proxy (iptables mode, in the node's own
network namespace) takes a pod to another through a ClusterIP Service found by name, and kube-router's
policy controller holds the platform's default-deny policies: a pod in the benchmarks namespace
resolves names but reaches neither the API server nor another namespace, while the same probe in a
namespace without policies reaches all three (so the test fails when nothing enforces)."""

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from realnode_env import TAG, RealCluster, real_pod

from deploy.cluster.realnode import RealNode

pytestmark = pytest.mark.realnode

TARGET = "np-target"  # the server's namespace (no policy)
OPEN = "np-open"  # a namespace without policies: the control
BENCHMARKS = "benchmarks-dev"  # the dev platform's, with its default-deny and allow-DNS policies
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}

# TCP reachability of each target, and whether the web Service's name resolves (DNS), as JSON.
PROBE = """
import json, os, socket, sys
def tcp(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return "open"
    except OSError as err:
        return type(err).__name__
try:
    dns = socket.gethostbyname(sys.argv[1])
except OSError as err:
    dns = type(err).__name__
print(json.dumps({
    "dns": dns,
    "web-service": tcp(sys.argv[1], 80),
    "web-pod": tcp(sys.argv[2], 8080),
    "api-service": tcp("kubernetes.default.svc", 443),
    "api-node": tcp(sys.argv[3], sys.argv[4]),
}))
"""

CLIENT = """
import socket, sys, time, urllib.request
for _ in range(30):
    try:
        body = urllib.request.urlopen(f"http://{sys.argv[1]}/hostname", timeout=2).read().decode().strip()
        print(socket.gethostbyname(sys.argv[1]), body)
        break
    except OSError:
        time.sleep(1)
else:
    raise SystemExit("the Service never answered")
"""


def _image(real_cluster: RealCluster) -> str:
    return f"{real_cluster.registry}/kai-ml/benchmark-runner:{TAG}"


def _apply(real_cluster: RealCluster, folder: Path, docs: list[dict[str, Any]]) -> None:
    manifest = folder / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    real_cluster.kubectl("apply", "-f", str(manifest))


@pytest.fixture(scope="module")
def web(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A web server pod (its /hostname says `web`) behind the ClusterIP Service `web` in np-target."""
    server = real_pod("web", TARGET, _image(real_cluster), ["python", "-m", "http.server", "8080", "-d", "/etc"],
                      {"app": "web"}, resources=RESOURCES)  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": TARGET},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in (TARGET, OPEN)]
    _apply(real_cluster, tmp_path_factory.mktemp("web"), [*namespaces, service, server])
    real_cluster.kubectl("wait", "-n", TARGET, "pod/web", "--for=condition=Ready", "--timeout=120s", timeout=150)
    yield {
        "service": f"web.{TARGET}",
        "service_ip": real_cluster.kubectl("get", "-n", TARGET, "service/web", "-o", "jsonpath={.spec.clusterIP}"),
        "pod_ip": real_cluster.kubectl("get", "-n", TARGET, "pod/web", "-o", "jsonpath={.status.podIP}"),
    }
    for namespace in (TARGET, OPEN):
        real_cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_a_pod_reaches_another_pod_through_a_clusterip_service_by_name(
    real_cluster: RealCluster, web: dict[str, str], tmp_path: Path
) -> None:
    client = real_pod("client", OPEN, _image(real_cluster), ["python", "-c", CLIENT, web["service"]],
                      resources=RESOURCES)  # fmt: skip
    _apply(real_cluster, tmp_path, [client])
    real_cluster.kubectl("wait", "-n", OPEN, "pod/client", "--for=jsonpath={.status.phase}=Succeeded",
                         "--timeout=120s", timeout=150)  # fmt: skip
    resolved, body = real_cluster.kubectl("logs", "-n", OPEN, "client").split()
    # The name is the Service's virtual address, not the pod's: kube-proxy carried the connection.
    assert resolved == web["service_ip"] != web["pod_ip"]
    assert body == "web"


def _probe(real_cluster: RealCluster, namespace: str, web: dict[str, str], folder: Path) -> dict[str, str]:
    """Start an idle pod in `namespace`, wait until the policy engine has taken it in (its address in
    the engine's chains inside the node's namespace), then run the probe in it."""
    pod = real_pod("probe", namespace, _image(real_cluster), ["sleep", "600"],
                   {"kai-ml.io/benchmark": "np-probe"}, resources=RESOURCES)  # fmt: skip
    _apply(real_cluster, folder, [pod])
    real_cluster.kubectl("wait", "-n", namespace, "pod/probe", "--for=condition=Ready", "--timeout=120s", timeout=150)
    ip = real_cluster.kubectl("get", "-n", namespace, "pod/probe", "-o", "jsonpath={.status.podIP}")
    node = RealNode(real_cluster.local.name)
    deadline = time.monotonic() + 60
    while f"-s {ip}/32" not in _node_rules(node) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert f"-s {ip}/32" in _node_rules(node), f"kube-router never took the pod {ip} into its chains"
    api_host, api_port = node.net.host_ip, real_cluster.kubeconfig_server_port()
    try:
        out = real_cluster.kubectl("exec", "-n", namespace, "probe", "--", "python", "-c", PROBE,
                                   web["service"], web["pod_ip"], api_host, api_port, timeout=120)  # fmt: skip
    finally:
        real_cluster.kubectl("delete", "-n", namespace, "pod/probe", "--wait=false")
    return json.loads(out)


def _node_rules(node: RealNode) -> str:
    return subprocess.run([*node.net.enter(), "iptables-save"], capture_output=True, text=True, check=True).stdout


def test_network_policy_holds_a_benchmark_pod_to_dns(
    real_cluster: RealCluster, web: dict[str, str], tmp_path: Path
) -> None:
    open_ = _probe(real_cluster, OPEN, web, tmp_path)
    # Without a policy everything answers: what the benchmark pod is denied below is reachable.
    assert open_ == {"dns": web["service_ip"], "web-service": "open", "web-pod": "open", "api-service": "open",
                     "api-node": "open"}, open_  # fmt: skip

    policies = json.loads(real_cluster.kubectl("get", "networkpolicy", "-n", BENCHMARKS, "-o", "json"))["items"]
    assert {"default-deny", "allow-dns"} <= {p["metadata"]["name"] for p in policies}
    denied = _probe(real_cluster, BENCHMARKS, web, tmp_path)
    # DNS (to the kube-dns pods, as the policy names them) resolves; nothing else leaves the namespace.
    assert denied["dns"] == web["service_ip"], denied
    for target in ("web-service", "web-pod", "api-service", "api-node"):
        assert denied[target] != "open", denied
