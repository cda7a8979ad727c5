"""charts/loadgen rendered with the real helm from `load run`'s planner (deploy/workloads/load/plan.py) in
each environment: the sizing from the concurrency, one Indexed Job per role (only the controller
reports), the run's own restricted namespace with a quota that fits its pods exactly, no token anywhere,
NetworkPolicies that leave workers only the endpoint and the controller, valid Kubernetes schemas, and
values the chart refuses."""

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import ENVIRONMENTS, Manifest, environment_values, quantity, run_helm, template
from test_chart_k8s_schemas import KUBERNETES_VERSIONS, validate

from deploy.paths import CHARTS
from deploy.workloads.load.plan import chart_values, with_quota
from deploy.workloads.load.spec import LoadSpec, check

CHART = CHARTS / "loadgen"
PORTS = yaml.safe_load((CHART / "values.yaml").read_text())["ports"]
SVC_ENDPOINT = "http://llm.inference.svc:8000"


def plan(env: str, **options: Any) -> dict[str, Any]:
    spec = check(LoadSpec(endpoint=SVC_ENDPOINT, model="m", streaming=True, duration=60, **options), in_cluster=True)
    values = chart_values(spec, environment_values(env), run="t", namespace=None, node_pool="cpu-optimized")
    return with_quota(values)


@pytest.fixture(scope="module")
def rendered(helm: str, tmp_path_factory: pytest.TempPathFactory):
    """rendered(env, concurrency) -> (values, manifests), each rendered once."""
    folder = tmp_path_factory.mktemp("loadgen-values")

    @functools.cache
    def _render(env: str, concurrency: int) -> tuple[dict, tuple[Manifest, ...]]:
        values = plan(env, concurrency=concurrency)
        file = folder / f"{env}-{concurrency}.yaml"
        file.write_text(yaml.safe_dump(values))
        return values, tuple(template(helm, CHART, "-f", str(file), release="load-t"))

    return lambda env, c: (_render(env, c)[0], list(_render(env, c)[1]))


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.parametrize(
    ("concurrency", "workers", "processors"), [(100_000, 200, 50), (1000, 2, 1), (501, 2, 1), (10, 1, 1)]
)
def test_the_roles_are_sized_from_the_concurrency(rendered, concurrency: int, workers: int, processors: int) -> None:
    values, manifests = rendered("dev", concurrency)
    jobs = by_kind(manifests, "Job")
    assert {n: j["spec"]["completions"] for n, j in jobs.items()} == {
        "t-controller": 1,
        "t-worker": workers,
        "t-record-processor": processors,
    }
    for job in jobs.values():
        spec = job["spec"]
        assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"]
        assert spec["backoffLimitPerIndex"] == 0 and spec["activeDeadlineSeconds"] == values["activeDeadlineSeconds"]
    args = jobs["t-controller"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "controller" and args[-1] == "--result-line"
    assert args[args.index("--workers") + 1] == str(workers)
    assert args[args.index("--record-processors") + 1] == str(processors)
    # Only the controller's completion reports a result (deploy/workloads/kind.py's contract).
    assert {g["name"]: set(g["indexes"]) for g in values["groups"]} == {
        "controller": {0},
        "worker": {-1},
        "record-processor": {-1},
    }


def _pod_requests(job: Manifest, kind: str, resource: str) -> float:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return quantity(container["resources"][kind].get(resource, "0")) * job["spec"]["completions"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_run_gets_its_own_restricted_namespace_with_a_quota_that_fits(rendered, env: str) -> None:
    _, manifests = rendered(env, 100_000)
    [namespace] = by_kind(manifests, "Namespace").values()
    assert namespace["metadata"]["name"] == "load-t"
    labels = namespace["metadata"]["labels"]
    assert labels["kai-ml.io/load-run"] == "t" and labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {m["metadata"]["namespace"] for m in manifests if m["kind"] != "Namespace"} == {"load-t"}
    [quota] = by_kind(manifests, "ResourceQuota").values()
    hard = quota["spec"]["hard"]
    jobs = list(by_kind(manifests, "Job").values())
    assert int(hard["pods"]) == sum(j["spec"]["completions"] for j in jobs) == 251
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory", "ephemeral-storage"):
            used = sum(_pod_requests(j, kind, resource) for j in jobs)
            assert quantity(hard[f"{kind}.{resource}"]) == pytest.approx(used, rel=1e-6), (kind, resource)
    assert by_kind(manifests, "LimitRange")


def test_every_pod_is_restricted_and_gets_no_token(rendered) -> None:
    _, manifests = rendered("prod", 1000)
    [account] = by_kind(manifests, "ServiceAccount").values()
    assert account["automountServiceAccountToken"] is False
    assert not by_kind(manifests, "Role") and not by_kind(manifests, "RoleBinding")
    for job in by_kind(manifests, "Job").values():
        pod = job["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "t"
        assert pod["securityContext"]["runAsNonRoot"] is True
        [container] = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["capabilities"] == {"drop": ["ALL"]}
        assert security["allowPrivilegeEscalation"] is False
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["LOADGEN_CONTROLLER_HOST"] == "t-controller.load-t.svc"
        assert env["LOADGEN_ROLE"] == job["metadata"]["labels"]["kai-ml.io/group"]
        assert pod["nodeSelector"]["node-type"] == "cpu-optimized"


def test_the_controller_service_is_headless_over_its_zmq_ports(rendered) -> None:
    _, manifests = rendered("dev", 1000)
    service = by_kind(manifests, "Service")["t-controller"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"kai-ml.io/run": "t", "kai-ml.io/group": "controller"}
    assert {p["port"] for p in service["spec"]["ports"]} == set(PORTS.values()) == {5562, 5665, 5666, 5557, 5663, 5664}


def _egress_ports(policy: Manifest) -> set[int]:
    return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}


def test_workers_reach_only_the_endpoint_and_the_controller(rendered) -> None:
    _, manifests = rendered("dev", 1000)
    policies = by_kind(manifests, "NetworkPolicy")
    deny = policies["t-default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and _egress_ports(policies["t-default-deny"]) == {53}
    ports = PORTS
    assert _egress_ports(policies["t-worker"]) == {ports["credits"], ports["rawIn"]}
    assert _egress_ports(policies["t-record-processor"]) == {ports["rawOut"], ports["records"], ports["eventsOut"]}
    endpoint = policies["t-endpoint"]["spec"]
    assert _egress_ports(policies["t-endpoint"]) == {8000}
    inference = {"matchLabels": {"kubernetes.io/metadata.name": "inference"}}
    assert endpoint["egress"][0]["to"] == [{"namespaceSelector": inference}]
    groups = {e["key"]: e["values"] for e in endpoint["podSelector"]["matchExpressions"]}
    assert sorted(groups["kai-ml.io/group"]) == ["controller", "worker"]
    controller_in = policies["t-controller"]["spec"]["ingress"]
    assert {r["from"][0]["podSelector"]["matchLabels"]["kai-ml.io/group"] for r in controller_in} == {
        "worker",
        "record-processor",
    }


def test_an_ip_endpoint_is_allowed_as_its_address_only() -> None:
    from deploy.workloads.load.spec import endpoint_peers

    assert endpoint_peers("http://10.1.2.3:9000/v1") == {"port": 9000, "cidrs": ["10.1.2.3/32"], "namespace": ""}
    assert endpoint_peers("https://llm.example.com")["cidrs"] == ["0.0.0.0/0"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_manifests_are_valid(rendered, env: str, version: str) -> None:
    validate(rendered(env, 1000)[1], version)


def test_a_dataset_is_mounted_into_the_controller_only(helm: str) -> None:
    manifests = template(helm, CHART, "-f", str(CHART / "ci" / "dataset-values.yaml"))
    assert "dataset.jsonl" in by_kind(manifests, "ConfigMap")["ci-dataset-dataset"]["data"]
    assert not by_kind(manifests, "Namespace")  # create: false
    for name, job in by_kind(manifests, "Job").items():
        mounts = {m["mountPath"] for m in job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
        assert ("/etc/loadgen" in mounts) == name.endswith("-controller"), name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run": {"name": ""}}, "run.name: empty"),
        ({"groups": [{"name": "controller", "indexes": [0, -1]}]}, "groups.controller.indexes: want [0]"),
        ({"groups": [{"name": "worker", "indexes": [-1]}]}, 'groups: the role "worker" appears twice'),
        ({"endpoint": {"namespace": ""}}, "endpoint: give cidrs or namespace"),
        ({"controller": {"args": []}}, "controller.args: empty"),
        ({"nodePool": "gpu-huge"}, 'nodePool: node pool "gpu-huge" is not in global.nodePools'),
        ({"worker": {"resources": {"limits": None}}}, "at '/worker/resources': missing property 'limits'"),
        ({"groups": [{"name": "sidecar", "indexes": [-1]}]}, "/groups/3/name"),
    ],
)
def test_inconsistent_values_are_refused(helm: str, tmp_path: Path, change: dict, message: str) -> None:
    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    for key, value in change.items():
        if key == "groups":
            values["groups"] = [*values["groups"], *value]
            if value[0]["name"] == "controller":
                values["groups"] = [value[0], *values["groups"][1:-1]]
        elif isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    result = run_helm(helm, "template", "x", str(CHART), "-f", str(file))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
