"""Invariants of what each environment renders (the umbrella with values/<env>.yaml,
Argo's API available): the rules every workload, namespace and policy must keep."""

from typing import Any

import pytest
from chartkit import (
    PRIORITY_CLASSES,
    UMBRELLA,
    Manifest,
    Pod,
    environment_values,
    node_pools,
    pods,
    template,
    tolerations_for,
)

from deploy.paths import VALUES

POOL_LABEL = "kai-ml.io/node-pool"
# ServiceAccounts whose pods call the API server; every other pod runs without a token.
API_CLIENTS = {"coordinator", "workflow-executor"}
CLUSTER_SCOPED = {
    "Namespace",
    "PriorityClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
# Cluster-scoped but one environment's own (named after it), so environments sharing a cluster
# each have theirs: its Namespaces and the binding of the workload admission policy to them.
PER_ENVIRONMENT = {"Namespace", "ValidatingAdmissionPolicyBinding"}


@pytest.fixture(scope="module")
def workload_pods(manifests: list[Manifest]) -> list[Pod]:
    found = pods(manifests)
    assert {p.source.split("/")[0] for p in found} >= {"Deployment", "WorkflowTemplate"}
    return found


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def managed_namespaces(env: str) -> set[str]:
    names = environment_values(env)["global"]["namespaces"]
    return {names[key] for key in ("platform", "benchmarks", "training")}


def test_every_container_requests_and_limits_cpu_and_memory(workload_pods: list[Pod]) -> None:
    for pod in workload_pods:
        for container in pod.spec["containers"]:
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{pod.source}: {kind}"


def test_every_pod_has_the_restricted_security_context(workload_pods: list[Pod]) -> None:
    for pod in workload_pods:
        sc = pod.spec["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}, pod.source
        assert sc["runAsUser"] != 0 and sc.get("runAsGroup", 1) != 0, pod.source
        for container in pod.spec["containers"]:
            csc = container["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, pod.source
            assert csc["readOnlyRootFilesystem"] is True, pod.source
            assert csc["capabilities"] == {"drop": ["ALL"]}, pod.source
            assert not csc.get("privileged"), pod.source


def test_every_pod_has_a_platform_priority_class(workload_pods: list[Pod]) -> None:
    for pod in workload_pods:
        assert pod.spec.get("priorityClassName") in PRIORITY_CLASSES, pod.source


def test_every_pod_schedules_exactly_onto_its_pool(workload_pods: list[Pod], env: str) -> None:
    pools = node_pools(env)
    for pod in workload_pods:
        pool = pools[pod.labels[POOL_LABEL]]
        assert pod.spec.get("nodeSelector") == pool["labels"], pod.source
        key = lambda t: sorted(t.items())  # noqa: E731
        assert sorted(pod.spec.get("tolerations") or [], key=key) == sorted(tolerations_for(pool), key=key), pod.source
        assert "nodeAffinity" not in (pod.spec.get("affinity") or {}), pod.source
        assert "nodeName" not in pod.spec, pod.source


def test_only_api_clients_get_a_token(workload_pods: list[Pod]) -> None:
    for pod in workload_pods:
        if pod.source.startswith("WorkflowTemplate/"):
            assert pod.spec["serviceAccountName"] in API_CLIENTS, pod.source
            continue
        expected = pod.spec["serviceAccountName"] in API_CLIENTS
        assert pod.spec["automountServiceAccountToken"] is expected, pod.source


def test_objects_live_in_the_environment_namespaces(manifests: list[Manifest], env: str) -> None:
    for m in manifests:
        if m["kind"] not in CLUSTER_SCOPED:
            assert m["metadata"].get("namespace") in managed_namespaces(env), f"{m['kind']}/{m['metadata']['name']}"


def test_the_umbrella_renders_no_shared_cluster_scoped_objects_by_default(manifests: list[Manifest]) -> None:
    assert not [m for m in manifests if m["kind"] in CLUSTER_SCOPED - PER_ENVIRONMENT]


def test_namespaces_enforce_restricted_pod_security(manifests: list[Manifest], env: str) -> None:
    namespaces = of_kind(manifests, "Namespace")
    assert {n["metadata"]["name"] for n in namespaces} == managed_namespaces(env)
    for ns in namespaces:
        labels = ns["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", ns["metadata"]["name"]


def test_every_namespace_denies_all_traffic_by_default(manifests: list[Manifest], env: str) -> None:
    denied = {
        p["metadata"]["namespace"]
        for p in of_kind(manifests, "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    }
    assert denied == managed_namespaces(env)


def test_every_namespace_allows_dns(manifests: list[Manifest], env: str) -> None:
    dns = {
        p["metadata"]["namespace"]
        for p in of_kind(manifests, "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and any({"port": 53, "protocol": "UDP"} in rule["ports"] for rule in p["spec"].get("egress", []))
    }
    assert dns == managed_namespaces(env)


def test_network_policies_select_pods_that_exist(manifests: list[Manifest], workload_pods: list[Pod]) -> None:
    """A label typo in a flow would silently allow nothing: every selector must match a pod."""

    def matches(namespace: str, selector: dict[str, Any]) -> bool:
        wanted = selector.get("matchLabels", {}).items()
        return any(p.namespace == namespace and wanted <= p.labels.items() for p in workload_pods)

    for policy in of_kind(manifests, "NetworkPolicy"):
        ns, spec = policy["metadata"]["namespace"], policy["spec"]
        if spec["podSelector"]:
            assert matches(ns, spec["podSelector"]), policy["metadata"]["name"]
        for rule in spec.get("ingress", []) + spec.get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                peer_ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                if peer_ns in {p.namespace for p in workload_pods} and peer.get("podSelector"):
                    assert matches(peer_ns, peer["podSelector"]), policy["metadata"]["name"]


def test_api_server_egress_is_by_address_on_443_and_6443(manifests: list[Manifest]) -> None:
    policies = [p for p in of_kind(manifests, "NetworkPolicy") if p["metadata"]["name"].endswith("-to-api-server")]
    assert {p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in policies} == {
        "coordinator",
        "workflows",
    }
    for policy in policies:
        (rule,) = policy["spec"]["egress"]
        assert all(set(peer) == {"ipBlock"} for peer in rule["to"])
        assert {p["port"] for p in rule["ports"]} == {443, 6443}


def test_quotas_cover_every_namespace_and_count_gpus(manifests: list[Manifest], env: str) -> None:
    quotas = [q for q in of_kind(manifests, "ResourceQuota") if "scopeSelector" not in q["spec"]]
    assert {q["metadata"]["namespace"] for q in quotas} == managed_namespaces(env)
    for quota in quotas:
        hard = quota["spec"]["hard"]
        assert {
            "pods",
            "requests.cpu",
            "limits.cpu",
            "requests.memory",
            "limits.memory",
            "requests.nvidia.com/gpu",
        } <= set(hard), quota["metadata"]["namespace"]


def test_services_select_pods(manifests: list[Manifest], workload_pods: list[Pod]) -> None:
    for svc in of_kind(manifests, "Service"):
        selector = svc["spec"]["selector"].items()
        assert any(p.namespace == svc["metadata"]["namespace"] and selector <= p.labels.items() for p in workload_pods)


def test_images_follow_the_global_registry_and_tag(render, env: str) -> None:
    registry, tag = "registry.example.com/kai", "v9.9.9"
    rendered = render(env, "--set", f"global.image.registry={registry}", "--set", f"global.image.tag={tag}")
    for pod in pods(rendered):
        for container in pod.spec["containers"]:
            image = container["image"]
            assert image.startswith(f"{registry}/"), pod.source
            # Redis is the one third-party image: its tag is pinned in the cache chart, and
            # where an environment pins its digest, that wins.
            if pod.labels["app.kubernetes.io/name"] == "cache":
                pinned = environment_values(env).get("cache", {}).get("image", {})
                assert image == f"{registry}/redis" + (f"@{pinned['digest']}" if pinned.get("digest") else ":7.4")
            else:
                assert image.endswith(f":{tag}"), image


def test_workflow_templates_need_argo_or_force(helm: str) -> None:
    def workflow_templates(*args: str) -> list[str]:
        rendered = template(helm, UMBRELLA, "-f", str(VALUES / "dev.yaml"), *args)
        return [m["metadata"]["name"] for m in rendered if m["kind"] == "WorkflowTemplate"]

    assert workflow_templates() == []
    assert workflow_templates("--set", "workflows.force=true") == ["3d-reconstruction"]


def test_reconstruction_pipeline_shape(manifests: list[Manifest]) -> None:
    (template,) = of_kind(manifests, "WorkflowTemplate")
    steps = {t["name"]: t for t in template["spec"]["templates"]}
    stages = [[s["name"] for s in stage] for stage in steps[template["spec"]["entrypoint"]]["steps"]]
    assert stages == [
        ["assess-quality"],
        ["low-quality", "medium-quality", "high-quality"],
        ["format-conversion"],
        ["finalize"],
    ]
    branch_whens = [s["when"] for s in steps["reconstruct"]["steps"][1]]
    assert branch_whens == [f"{{{{steps.assess-quality.outputs.result}}}} == {q}" for q in ("low", "medium", "high")]
    assert all(name in steps for stage in stages for name in stage)
