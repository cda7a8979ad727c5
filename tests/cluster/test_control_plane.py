"""The local control plane is a real one: authentication, RBAC, admission (ResourceQuota,
PodSecurity), the scheduler with taints and GPU capacity, and the Job controller."""

import json
import time
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploy.cluster.controlplane import _versions
from deploy.paths import REPO

pytestmark = pytest.mark.cluster

RESTRICTED_CONTAINER = {
    "name": "main",
    "image": "busybox:1.36",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def api_message(err: ApiException) -> str:
    """The API server's human-readable reason, unescaped from the Status body."""
    return json.loads(err.body)["message"]


def pod(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [RESTRICTED_CONTAINER], **spec}}


def test_version_is_the_pinned_kubernetes(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version == _versions()["KUBERNETES_VERSION"]


def test_rbac_denies_what_the_role_does_not_grant(api: client.ApiClient, namespace: str) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    # A real bound token from the TokenRequest API, signed by the API server.
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    cfg = client.Configuration()
    cfg.host = api.configuration.host
    cfg.ssl_ca_cert = api.configuration.ssl_ca_cert
    cfg.verify_ssl = api.configuration.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    as_reader = client.CoreV1Api(client.ApiClient(cfg))

    assert as_reader.list_namespaced_pod(namespace).items == []
    with pytest.raises(ApiException) as denied:
        as_reader.list_namespaced_secret(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in api_message(denied.value)
    with pytest.raises(ApiException) as other_ns:
        as_reader.list_namespaced_pod("default")
    assert other_ns.value.status == 403


def test_resource_quota_refuses_a_pod_over_it(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "small"}, "spec": {"hard": {"requests.cpu": "1", "limits.cpu": "1"}}}
    )
    # The quota controller must have computed usage before admission enforces it.
    wait_for(lambda: core.read_namespaced_resource_quota("small", namespace).status.used is not None, "quota usage")
    big = pod("big")
    big["spec"]["containers"] = [
        {**RESTRICTED_CONTAINER, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}}
    ]
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, big)
    assert refused.value.status == 403
    assert "exceeded quota: small" in api_message(refused.value)


def test_pod_security_restricted_refuses_a_privileged_pod(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    privileged = pod("privileged")
    privileged["spec"]["containers"] = [{"name": "main", "image": "busybox", "securityContext": {"privileged": True}}]
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, privileged)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted' in api_message(refused.value)
    # ... while a pod that meets the profile is admitted.
    core.create_namespaced_pod(namespace, pod("compliant"))


def test_taints_keep_pods_without_the_toleration_off_a_pool(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    tainted = [n for n in core.list_node().items if n.spec.taints]
    assert tainted, "the dev node pools define no tainted pool"
    target = tainted[0]
    taint = target.spec.taints[0]
    selector = {"kubernetes.io/hostname": target.metadata.name}
    toleration = {"key": taint.key, "operator": "Equal", "value": taint.value, "effect": taint.effect}

    core.create_namespaced_pod(namespace, pod("without", nodeSelector=selector))
    core.create_namespaced_pod(namespace, pod("with", nodeSelector=selector, tolerations=[toleration]))

    def running(name: str) -> client.V1Pod | None:
        p = core.read_namespaced_pod(name, namespace)
        return p if p.status.phase == "Running" else None

    landed = wait_for(lambda: running("with"), "the tolerating pod to run")
    assert landed.spec.node_name == target.metadata.name
    events = wait_for(
        lambda: [
            e
            for e in core.list_namespaced_event(namespace).items
            if e.involved_object.name == "without" and e.reason == "FailedScheduling"
        ],
        "a FailedScheduling event",
    )
    assert "untolerated taint" in events[0].message
    assert core.read_namespaced_pod("without", namespace).spec.node_name is None


def test_gpu_requests_land_only_on_gpu_nodes(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    gpu_nodes = {n.metadata.name: n for n in core.list_node().items if "nvidia.com/gpu" in (n.status.allocatable or {})}
    assert gpu_nodes, "the dev node pools define no GPU pool"
    # Tolerate every taint so that only the GPU request decides where the pod goes.
    gpu_pod = pod("gpu", tolerations=[{"operator": "Exists"}])
    gpu_pod["spec"]["containers"] = [{**RESTRICTED_CONTAINER, "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
    core.create_namespaced_pod(namespace, gpu_pod)
    placed = wait_for(lambda: core.read_namespaced_pod("gpu", namespace).spec.node_name, "the GPU pod to be bound")
    assert placed in gpu_nodes


def test_a_job_completes(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "once"},
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [RESTRICTED_CONTAINER]}},
            },
        },
    )

    def complete() -> bool:
        status = batch.read_namespaced_job_status("once", namespace).status
        return any(c.type == "Complete" and c.status == "True" for c in status.conditions or [])

    wait_for(complete, "the Job to complete")
    assert batch.read_namespaced_job_status("once", namespace).status.succeeded == 1


def test_a_pod_can_hold_its_job_running_with_a_stage_delay(api: client.ApiClient, namespace: str) -> None:
    """kwok's pod-complete stage honours a per-pod delay, so tests can have Jobs still running."""
    batch = client.BatchV1Api(api)
    annotations = {"pod-complete.stage.kwok.x-k8s.io/delay": "4s"}
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "slow"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"restartPolicy": "Never", "containers": [RESTRICTED_CONTAINER]},
                },
            },
        },
    )
    started = time.monotonic()
    wait_for(lambda: batch.read_namespaced_job_status("slow", namespace).status.active == 1, "the Job to run")
    assert not batch.read_namespaced_job_status("slow", namespace).status.succeeded
    wait_for(lambda: batch.read_namespaced_job_status("slow", namespace).status.succeeded == 1, "the Job to finish")
    assert time.monotonic() - started >= 3.5


def test_pod_logs_come_from_kwok(api: client.ApiClient, namespace: str) -> None:
    """`kubectl logs` reaches kwok through the API server: pods labelled for it return the fixture log
    (kept in the container runtime's log format, which kwok parses)."""
    core = client.CoreV1Api(api)
    talker = pod("talker")
    talker["metadata"]["labels"] = {"kai-ml.io/test-logs": "true"}
    core.create_namespaced_pod(namespace, talker)
    wait_for(lambda: core.read_namespaced_pod("talker", namespace).status.phase == "Running", "the pod to run")
    log = core.read_namespaced_pod_log("talker", namespace, container="main")
    lines = (REPO / "tests" / "fixtures" / "pod.log").read_text().splitlines()
    assert log.splitlines() == [line.split(" ", 3)[3] for line in lines]
    assert "KAIML_RESULT " in log
