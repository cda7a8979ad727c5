"""The cache chart (charts/cache) in a real container on the real node: Redis from the image built
here out of Debian packages (deploy/images/redis.yaml), its password from a Secret mounted as a file.
The chart's readiness probe (an authenticated PING) makes the pod Ready, and a second real pod is
refused without the password (NOAUTH), with a wrong one (WRONGPASS), and answered with the right one,
through the chart's Service by name (kube-proxy on the real node)."""

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helmcli import helm
from realnode_env import POOL, RealCluster, real_pod

from deploy import tools
from deploy.images import packaged
from deploy.paths import CHARTS
from deploy.platform import charts
from deploy.platform.values import load_environment

pytestmark = pytest.mark.realnode

NAMESPACE = "cache-real"
RELEASE = "cache-real"
SECRET_DIR = "/run/secrets/cache"

# Run in the Redis image: one line per case, then what Redis answered (on one line). The password is
# read from the mounted file into REDISCLI_AUTH (redis-cli sends AUTH first), never onto a command line.
CLIENT = f"""
set -u
ping() {{ redis-cli -h "$CACHE_HOST" PING 2>&1 | tr '\\n' ' '; }}
echo "unauthenticated: $(ping)"
echo "wrong password: $(REDISCLI_AUTH=guess ping)"
echo "authenticated: $(REDISCLI_AUTH="$(cat {SECRET_DIR}/password)" ping)"
"""


def _client_pod(image: str, cache_host: str) -> dict[str, object]:
    """A pod on the real node with the cache's Secret mounted as the chart mounts it."""
    pod = real_pod(
        "cache-client",
        NAMESPACE,
        image,
        ["sh", "-c", CLIENT],
        env=[{"name": "CACHE_HOST", "value": cache_host}],
        volumeMounts=[{"name": "auth", "mountPath": SECRET_DIR, "readOnly": True}],
    )
    pod["spec"]["volumes"] = [{"name": "auth", "secret": {"secretName": "cache-auth", "defaultMode": 0o444}}]
    return pod


@pytest.fixture
def cache_namespace(real_cluster: RealCluster, tmp_path: Path) -> Iterator[str]:
    """The namespace (Pod Security `restricted` enforced) with the cache's password Secret; the
    password goes to the API server in a file, never on a command line. Removed afterwards."""
    password = secrets.token_urlsafe(24)
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cache-auth", "namespace": NAMESPACE},
        "stringData": {"password": password},
    }
    manifest = tmp_path / "namespace.yaml"
    manifest.write_text(yaml.safe_dump_all([namespace, secret]))
    manifest.chmod(0o600)
    real_cluster.kubectl("apply", "-f", str(manifest))
    manifest.unlink()
    try:
        yield password
    finally:
        subprocess.run(
            [str(tools.tool("helm")), "--kubeconfig", str(real_cluster.kubeconfig), "uninstall", RELEASE,
             "-n", NAMESPACE, "--wait", "--timeout", "60s"],
            capture_output=True, timeout=120,
        )  # fmt: skip
        real_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", timeout=150)


def test_the_cache_enforces_its_password_in_a_real_container(
    real_cluster: RealCluster, cache_namespace: str, tmp_path: Path
) -> None:
    password = cache_namespace
    image = packaged.push_image(packaged.REDIS, real_cluster.registry)
    registry, reference = image.split("/", 1)
    repository, tag = reference.rsplit(":", 1)
    charts.build_dependencies(tools.tool("helm"), [CHARTS / "platform-lib", CHARTS / "cache"])
    real_pool = load_environment("dev")["global"]["nodePools"][POOL]
    values = tmp_path / "cache-values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {"registry": registry, "repository": repository, "tag": tag},
                "nodePool": POOL,
                "auth": {"required": True},
                # The real pool's definition (labels and taint): dev's, as for the sweeps.
                "global": {"nodePools": {POOL: real_pool}, "cacheAuth": {"existingSecret": "cache-auth"}},
            }
        )
    )
    helm(real_cluster.kubeconfig, "install", RELEASE, str(CHARTS / "cache"), "-n", NAMESPACE, "-f", str(values),
         "--wait", "--timeout", "180s")  # fmt: skip

    selector = f"app.kubernetes.io/instance={RELEASE}"
    # Ready only through the chart's exec probe: redis-cli with the mounted password answering PONG.
    real_cluster.kubectl("wait", "-n", NAMESPACE, "pod", "-l", selector, "--for=condition=Ready",
             "--timeout=120s", timeout=150)  # fmt: skip
    (pod,) = json.loads(real_cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json"))["items"]
    assert pod["spec"]["nodeName"] == real_cluster.node
    (container,) = pod["spec"]["containers"]
    assert container["image"] == image
    assert "REDISCLI_AUTH" in container["readinessProbe"]["exec"]["command"][-1]
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and status["containerID"].startswith("containerd://")

    manifest = tmp_path / "client.yaml"
    service = real_cluster.kubectl("get", "services", "-n", NAMESPACE, "-l", selector, "-o",
                                   "jsonpath={.items[0].metadata.name}")  # fmt: skip
    manifest.write_text(yaml.safe_dump(_client_pod(image, service)))
    real_cluster.kubectl("apply", "-f", str(manifest))
    real_cluster.kubectl("wait", "-n", NAMESPACE, "pod/cache-client", "--for=jsonpath={.status.phase}=Succeeded",
             "--timeout=120s", timeout=150)  # fmt: skip
    logs = real_cluster.kubectl("logs", "-n", NAMESPACE, "cache-client")
    leaked = password in logs
    assert not leaked, "the password is in the client's log"
    answers = {case: answer.strip() for case, answer in (line.split(": ", 1) for line in logs.strip().splitlines())}
    assert answers["unauthenticated"] == "NOAUTH Authentication required.", answers
    assert "WRONGPASS" in answers["wrong password"] and "PONG" not in answers["wrong password"], answers
    assert answers["authenticated"] == "PONG", answers
