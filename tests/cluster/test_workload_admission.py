"""Who may run pods as which ServiceAccount, with which Secrets, on the real API server.

A team member may create Jobs and read pod logs in every namespace of the environment, but not
Secrets. Without the workload admission policy, a Job of theirs that runs as the `coordinator`
ServiceAccount with `envFrom` the processing credentials prints the Secret into its log. Installed
with plain Helm (platform-cluster once, then prod), impersonating the people and ServiceAccounts
of the design: that Job is refused with a message that says why, the same Job without the Secret
and as an allowed ServiceAccount is admitted and runs, platform admins and launchers keep their
paths (the component charts, the benchmark chart's Jobs, training Jobs with their credentials)."""

import copy
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helmcli import helm
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploy import tools
from deploy.cluster.controlplane import LocalCluster
from deploy.paths import CHARTS, VALUES
from deploy.platform import charts
from deploy.platform.values import load_environment

pytestmark = pytest.mark.cluster

ENV = "prod"
TEAM_MEMBER, PLATFORM_ADMIN = "tess-team-member", "pat-platform-admin"
SECRET = "distributed-processing-credentials"
FIXTURES = Path(__file__).parent.parent / "fixtures"
RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
    "automountServiceAccountToken": False,
    "restartPolicy": "Never",
}
CONTAINER = {
    "name": "main",
    "image": "busybox:1.36",
    "command": ["env"],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}


@pytest.fixture(scope="module")
def namespaces(cluster: LocalCluster, kubectl: list[str]) -> Iterator[dict[str, str]]:
    """platform-cluster, then prod with a team member and a platform admin named, as an operator
    would install them (the deployer is a cluster admin, so the components' own install is the
    first check that the policy lets the platform through)."""
    charts.build_dependencies(
        tools.tool("helm"), [CHARTS / "platform-cluster", CHARTS / "platform", CHARTS / "benchmark"]
    )
    kube = cluster.kubeconfig
    helm(
        kube, "upgrade", "--install", "platform-cluster", str(CHARTS / "platform-cluster"), "--wait", "--timeout", "2m"
    )
    people = ["--set", f"policy.access.teamMembers.users={{{TEAM_MEMBER}}}"]
    people += ["--set", f"policy.access.platformAdmins.users={{{PLATFORM_ADMIN}}}"]
    release = f"platform-{ENV}"
    values = str(VALUES / f"{ENV}.yaml")
    helm(
        kube,
        "upgrade",
        "--install",
        release,
        str(CHARTS / "platform"),
        "-f",
        values,
        *people,
        "--wait",
        "--timeout",
        "3m",
    )
    namespaces = {k: v for k, v in load_environment(ENV)["global"]["namespaces"].items() if k != "monitoring"}
    wait_for_policy(cluster, namespaces["platform"])
    yield namespaces
    for name in (release, "platform-cluster"):
        helm(kube, "uninstall", name, "--wait", "--timeout", "2m")
    selector = "app.kubernetes.io/instance=platform-cluster"
    subprocess.run([*kubectl, "delete", "clusterrole", "-l", selector, "--wait"], check=True, capture_output=True)


def wait_for_policy(cluster: LocalCluster, namespace: str, timeout: float = 60) -> None:
    """The API server loads new policies and bindings from a watch, a moment after Helm created them:
    wait until a Job as another ServiceAccount is refused (a dry run) before testing anything."""
    batch = client.BatchV1Api(as_user(cluster, TEAM_MEMBER))
    deadline = time.monotonic() + timeout
    while True:
        try:
            batch.create_namespaced_job(namespace, job("probe", "coordinator"), dry_run="All")
        except ApiException as err:
            if err.status == 403 and "kai-ml-workload-credentials" in json.loads(err.body)["message"]:
                return
            raise
        assert time.monotonic() < deadline, f"the workload admission policy was not enforced after {timeout}s"
        time.sleep(0.5)


def as_user(cluster: LocalCluster, user: str) -> client.ApiClient:
    """An API client that impersonates `user` (a ServiceAccount's name gets its groups from the server)."""
    api = cluster.api_client()
    api.set_default_header("Impersonate-User", user)
    return api


def job(name: str, service_account: str | None = None, secret: str | None = None, **pod: Any) -> dict[str, Any]:
    container = copy.deepcopy(CONTAINER)
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    spec: dict[str, Any] = {**copy.deepcopy(RESTRICTED_POD), "containers": [container], **pod}
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    }


def refused(create: Any) -> str:
    """The message of the refusal that `create()` must meet."""
    with pytest.raises(ApiException) as err:
        create()
    assert err.value.status == 403, err.value.body
    return json.loads(err.value.body)["message"]


def test_a_team_member_cannot_run_a_job_as_a_component_with_its_credentials(cluster, namespaces) -> None:
    """The probe's attack, refused: both reasons are given."""
    batch = client.BatchV1Api(as_user(cluster, TEAM_MEMBER))
    ns = namespaces["platform"]
    message = refused(lambda: batch.create_namespaced_job(ns, job("leak", "coordinator", SECRET)))
    assert "ValidatingAdmissionPolicy 'kai-ml-workload-credentials'" in message
    assert f"'{TEAM_MEMBER}' may not run pods as ServiceAccount 'coordinator' in namespace {ns}" in message
    assert "needs the verb 'use' on serviceaccounts/coordinator" in message


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param({"containers": [{**CONTAINER, "envFrom": [{"secretRef": {"name": SECRET}}]}]}, id="envFrom"),
        pytest.param(
            {
                "containers": [
                    {**CONTAINER, "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "k"}}}]}
                ]
            },
            id="env",
        ),
        pytest.param({"volumes": [{"name": "s", "secret": {"secretName": SECRET}}]}, id="volume"),
        pytest.param(
            {"volumes": [{"name": "s", "projected": {"sources": [{"secret": {"name": SECRET}}]}}]}, id="projected"
        ),
        pytest.param(
            {"initContainers": [{**CONTAINER, "name": "init", "envFrom": [{"secretRef": {"name": SECRET}}]}]},
            id="initContainer",
        ),
    ],
)
def test_a_team_member_cannot_hand_a_pod_a_secret(cluster, namespaces, pod: dict[str, Any]) -> None:
    batch = client.BatchV1Api(as_user(cluster, TEAM_MEMBER))
    ns = namespaces["platform"]
    message = refused(lambda: batch.create_namespaced_job(ns, job("leak", **pod)))
    assert f"'{TEAM_MEMBER}' may not give a pod the Secret(s) {SECRET} in namespace {ns}" in message
    assert "ServiceAccount" not in message  # the default ServiceAccount is theirs to use


def test_the_deprecated_service_account_field_is_checked_too(cluster, namespaces) -> None:
    batch = client.BatchV1Api(as_user(cluster, TEAM_MEMBER))
    message = refused(
        lambda: batch.create_namespaced_job(namespaces["platform"], job("leak", serviceAccount="coordinator"))
    )
    assert "may not run pods as ServiceAccount 'coordinator'" in message


@pytest.fixture
def more_kinds(cluster: LocalCluster, namespaces: dict[str, str]) -> Iterator[str]:
    """The team member additionally allowed (by RBAC) to create Pods, CronJobs and workloads in the
    platform namespace, as a cluster admin might grant one day: the policy must still hold."""
    ns = namespaces["platform"]
    rbac = client.RbacAuthorizationV1Api(cluster.api_client())
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
        {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"]},
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
            "verbs": ["create"],
        },
    ]
    rbac.create_namespaced_role(ns, {"metadata": {"name": "more-kinds"}, "rules": rules})
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TEAM_MEMBER}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "more-kinds"}
    rbac.create_namespaced_role_binding(ns, {"metadata": {"name": "more-kinds"}, "roleRef": ref, "subjects": [subject]})
    yield ns
    rbac.delete_namespaced_role_binding("more-kinds", ns)
    rbac.delete_namespaced_role("more-kinds", ns)


def test_every_pod_creating_kind_is_checked_through_its_pod_template(cluster, more_kinds: str) -> None:
    api = as_user(cluster, TEAM_MEMBER)
    ns = more_kinds
    pod_template = job("x", "coordinator")["spec"]["template"]
    selector = {"matchLabels": {"app": "leak"}}
    workload = {
        "metadata": {"name": "leak"},
        "spec": {"selector": selector, "template": {**pod_template, "metadata": {"labels": {"app": "leak"}}}},
    }
    workload["spec"]["template"]["spec"] = {**pod_template["spec"], "restartPolicy": "Always"}
    apps = client.AppsV1Api(api)
    attempts = {
        "pod": lambda: client.CoreV1Api(api).create_namespaced_pod(ns, {"metadata": {"name": "leak"}, **pod_template}),
        "cronjob": lambda: client.BatchV1Api(api).create_namespaced_cron_job(
            ns,
            {
                "metadata": {"name": "leak"},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": pod_template}}},
            },
        ),
        "deployment": lambda: apps.create_namespaced_deployment(ns, workload),
        "statefulset": lambda: apps.create_namespaced_stateful_set(
            ns, {**workload, "spec": {**workload["spec"], "serviceName": "x"}}
        ),
        "daemonset": lambda: apps.create_namespaced_daemon_set(ns, workload),
        "replicaset": lambda: apps.create_namespaced_replica_set(ns, workload),
    }
    for kind, attempt in attempts.items():
        assert "may not run pods as ServiceAccount 'coordinator'" in refused(attempt), kind


def test_the_same_job_without_the_secret_and_as_an_allowed_account_runs(cluster, namespaces) -> None:
    """So the refusals above are about the ServiceAccount and the Secret, not Jobs as such; its pod,
    created by the job controller (exempt), is admitted too."""
    api = as_user(cluster, TEAM_MEMBER)
    ns = namespaces["platform"]
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, job("allowed"))
    try:
        core = client.CoreV1Api(cluster.api_client())
        deadline = time.monotonic() + 60
        while not (pods := core.list_namespaced_pod(ns, label_selector="job-name=allowed").items):
            assert time.monotonic() < deadline, "the job controller created no pod"
            time.sleep(1)
        assert pods[0].spec.service_account_name == "default"
    finally:
        client.BatchV1Api(cluster.api_client()).delete_namespaced_job("allowed", ns, propagation_policy="Background")


def test_platform_admins_still_run_the_components_with_their_credentials(cluster, namespaces) -> None:
    """A platform admin may read the Secret and use every ServiceAccount: the distributed-processing
    Deployment of prod (its ServiceAccount, the credentials mounted as files) is admitted for them."""
    apps = client.AppsV1Api(cluster.api_client())
    ns = namespaces["platform"]
    deployment = next(
        d for d in apps.list_namespaced_deployment(ns).items if "distributed-processing" in d.metadata.name
    )
    pod = deployment.spec.template.spec
    assert pod.service_account_name and any(v.secret and v.secret.secret_name == SECRET for v in pod.volumes or [])
    body = client.ApiClient().sanitize_for_serialization(deployment)
    body["metadata"] = {"name": "admin-copy", "labels": body["metadata"]["labels"]}
    client.AppsV1Api(as_user(cluster, PLATFORM_ADMIN)).create_namespaced_deployment(ns, body, dry_run="All")
    # The team member may not create Deployments at all (RBAC), and may not create the same pod as a Job.
    member = client.BatchV1Api(as_user(cluster, TEAM_MEMBER))
    attack = job("copy", pod.service_account_name, SECRET)
    assert "may not run pods as ServiceAccount" in refused(lambda: member.create_namespaced_job(ns, attack))


def benchmark_objects(namespace: str) -> list[dict[str, Any]]:
    """The benchmark chart's Jobs and ConfigMaps for a sweep (its CI values) in `namespace`."""
    out = helm(
        Path("/dev/null"),
        "template",
        "ci-sweep",
        str(CHARTS / "benchmark"),
        "-f",
        str(CHARTS / "benchmark" / "ci" / "default-values.yaml"),
        "--set",
        f"global.namespaces.benchmarks={namespace}",
    )
    objects = [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("Job", "ConfigMap")]
    for job_ in (o for o in objects if o["kind"] == "Job"):  # the typed client wants quantities as strings
        for container in job_["spec"]["template"]["spec"]["containers"]:
            for part in ("requests", "limits"):
                quantities = container.get("resources", {}).get(part, {})
                quantities.update({k: str(v) for k, v in quantities.items()})
    return objects


@pytest.mark.parametrize("launcher", ["benchmark-launcher", TEAM_MEMBER])
def test_the_benchmark_chart_jobs_are_admitted_for_their_launchers(cluster, namespaces, launcher: str) -> None:
    ns = namespaces["benchmarks"]
    user = f"system:serviceaccount:{ns}:{launcher}" if launcher == "benchmark-launcher" else launcher
    api = as_user(cluster, user)
    objects = benchmark_objects(ns)
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert jobs and all(j["spec"]["template"]["spec"]["serviceAccountName"] == "benchmark-runner" for j in jobs)
    for obj in objects:
        if obj["kind"] == "Job":
            client.BatchV1Api(api).create_namespaced_job(ns, obj, dry_run="All")
        else:
            client.CoreV1Api(api).create_namespaced_config_map(ns, obj, dry_run="All")
    # The launcher may not run its Jobs as anything else it was not given.
    bad = copy.deepcopy(jobs[0])
    bad["spec"]["template"]["spec"]["serviceAccountName"] = "benchmark-launcher"
    message = refused(lambda: client.BatchV1Api(api).create_namespaced_job(ns, bad, dry_run="All"))
    assert "may not run pods as ServiceAccount 'benchmark-launcher'" in message


def test_the_training_job_creator_lends_its_jobs_the_storage_credentials(cluster, namespaces) -> None:
    """Reference 002: training Jobs get r2-credentials from the job creator, which may read no other Secret."""
    ns = namespaces["training"]
    api = as_user(cluster, f"system:serviceaccount:{ns}:training-job-creator")
    client.BatchV1Api(api).create_namespaced_job(ns, job("train", "training-runner", "r2-credentials"), dry_run="All")
    message = refused(
        lambda: client.BatchV1Api(api).create_namespaced_job(
            ns, job("train", "training-runner", "other"), dry_run="All"
        )
    )
    assert "may not give a pod the Secret(s) other" in message
    assert "forbidden" in refused(lambda: client.CoreV1Api(api).read_namespaced_secret("other", ns)).lower()


@pytest.fixture
def workflows(kubectl: list[str]) -> Iterator[Path]:
    """Argo's Workflow API (a stand-in CRD), removed afterwards: the session cluster is shared."""
    crd = FIXTURES / "argo-workflow-crd.yaml"
    subprocess.run([*kubectl, "apply", "-f", str(crd)], check=True, capture_output=True)
    established = ["wait", "--for=condition=Established", "-f", str(crd)]
    subprocess.run([*kubectl, *established], check=True, capture_output=True)
    yield crd
    subprocess.run([*kubectl, "delete", "-f", str(crd), "--wait"], check=True, capture_output=True)


def workflow(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "wf"}, "spec": spec}


def test_a_team_members_workflow_runs_templates_by_reference_as_no_component(cluster, namespaces, workflows) -> None:
    """Team members may create Workflows (Argo's controller, exempt, then makes the pods): so the
    Workflow itself must not name a component's ServiceAccount, nor carry inline pod settings."""
    api = client.CustomObjectsApi(as_user(cluster, TEAM_MEMBER))
    ns = namespaces["platform"]

    def create(body: dict[str, Any]) -> Any:
        return api.create_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows", body, dry_run="All")

    by_reference = {"workflowTemplateRef": {"name": "reconstruction"}}
    create(workflow(**by_reference))
    as_component = workflow(**by_reference, serviceAccountName="coordinator")
    assert "may not run pods as ServiceAccount 'coordinator'" in refused(lambda: create(as_component))
    leak = {"name": "main", "container": {**CONTAINER, "envFrom": [{"secretRef": {"name": SECRET}}]}}
    inline = workflow(entrypoint="main", templates=[leak])
    assert "may not set inline templates, templateDefaults or podSpecPatch" in refused(lambda: create(inline))
    patched = workflow(**by_reference, podSpecPatch='{"serviceAccountName": "coordinator"}')
    assert "may not set inline templates" in refused(lambda: create(patched))
    mounted = workflow(**by_reference, volumes=[{"name": "s", "secret": {"secretName": SECRET}}])
    assert f"may not give a pod the Secret(s) {SECRET}" in refused(lambda: create(mounted))
    # A platform admin authors templates, so inline ones are theirs to write.
    admin = client.CustomObjectsApi(as_user(cluster, PLATFORM_ADMIN))
    admin.create_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows", inline, dry_run="All")
