"""charts/training rendered with the real helm from each example spec in each environment (values from
deploy/workloads/train/spec.py): one Indexed Job of one completion on its pool, the reference resources,
the credentials Secret mounted by name and never created, the backend ConfigMap, egress to DNS and the
object store only (its own policy where platform-policy is off), hardened, and valid against the
Kubernetes schemas; inconsistent values refused."""

import functools
import json
from pathlib import Path

import pytest
import yaml
from chartkit import ENVIRONMENTS, Manifest, environment_values, run_helm, template, tolerations_for
from test_chart_k8s_schemas import KUBERNETES_VERSIONS, validate

from deploy.paths import CHARTS, REPO
from deploy.platform.values import deep_merge
from deploy.workloads.train import spec

CHART = CHARTS / "training"
EXAMPLES = sorted((REPO / "examples" / "training").glob("*.yaml"))
CASES = [(env, path) for env in ENVIRONMENTS for path in EXAMPLES]
IDS = [f"{env}-{path.stem}" for env, path in CASES]


@pytest.fixture(scope="module")
def rendered(helm: str, tmp_path_factory: pytest.TempPathFactory):
    """rendered(env, spec file, without platform-policy?) -> (chart values, manifests by kind); each rendered
    once. Under platform-policy (the environments as they are) the run has no NetworkPolicy of its own: the
    policy chart's default-deny, DNS and training egress rules confine it; without it the chart's own does."""
    folder = tmp_path_factory.mktemp("training-values")

    @functools.cache
    def _render(env: str, path: Path, without_policy: bool = False) -> tuple[dict, dict[str, Manifest]]:
        env_values = environment_values(env)
        if without_policy:
            env_values = deep_merge(env_values, {"policy": {"enabled": False}})
        values = spec.plan(path, env_values)
        file = folder / f"{env}-{path.stem}-{without_policy}.yaml"
        file.write_text(yaml.safe_dump(values))
        manifests = template(helm, CHART, "-f", str(file), release=f"train-{path.stem}")
        kinds = [m["kind"] for m in manifests]
        assert sorted(kinds) == ["ConfigMap", "Job"] + (["NetworkPolicy"] if without_policy else []), kinds
        return values, {m["kind"]: m for m in manifests}

    return _render


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_one_job_on_its_pool_with_its_resources(rendered, env: str, path: Path) -> None:
    values, by_kind = rendered(env, path)
    name = values["run"]["name"]
    job = by_kind["Job"]
    assert job["metadata"]["name"] == f"{name}-train"
    assert job["metadata"]["namespace"] == environment_values(env)["global"]["namespaces"]["training"]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 1
    assert job["spec"]["backoffLimit"] == values["job"]["backoffLimit"]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    pool = environment_values(env)["global"]["nodePools"][values["job"]["nodePool"]]
    gpu_label = {"gpu-type": pool["gpu"]["type"]} if pool["gpu"]["type"] else {}
    assert pod["nodeSelector"] == {**pool["labels"], **gpu_label}
    assert pod.get("tolerations", []) == tolerations_for(pool)
    gpus = values["units"][0]["config"]["gpuCount"]
    res = container["resources"]
    if gpus:
        assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == gpus
    else:
        assert "nvidia.com/gpu" not in res["requests"] and "nvidia.com/gpu" not in res["limits"]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["KAIML_RUN_ID"] == f"{name}-train"
    config = json.loads(by_kind["ConfigMap"]["data"]["config.json"])
    assert config == {"sweep": name, "kind": "train", "index": 0, "config": values["units"][0]["config"]}


def test_the_reference_defaults_and_a_cpu_run(rendered) -> None:
    gpu = rendered("dev", REPO / "examples" / "training" / "resnet18-synthetic.yaml")[1]["Job"]
    [container] = gpu["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 1},
        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
    }
    assert gpu["spec"]["template"]["spec"]["priorityClassName"] == "high-priority-batch"


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_credentials_by_name_hardened_no_token_and_retries(rendered, env: str, path: Path) -> None:
    values, by_kind = rendered(env, path)
    pod = by_kind["Job"]["spec"]["template"]["spec"]
    assert "Secret" not in by_kind
    [secret] = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert secret["secretName"] == values["objectStore"]["credentialsSecret"] and secret["defaultMode"] == 0o400
    [container] = pod["containers"]
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in container["env"])
    assert container["envFrom"] == [{"configMapRef": {"name": by_kind["ConfigMap"]["metadata"]["name"]}}]
    assert by_kind["ConfigMap"]["data"]["KAIML_OBJECTSTORE_ENDPOINT"] == values["objectStore"]["endpoint"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "training-runner"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    rules = by_kind["Job"]["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailJob" and rules[1]["onExitCodes"]["values"] == [3]


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_egress_to_dns_and_the_object_store_only(rendered, env: str, path: Path) -> None:
    _, by_kind = rendered(env, path, without_policy=True)
    policy = by_kind["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    dns, store = policy["egress"]
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert store["ports"] == [{"protocol": "TCP", "port": 443}]
    assert all("ipBlock" in peer for peer in store["to"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_manifests_are_valid(rendered, env: str, path: Path, version: str) -> None:
    validate(list(rendered(env, path, without_policy=True)[1].values()), version)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"groups": [{"name": "train", "indexes": [1]}]}, "groups[0].indexes: must be [0]"),
        ({"groups": []}, "groups: a training run is one Job, so exactly one group (got 0)"),
        ({"run": {"name": ""}}, "run.name: empty"),
        ({"objectStore": {"credentialsSecret": ""}}, "at '/objectStore/credentialsSecret'"),
        ({"objectStore": {"endpoint": "s3://bucket/path"}}, "at '/objectStore/endpoint'"),
        ({"job": {"nodePool": "gpu-huge"}}, 'job.nodePool: node pool "gpu-huge" is not in global.nodePools'),
        ({"networkPolicy": {"objectStore": {"cidrs": ["everywhere"]}}}, "at '/networkPolicy/objectStore/cidrs/0'"),
        ({"job": {"backoffLimit": -1}}, "at '/job/backoffLimit'"),
    ],
)
def test_inconsistent_values_are_refused(helm: str, tmp_path: Path, change: dict, message: str) -> None:
    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    for key, value in change.items():
        values[key] = value if isinstance(value, list) else {**values.get(key, {}), **value}
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    result = run_helm(helm, "template", "x", str(CHART), "-f", str(file))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
