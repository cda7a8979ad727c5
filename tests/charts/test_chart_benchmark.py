"""charts/benchmark rendered with the real helm from each example sweep in each environment
(values from deploy/workloads/bench/sweep.py): one Indexed Job per scheduling group, placed exactly on its pool
(+ spot), hardened, and valid against the Kubernetes schemas."""

import functools
import json
from pathlib import Path

import pytest
import yaml
from chartkit import ENVIRONMENTS, Manifest, environment_values, template, tolerations_for
from test_chart_k8s_schemas import KUBERNETES_VERSIONS, validate

from deploy.paths import CHARTS, REPO
from deploy.workloads.bench import sweep

CHART = CHARTS / "benchmark"
EXAMPLES = sorted((REPO / "examples" / "sweeps").glob("*.yaml"))
CASES = [(env, path) for env in ENVIRONMENTS for path in EXAMPLES]
IDS = [f"{env}-{path.stem}" for env, path in CASES]


@pytest.fixture(scope="module")
def rendered(helm: str, tmp_path_factory: pytest.TempPathFactory):
    """rendered(env, sweep file) -> (chart values, manifests); each rendered once."""
    folder = tmp_path_factory.mktemp("benchmark-values")

    @functools.cache
    def _render(env: str, path: Path) -> tuple[dict, tuple[Manifest, ...]]:
        values = sweep.plan_sweep(path, environment_values(env))
        file = folder / f"{env}-{path.stem}.yaml"
        file.write_text(yaml.safe_dump(values))
        return values, tuple(template(helm, CHART, "-f", str(file), release=f"bench-{path.stem}"))

    return lambda env, path: (_render(env, path)[0], list(_render(env, path)[1]))


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_one_indexed_job_per_group_with_its_configs(rendered, env: str, path: Path) -> None:
    values, manifests = rendered(env, path)
    name = values["sweep"]["name"]
    namespace = environment_values(env)["global"]["namespaces"]["benchmarks"]
    assert {m["metadata"]["namespace"] for m in manifests} == {namespace}
    jobs = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Job"}
    assert set(jobs) == {f"{name}-{g['name']}" for g in values["groups"]}
    [configmap] = [m for m in manifests if m["kind"] == "ConfigMap"]
    assert set(configmap["data"]) == {f"config-{c['index']}.json" for c in values["configs"]}
    for config in values["configs"]:
        document = json.loads(configmap["data"][f"config-{config['index']}.json"])
        assert document == {
            "sweep": name,
            "kind": "model-latency",
            "index": config["index"],
            "config": config["config"],
        }
    for group in values["groups"]:
        job = jobs[f"{name}-{group['name']}"]["spec"]
        assert job["completionMode"] == "Indexed"
        assert job["completions"] == len(group["indexes"])
        assert job["parallelism"] == min(values["parallelism"], len(group["indexes"]))
        assert job["backoffLimitPerIndex"] == values["backoffLimitPerIndex"]
        assert job["ttlSecondsAfterFinished"] == values["ttlSecondsAfterFinished"]
        assert job.get("maxFailedIndexes") == values.get("maxFailedIndexes")
        env_vars = {e["name"]: e.get("value") for e in job["template"]["spec"]["containers"][0]["env"]}
        assert env_vars["KAIML_CONFIG_INDEXES"] == ",".join(map(str, group["indexes"]))
        assert env_vars["KAIML_SWEEP"] == name and env_vars["KAIML_GROUP"] == group["name"]


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_pod_failure_policy_retries_disruptions_and_fails_config_errors(rendered, env: str, path: Path) -> None:
    _, manifests = rendered(env, path)
    for job in (m for m in manifests if m["kind"] == "Job"):
        rules = job["spec"]["podFailurePolicy"]["rules"]
        assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        assert rules[1] == {
            "action": "FailIndex",
            "onExitCodes": {"containerName": "runner", "operator": "In", "values": [sweep.CONFIG_ERROR_EXIT_CODE]},
        }
        assert len(rules) == 2
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_pods_land_exactly_on_their_pool_hardened_and_without_token(rendered, env: str, path: Path) -> None:
    values, manifests = rendered(env, path)
    pools = environment_values(env)["global"]["nodePools"]
    groups = {g["name"]: g for g in values["groups"]}
    for job in (m for m in manifests if m["kind"] == "Job"):
        group = groups[job["metadata"]["labels"]["kai-ml.io/benchmark-group"]]
        pod = job["spec"]["template"]["spec"]
        pool = pools[group["nodePool"]]
        gpu_type = {"gpu-type": group["gpuType"]} if group["gpuType"] else {}  # a CPU group selects its pool alone
        assert pod["nodeSelector"] == {**pool["labels"], **gpu_type}
        assert sorted(pod.get("tolerations", []), key=str) == sorted(tolerations_for(pool), key=str)
        assert pool.get("spot", False) == group["spot"]
        assert pod["priorityClassName"] == group["priorityClassName"]
        assert pod["serviceAccountName"] == "benchmark-runner"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        [container] = pod["containers"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        gpus = group["gpuCount"]
        # A CPU group (gpuCount 0) asks for no GPU at all rather than for zero.
        assert container["resources"]["requests"].get("nvidia.com/gpu", 0) == gpus
        assert container["resources"]["limits"].get("nvidia.com/gpu", 0) == gpus
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/kai-ml/sweep"]["readOnly"] is True and "/tmp" in mounts
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["kai-ml.io/benchmark"] == values["sweep"]["name"]


def test_spot_sweep_selects_spot_gpu_nodes_and_is_preemptible(rendered) -> None:
    _, manifests = rendered("dev", REPO / "examples" / "sweeps" / "spot-sweep.yaml")
    [job] = [m for m in manifests if m["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["node-type"] == "spot-gpu-t4" and pod["nodeSelector"]["gpu-type"] == "nvidia-t4"
    assert pod["tolerations"] == [{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "preemptible"
    assert job["spec"]["maxFailedIndexes"] == 4


def test_deadlines_and_the_model_volume(rendered) -> None:
    """resnet-gpus.yaml: its Jobs stop at the sweep's deadline, each pod at the config's, and its
    TorchScript file comes from the read-only model volume."""
    values, manifests = rendered("dev", REPO / "examples" / "sweeps" / "resnet-gpus.yaml")
    jobs = [m for m in manifests if m["kind"] == "Job"]
    assert len(jobs) == 2
    for job in jobs:
        assert job["spec"]["activeDeadlineSeconds"] == 3600
        pod = job["spec"]["template"]["spec"]
        assert pod["activeDeadlineSeconds"] == 600
        assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod["volumes"]
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["/models"] == {"name": "models", "mountPath": "/models", "readOnly": True}
    assert {c["config"]["modelPath"] for c in values["configs"]} == {"/models/resnet50.pt"}
    # Without deadlines or models (quickstart), none of it.
    _, plain = rendered("dev", REPO / "examples" / "sweeps" / "quickstart.yaml")
    for job in (m for m in plain if m["kind"] == "Job"):
        assert "activeDeadlineSeconds" not in job["spec"]
        assert "activeDeadlineSeconds" not in job["spec"]["template"]["spec"]
        assert all(v["name"] != "models" for v in job["spec"]["template"]["spec"]["volumes"])


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_no_network_policy_of_its_own_under_platform_policy(rendered, env: str, path: Path) -> None:
    """platform-policy's default-deny and DNS egress confine the runner pods; a sweep's own policy would
    need its launchers (team members) to hold NetworkPolicy rights, enough to open egress."""
    values, manifests = rendered(env, path)
    assert values["networkPolicy"] == {"enabled": False}
    assert not [m for m in manifests if m["kind"] == "NetworkPolicy"]


def test_network_policy_allows_dns_egress_only_when_the_chart_stands_alone(helm: str) -> None:
    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    [policy] = [m for m in template(helm, CHART, "-f", str(CHART / "ci" / "default-values.yaml"))
                if m["kind"] == "NetworkPolicy"]  # fmt: skip
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"kai-ml.io/benchmark": values["sweep"]["name"]}}
    assert spec["policyTypes"] == ["Ingress", "Egress"] and not spec.get("ingress")
    [rule] = spec["egress"]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_manifests_are_valid(rendered, env: str, path: Path, version: str) -> None:
    validate(rendered(env, path)[1], version)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"groups": [{"indexes": [0, 7]}]}, "groups.t4.indexes: 7 is not the index of any of configs"),
        ({"runner": {"retryableExitCodes": [3]}}, "runner.retryableExitCodes: 3 is runner.configErrorExitCode"),
        ({"groups": [{"nodePool": "gpu-huge"}]}, 'groups.t4.nodePool: node pool "gpu-huge" is not in global.nodePools'),
        ({"sweep": {"name": ""}}, "sweep.name: empty"),
        ({"podAnnotations": {"x": 1}}, "at '/podAnnotations/x': got number, want string"),
        ({"groups": [{"spot": True}]}, "groups.t4.spot: true, but node pool gpu-optimized is not spot capacity"),
        ({"deadlineSeconds": 0}, "at '/deadlineSeconds': minimum: got 0, want 1"),
        ({"models": {"claimName": "Models"}}, "at '/models/claimName'"),
    ],
)
def test_inconsistent_values_are_refused(helm: str, tmp_path: Path, change: dict, message: str) -> None:
    from chartkit import run_helm

    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    for key, value in change.items():
        if key == "groups":
            values["groups"] = [{**values["groups"][0], **value[0]}, *values["groups"][1:]]
        elif not isinstance(value, dict):
            values[key] = value
        else:
            values[key] = {**values.get(key, {}), **value}
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    result = run_helm(helm, "template", "x", str(CHART), "-f", str(file))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_a_rerun_group_runs_configs_of_its_origin_again(helm: str, tmp_path: Path) -> None:
    """deploy/workloads/release.with_rerun's groups: accepted, labelled; a dangling rerunOf refused."""
    from chartkit import run_helm

    from deploy.workloads.release import with_rerun

    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    origin = values["groups"][0]
    rerun, added = with_rerun(values, origin["indexes"][:1])
    file = tmp_path / "rerun.yaml"
    file.write_text(yaml.safe_dump(rerun))
    jobs = [m for m in template(helm, CHART, "-f", str(file)) if m["kind"] == "Job"]
    (name,) = added
    job = next(j for j in jobs if j["metadata"]["labels"]["kai-ml.io/benchmark-group"] == name)
    assert job["metadata"]["labels"]["kai-ml.io/rerun-of"] == origin["name"]
    assert job["spec"]["completions"] == 1
    assert (
        job["spec"]["template"]["spec"]["nodeSelector"]
        == next(j for j in jobs if j["metadata"]["labels"]["kai-ml.io/benchmark-group"] == origin["name"])["spec"][
            "template"
        ]["spec"]["nodeSelector"]
    )

    assert "activeDeadlineSeconds" not in job["spec"]
    # What is left of the sweep's deadline is the re-run Job's own.
    values["deadlineSeconds"] = 600
    late, _ = with_rerun(values, origin["indexes"][:1], deadline_left_s=125.7)
    file.write_text(yaml.safe_dump(late))
    deadlines = {
        j["metadata"]["labels"]["kai-ml.io/benchmark-group"]: j["spec"]["activeDeadlineSeconds"]
        for j in template(helm, CHART, "-f", str(file))
        if j["kind"] == "Job"
    }
    assert deadlines == {origin["name"]: 600, values["groups"][1]["name"]: 600, name: 125}

    rerun["groups"][-1]["rerunOf"] = "nowhere"
    file.write_text(yaml.safe_dump(rerun))
    result = run_helm(helm, "template", "x", str(CHART), "-f", str(file))
    assert result.returncode != 0
    assert f'groups.{name}.rerunOf: "nowhere" is not a group listed before it' in result.stderr
