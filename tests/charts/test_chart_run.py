"""charts/run rendered with the real helm from the example run specs (values from
deploy/workloads/runs/spec.py): one Indexed Job per named node, pinned to it by kubernetes.io/hostname,
its ranks with their own GPUs, a headless Service for the rendezvous, rank-to-rank traffic only,
hardened, and valid against the Kubernetes schemas; inconsistent values refused."""

import functools
import json
from pathlib import Path

import pytest
import yaml
from chartkit import Manifest, environment_values, run_helm, template, tolerations_for
from test_chart_k8s_schemas import KUBERNETES_VERSIONS, validate

from deploy.errors import ValuesError
from deploy.paths import CHARTS, REPO
from deploy.workloads.runs import spec

CHART = CHARTS / "run"
EXAMPLES = REPO / "examples" / "runs"
# (environment, spec): the GPU example needs prod's benchmarks quota (dev allows one GPU in all).
CASES = [
    ("dev", EXAMPLES / "allreduce-gloo.yaml"),
    ("prod", EXAMPLES / "allreduce-gloo.yaml"),
    ("prod", EXAMPLES / "latency-t4-nodes.yaml"),
]
IDS = [f"{env}-{path.stem}" for env, path in CASES]


@pytest.fixture(scope="module")
def rendered(helm: str, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("run-values")

    @functools.cache
    def _render(env: str, path: Path) -> tuple[dict, tuple[Manifest, ...]]:
        values = spec.plan_run(path, environment_values(env))
        file = folder / f"{env}-{path.stem}.yaml"
        file.write_text(yaml.safe_dump(values))
        return values, tuple(template(helm, CHART, "-f", str(file), release=f"run-{path.stem}"))

    return lambda env, path: (_render(env, path)[0], list(_render(env, path)[1]))


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_one_job_per_named_node_its_ranks_pinned_there_with_their_gpus(rendered, env: str, path: Path) -> None:
    values, manifests = rendered(env, path)
    name = values["run"]["name"]
    written = yaml.safe_load(path.read_text())
    pool = environment_values(env)["global"]["nodePools"][written["nodePool"]]
    jobs = [m for m in manifests if m["kind"] == "Job"]
    assert [j["metadata"]["annotations"]["kai-ml.io/node"] for j in jobs] == written["nodes"]
    world = len(written["nodes"]) * written["ranksPerNode"]
    next_rank = 0
    for job, node in zip(jobs, written["nodes"], strict=True):
        spec_ = job["spec"]
        assert spec_["completionMode"] == "Indexed"
        assert spec_["completions"] == spec_["parallelism"] == written["ranksPerNode"]
        assert spec_["backoffLimitPerIndex"] == 0
        pod = spec_["template"]["spec"]
        assert pod["nodeSelector"] == {**pool["labels"], "kubernetes.io/hostname": node}
        assert sorted(pod.get("tolerations", []), key=str) == sorted(tolerations_for(pool), key=str)
        assert pod["subdomain"] == name
        [container] = pod["containers"]
        env_vars = {e["name"]: e.get("value") for e in container["env"]}
        assert env_vars["WORLD_SIZE"] == str(world)
        assert env_vars["KAIML_RANK_OFFSET"] == str(next_rank)
        assert env_vars["MASTER_ADDR"] == f"{name}-n0-0.{name}"  # rank 0: the first node's first pod
        next_rank += written["ranksPerNode"]
        gpus = written.get("gpusPerRank", 1 if pool["gpu"]["count"] else 0)
        assert container["resources"]["requests"].get("nvidia.com/gpu", 0) == gpus
        assert container["resources"]["limits"].get("nvidia.com/gpu", 0) == gpus
        assert container["args"] == ["--config", "/etc/kai-ml/run/run.json"]
    [configmap] = [m for m in manifests if m["kind"] == "ConfigMap"]
    document = json.loads(configmap["data"]["run.json"])
    assert document == {"sweep": name, "kind": written["kind"], "index": 0, "config": written["config"]}


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_ranks_find_each_other_and_nothing_else(rendered, env: str, path: Path) -> None:
    values, manifests = rendered(env, path)
    name = values["run"]["name"]
    selector = {"app.kubernetes.io/name": "run", "app.kubernetes.io/instance": f"run-{name}", "kai-ml.io/run": name}
    [service] = [m for m in manifests if m["kind"] == "Service"]
    assert service["metadata"]["name"] == name
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == selector
    [policy] = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    rules = policy["spec"]
    assert rules["podSelector"] == {"matchLabels": selector}
    assert rules["policyTypes"] == ["Ingress", "Egress"]
    assert rules["ingress"] == [{"from": [{"podSelector": {"matchLabels": selector}}]}]
    peers, dns = rules["egress"]
    assert peers == {"to": [{"podSelector": {"matchLabels": selector}}]}
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    for job in (m for m in manifests if m["kind"] == "Job"):
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert {k: labels[k] for k in selector} == selector


@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_ranks_are_restricted_without_a_token(rendered, env: str, path: Path) -> None:
    _, manifests = rendered(env, path)
    for job in (m for m in manifests if m["kind"] == "Job"):
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "benchmark-runner" and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = pod["containers"][0]["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("env", "path"), CASES, ids=IDS)
def test_manifests_are_valid(rendered, env: str, path: Path, version: str) -> None:
    validate(rendered(env, path)[1], version)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"groups": [{"indexes": [0, 2]}]}, "groups.n0.indexes: rank 2 where rank 1 was expected"),
        ({"groups": [{"node": "gpu-optimized-1"}]}, 'groups.n1.node: "gpu-optimized-1" is also the node of group n0'),
        ({"run": {"name": ""}}, "run.name: empty"),
        ({"groups": [{"nodePool": "gpu-huge"}]}, 'groups.n0.nodePool: node pool "gpu-huge" is not in global.nodePools'),
        ({"gpusPerRank": -1}, "at '/gpusPerRank': minimum: got -1, want 0"),
        ({"startTimeoutSeconds": 1}, "at '/startTimeoutSeconds': minimum: got 1, want 5"),
    ],
)
def test_inconsistent_values_are_refused(helm: str, tmp_path: Path, change: dict, message: str) -> None:
    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
    for key, value in change.items():
        if key == "groups":
            values["groups"] = [{**values["groups"][0], **value[0]}, *values["groups"][1:]]
        elif isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    result = run_helm(helm, "template", "x", str(CHART), "-f", str(file))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_a_run_asking_more_gpus_than_the_namespace_quota_is_refused_before_rendering() -> None:
    """dev's benchmarks quota is one GPU: a 4-GPU run could only ever start in part."""
    with pytest.raises(ValuesError, match=r"4 ranks together ask for requests.nvidia.com/gpu 4, more than"):
        spec.plan_run(EXAMPLES / "latency-t4-nodes.yaml", environment_values("dev"))
