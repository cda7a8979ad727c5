"""Every environment installed for real with plain `helm` (no deploy tool), side by side on one
cluster as dev and staging would share one: admitted by PodSecurity `restricted`, scheduled onto
the nodes of each workload's pool, RBAC exactly as designed, quotas enforced."""

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helmcli import helm
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploy import tools
from deploy.cluster.controlplane import LocalCluster
from deploy.paths import CHARTS, VALUES
from deploy.platform import charts
from deploy.platform.values import environments, load_environment

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def installed(cluster: LocalCluster, kubectl: list[str], argo_crd: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """Install the cluster-scoped chart once, then the umbrella once per environment."""
    charts.build_dependencies(tools.tool("helm"), [CHARTS / "platform-cluster", CHARTS / "platform"])
    # argo_crd: the workflows chart renders its WorkflowTemplate, as on a cluster with Argo.
    helm(
        cluster.kubeconfig,
        "upgrade",
        "--install",
        "platform-cluster",
        str(CHARTS / "platform-cluster"),
        "--wait",
        "--timeout",
        "2m",
    )
    for env in environments():
        helm(
            cluster.kubeconfig,
            "upgrade",
            "--install",
            f"platform-{env}",
            str(CHARTS / "platform"),
            "-f",
            str(VALUES / f"{env}.yaml"),
            "--wait",
            "--timeout",
            "3m",
        )
    yield {env: load_environment(env) for env in environments()}
    # Leave the shared session cluster as we found it: other modules own these names too.
    for release in [f"platform-{env}" for env in environments()] + ["platform-cluster"]:
        helm(cluster.kubeconfig, "uninstall", release, "--wait", "--timeout", "2m")
    # The aggregated ClusterRoles are kept on uninstall (see platform-cluster's clusterroles.yaml).
    selector = "app.kubernetes.io/instance=platform-cluster"
    subprocess.run([*kubectl, "delete", "clusterrole", "-l", selector, "--wait"], check=True, capture_output=True)


@pytest.fixture(scope="module")
def core(cluster: LocalCluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client())


def env_namespaces(values: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in values["global"]["namespaces"].items() if k != "monitoring"}


@pytest.mark.parametrize("env", environments())
def test_namespaces_enforce_pod_security_restricted(installed: dict, core: client.CoreV1Api, env: str) -> None:
    for ns in env_namespaces(installed[env]).values():
        labels = core.read_namespace(ns).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", ns


@pytest.mark.parametrize("env", environments())
def test_every_pod_is_admitted_running_and_on_its_pool(installed: dict, core: client.CoreV1Api, env: str) -> None:
    values = installed[env]
    pools = values["global"]["nodePools"]
    platform_ns = values["global"]["namespaces"]["platform"]
    pods = core.list_namespaced_pod(platform_ns).items
    assert pods, f"nothing runs in {platform_ns}"
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for pod in pods:
        assert pod.status.phase == "Running", f"{pod.metadata.name}: {pod.status.phase}"
        node_labels = nodes[pod.spec.node_name].metadata.labels
        selector = pod.spec.node_selector or {}
        pool = next((name for name, p in pools.items() if p["labels"] == selector), None)
        assert pool, f"{pod.metadata.name} selects no pool: {selector}"
        assert selector.items() <= node_labels.items(), f"{pod.metadata.name} is on {pod.spec.node_name}"
    # Every ReplicaSet got all its pods: PodSecurity refused none of them.
    apps = client.AppsV1Api(core.api_client)
    for rs in apps.list_namespaced_replica_set(platform_ns).items:
        assert (rs.status.ready_replicas or 0) == rs.spec.replicas, rs.metadata.name


def can(api: client.ApiClient, user: str, ns: str, verb: str, resource: str, group: str = "") -> bool:
    resource, _, sub = resource.partition("/")
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
                "resourceAttributes": {
                    "namespace": ns,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": sub,
                },
            }
        }
    )
    return review.status.allowed


# (service account, its namespace key, verb, resource, API group, namespace key asked about, allowed)
RBAC_TABLE = [
    ("benchmark-launcher", "benchmarks", "create", "jobs", "batch", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "delete", "jobs", "batch", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "watch", "jobs", "batch", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "create", "configmaps", "", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "get", "pods/log", "", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "watch", "pods", "", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "create", "pods", "", "benchmarks", False),
    ("benchmark-launcher", "benchmarks", "delete", "pods", "", "benchmarks", False),
    ("benchmark-launcher", "benchmarks", "get", "secrets", "", "benchmarks", False),
    ("benchmark-launcher", "benchmarks", "update", "configmaps", "", "benchmarks", True),
    ("benchmark-launcher", "benchmarks", "create", "networkpolicies", "networking.k8s.io", "benchmarks", False),
    ("benchmark-launcher", "benchmarks", "create", "jobs", "batch", "training", False),
    ("benchmark-launcher", "benchmarks", "create", "jobs", "batch", "platform", False),
    ("benchmark-runner", "benchmarks", "get", "pods", "", "benchmarks", False),
    ("benchmark-runner", "benchmarks", "get", "configmaps", "", "benchmarks", False),
    ("training-job-creator", "training", "create", "jobs", "batch", "training", True),
    ("training-job-creator", "training", "patch", "jobs", "batch", "training", True),
    ("training-job-creator", "training", "get", "pods/log", "", "training", True),
    ("training-job-creator", "training", "watch", "events", "", "training", True),
    ("training-job-creator", "training", "create", "configmaps", "", "training", True),
    ("training-job-creator", "training", "update", "configmaps", "", "training", True),
    ("training-job-creator", "training", "create", "secrets", "", "training", False),
    ("training-job-creator", "training", "get", "secrets", "", "training", False),  # only r2-credentials, by name
    ("training-job-creator", "training", "list", "secrets", "", "training", False),
    ("training-job-creator", "training", "create", "pods/exec", "", "training", False),
    ("training-job-creator", "training", "delete", "pods", "", "training", False),
    ("training-job-creator", "training", "get", "pods", "", "training", False),
    ("training-job-creator", "training", "create", "networkpolicies", "networking.k8s.io", "training", False),
    ("training-job-creator", "training", "create", "jobs", "batch", "benchmarks", False),
    ("coordinator", "platform", "create", "workflows", "argoproj.io", "platform", True),
    ("coordinator", "platform", "watch", "workflowtemplates", "argoproj.io", "platform", True),
    ("coordinator", "platform", "update", "workflows/finalizers", "argoproj.io", "platform", True),
    ("coordinator", "platform", "create", "workflows", "argoproj.io", "benchmarks", False),
    ("coordinator", "platform", "create", "pods", "", "platform", False),
    ("coordinator", "platform", "list", "secrets", "", "platform", False),
    ("workflow-executor", "platform", "create", "workflowtaskresults", "argoproj.io", "platform", True),
    ("workflow-executor", "platform", "get", "secrets", "", "platform", False),
]


@pytest.mark.parametrize("env", environments())
def test_rbac_can_cannot_table(installed: dict, cluster: LocalCluster, env: str) -> None:
    namespaces = env_namespaces(installed[env])
    api = cluster.api_client()
    wrong = []
    for sa, home, verb, resource, group, asked, expected in RBAC_TABLE:
        user = f"system:serviceaccount:{namespaces[home]}:{sa}"
        if can(api, user, namespaces[asked], verb, resource, group) != expected:
            wrong.append(f"{sa} {verb} {group}/{resource} in {namespaces[asked]}: expected {expected}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("env", environments())
def test_quota_is_enforced(installed: dict, core: client.CoreV1Api, env: str) -> None:
    ns = installed[env]["global"]["namespaces"]["benchmarks"]
    quota = core.list_namespaced_resource_quota(ns).items
    assert any("requests.nvidia.com/gpu" in q.spec.hard for q in quota)
    gpus = max(int(q.spec.hard.get("requests.nvidia.com/gpu", 0)) for q in quota)
    greedy = {
        "metadata": {"name": "greedy"},
        "spec": {
            "serviceAccountName": "benchmark-runner",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "resources": {
                        "requests": {"nvidia.com/gpu": str(gpus + 1)},
                        "limits": {"nvidia.com/gpu": str(gpus + 1)},
                    },
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, greedy)
    assert refused.value.status == 403
    assert "exceeded quota" in json.loads(refused.value.body)["message"]


@pytest.mark.parametrize("env", environments())
def test_a_privileged_pod_is_refused_in_every_namespace(installed: dict, core: client.CoreV1Api, env: str) -> None:
    for ns in env_namespaces(installed[env]).values():
        bad = {"metadata": {"name": "root"}, "spec": {"containers": [{"name": "x", "image": "busybox"}]}}
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(ns, bad)
        assert "violates PodSecurity" in json.loads(refused.value.body)["message"], ns


# These two come last: they wait for autoscalers and evict and unready pods of prod.


def prod_deployment_pods(installed: dict, core: client.CoreV1Api) -> dict[str, list[client.V1Pod]]:
    """prod's pods by Deployment, once every Deployment has its fewest replicas (an HPA scales
    up to its minimum a little after the install)."""
    ns = installed["prod"]["global"]["namespaces"]["platform"]
    apps = client.AppsV1Api(core.api_client)
    autoscalers = client.AutoscalingV2Api(core.api_client)
    minimum = {
        h.spec.scale_target_ref.name: h.spec.min_replicas
        for h in autoscalers.list_namespaced_horizontal_pod_autoscaler(ns).items
    }
    deadline = time.monotonic() + 90
    while True:
        found, short = {}, []
        for d in apps.list_namespaced_deployment(ns).items:
            selector = ",".join(f"{k}={v}" for k, v in d.spec.selector.match_labels.items())
            running = [
                p
                for p in core.list_namespaced_pod(ns, label_selector=selector).items
                if p.spec.node_name and not p.metadata.deletion_timestamp
            ]
            found[d.metadata.name] = running
            if len(running) < minimum.get(d.metadata.name, d.spec.replicas):
                short.append(d.metadata.name)
        if not short:
            return found
        assert time.monotonic() < deadline, f"still below their fewest replicas: {short}"
        time.sleep(2)


def test_prod_replicas_are_spread_over_zones(installed: dict, core: client.CoreV1Api) -> None:
    """The scheduler, given the charts' zone spread, puts every multi-replica component of prod
    into more than one zone of the fake nodes (two zones per pool in prod), evenly."""
    zone_of = {n.metadata.name: n.metadata.labels["topology.kubernetes.io/zone"] for n in core.list_node().items}
    spread = {}
    for name, running in prod_deployment_pods(installed, core).items():
        if len(running) > 1:
            spread[name] = Counter(zone_of[p.spec.node_name] for p in running)
            # What the scheduler was given: the zone constraint, not only host anti-affinity.
            for pod in running:
                keys = [c.topology_key for c in pod.spec.topology_spread_constraints or []]
                assert "topology.kubernetes.io/zone" in keys, pod.metadata.name
    assert set(spread) == {
        f"platform-prod-{c}" for c in ("coordinator", "distributed-processing", "mobile-optimization", "wasm-compiler")
    }
    for name, zones in spread.items():
        assert len(zones) >= 2 and max(zones.values()) - min(zones.values()) <= 1, f"{name}: {dict(zones)}"


def set_ready(core: client.CoreV1Api, pod: client.V1Pod, ready: bool) -> None:
    """What a kubelet reports for a crash-looping container: the pod stays Running, not Ready."""
    status = "True" if ready else "False"
    conditions = [{"type": t, "status": status} for t in ("Ready", "ContainersReady")]
    core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": {"conditions": conditions}})


def evict(core: client.CoreV1Api, pod: client.V1Pod) -> None:
    meta = client.V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace)
    core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, client.V1Eviction(metadata=meta))


def test_an_unready_pod_is_evicted_past_a_spent_budget(installed: dict, core: client.CoreV1Api) -> None:
    """distributed-processing in prod: 3 replicas, minAvailable 2. With two of them not Ready
    the budget is spent: a Ready pod may not be evicted, but an unready one may (AlwaysAllow),
    so a crash-looping pod does not block a node drain."""
    name = "platform-prod-distributed-processing"
    ns = installed["prod"]["global"]["namespaces"]["platform"]
    healthy, *unready = prod_deployment_pods(installed, core)[name][:3]
    assert len(unready) == 2
    for pod in unready:
        set_ready(core, pod, False)
    policy = client.PolicyV1Api(core.api_client)
    deadline = time.monotonic() + 30
    while (status := policy.read_namespaced_pod_disruption_budget_status(name, ns).status).current_healthy != 1:
        assert time.monotonic() < deadline, f"the disruption controller never saw the unready pods: {status}"
        time.sleep(0.5)
    assert status.disruptions_allowed == 0
    with pytest.raises(ApiException) as refused:
        evict(core, healthy)
    assert refused.value.status == 429, refused.value.body
    evict(core, unready[0])
    try:
        assert core.read_namespaced_pod(unready[0].metadata.name, ns).metadata.deletion_timestamp
    except ApiException as gone:
        assert gone.status == 404
    set_ready(core, unready[1], True)
