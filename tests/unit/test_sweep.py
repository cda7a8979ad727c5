"""Sweep files: schema, matrix expansion (GitHub Actions' include/exclude), the refusals that
name the key, scheduling groups and the benchmark chart's values. Pure functions, no cluster."""

import copy
from pathlib import Path

import pytest
import yaml

from deploy.errors import ValuesError
from deploy.platform.values import deep_merge, load_environment
from deploy.workloads.bench import sweep

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "sweeps").glob("*.yaml"))
BASE = {
    "kind": "model-latency",
    "name": "unit",
    "base": {"model": "cnn", "batchSize": 1, "inputShape": [3, 32, 32], "gpuType": "nvidia-t4"},
}


@pytest.fixture(scope="module")
def dev() -> dict:
    return load_environment("dev")


def make(**changes) -> dict:
    return sweep.with_defaults(deep_merge(copy.deepcopy(BASE), changes))


def refusal(data: dict, env: dict) -> str:
    with pytest.raises(ValuesError) as err:
        sweep.chart_values(data, env, "bad.yaml")
    return str(err.value)


def test_product_less_exclude_plus_include() -> None:
    matrix = {
        "gpuType": ["t4", "a100"],
        "batchSize": [1, 8],
        "exclude": [{"gpuType": "t4", "batchSize": 8}],
        "include": [
            {"gpuType": "a100", "precision": "fp16"},  # extends both a100 combinations
            {"gpuType": "a100", "batchSize": 64},  # changes an original value: a combination of its own
            {"gpuType": "t4", "batchSize": 1},  # the same as an existing one: nothing new
        ],
    }
    configs = sweep.expand(make(matrix=matrix))
    combos = [{k: v for k, v in c.values.items() if c.origins[k].startswith("matrix")} for c in configs]
    assert combos == [
        {"gpuType": "t4", "batchSize": 1},
        {"gpuType": "a100", "batchSize": 1, "precision": "fp16"},
        {"gpuType": "a100", "batchSize": 8, "precision": "fp16"},
        {"gpuType": "a100", "batchSize": 64},
    ]


def test_no_matrix_is_one_config_with_defaults_and_origins() -> None:
    [config] = sweep.expand(make())
    assert config.values == {**sweep.CONFIG_DEFAULTS, **BASE["base"]}
    assert config.origins["model"] == "base.model"


def test_matrix_values_override_base_and_are_named_in_labels() -> None:
    configs = sweep.expand(make(matrix={"precision": ["fp32", "fp16"]}))
    assert [c.values["precision"] for c in configs] == ["fp32", "fp16"]
    assert configs[1].label() == "configs[1] (precision=fp16)"


def test_examples_plan_in_every_environment() -> None:
    assert {p.name for p in EXAMPLES} >= {"resnet-gpus.yaml", "model-zoo.yaml", "spot-sweep.yaml"}
    for env in ("dev", "staging", "prod"):
        for path in EXAMPLES:
            values = sweep.plan_sweep(path, load_environment(env))
            assert [c["index"] for c in values["configs"]] == list(range(len(values["configs"])))
            grouped = sorted(i for g in values["groups"] for i in g["indexes"])
            assert grouped == list(range(len(values["configs"])))


def test_resnet_example_groups_by_gpu_type(dev: dict) -> None:
    values = sweep.plan_sweep(next(p for p in EXAMPLES if p.name == "resnet-gpus.yaml"), dev)
    assert len(values["configs"]) == 3 * 2 * 2 - 2 + 1
    groups = {g["name"]: g for g in values["groups"]}
    assert set(groups) == {"t4", "a100"}
    assert groups["t4"]["nodePool"] == "gpu-optimized" and len(groups["t4"]["indexes"]) == 4
    assert groups["a100"]["nodePool"] == "gpu-high-end" and len(groups["a100"]["indexes"]) == 7
    config = values["configs"][groups["a100"]["indexes"][0]]["config"]
    assert config["gpuType"] == "nvidia-a100" and config["gpuCount"] == 1
    assert values["global"]["namespaces"] == {"benchmarks": "benchmarks-dev"}


def test_groups_split_on_pool_gpu_count_and_name_spot() -> None:
    configs = [
        sweep.Config(0, {}, node_pool="gpu-optimized", gpu_type="nvidia-t4", gpu_count=1),
        sweep.Config(1, {}, node_pool="gpu-optimized", gpu_type="nvidia-t4", gpu_count=2),
        sweep.Config(2, {}, node_pool="gpu-optimized", gpu_type="nvidia-t4", gpu_count=1),
        sweep.Config(3, {}, node_pool="cpu-optimized", gpu_type="", gpu_count=0),
    ]
    groups = sweep.group_configs(configs, make(spot=True))
    assert [(g.name, g.indexes) for g in groups] == [
        ("t4-spot", (0, 2)),
        ("t4-x2-spot", (1,)),
        ("cpu-optimized-x0-spot", (3,)),
    ]
    assert all(g.spot and g.priority_class_name == "medium-priority-batch" for g in groups)


def test_cpu_configs_name_a_pool(dev: dict) -> None:
    data = make(base={"gpuType": None}, matrix={"nodePool": ["cpu-optimized"]})
    del data["base"]["gpuType"]
    [group] = sweep.chart_values(data, dev)["groups"]
    assert (group["nodePool"], group["gpuType"], group["gpuCount"]) == ("cpu-optimized", "", 0)


# The four refusals of issue 5, and a few more: each names the key.
@pytest.mark.parametrize(
    ("changes", "parts"),
    [
        (
            {"matrix": {"gpuType": ["nvidia-t4", "nvidia-h100"]}},
            ["unknown GPU type 'nvidia-h100'", "matrix.gpuType[1]"],
        ),
        ({"priorityClassName": "urgent"}, ["priorityClassName 'urgent'", "known: platform-critical"]),
        ({"matrix": {"batchSize": []}}, ["zero configs", "matrix.batchSize is an empty list"]),
        (
            {"matrix": {"batchSize": [1], "exclude": [{"batchSize": 1}]}},
            ["zero configs", "matrix.exclude removes every combination"],
        ),
        (
            {"base": {"gpuType": "nvidia-a100", "gpuCount": 2}},
            ["gpuCount (set at base.gpuCount)", "requests.nvidia.com/gpu: 1"],
        ),
        (
            {"resources": {"requests": {"cpu": "12", "memory": "1Gi"}, "limits": {"cpu": "12", "memory": "1Gi"}}},
            [
                "resources.requests.cpu asks for 12",
                "benchmarks-dev",
                "policy.namespaces.benchmarks.quota requests.cpu: 8",
            ],
        ),
        ({"base": {"gpuCount": 5}}, ["gpuCount 5 (set at base.gpuCount)", "pool gpu-optimized has (4)"]),
        ({"matrix": {"nodePool": ["gpu-huge"]}}, ["nodePool 'gpu-huge' (set at matrix.nodePool[0])"]),
        (
            {"matrix": {"gpuType": ["nvidia-a100"], "nodePool": ["gpu-optimized"]}},
            ["gpuType 'nvidia-a100'", "nodePool gpu-optimized"],
        ),
    ],
    ids=[
        "unknown-gpu-type",
        "unknown-priority-class",
        "empty-matrix-axis",
        "matrix-all-excluded",
        "over-namespace-gpu-quota",
        "over-namespace-cpu-quota",
        "more-gpus-than-a-node",
        "unknown-node-pool",
        "gpu-type-not-the-pools",
    ],
)
def test_bad_sweeps_are_refused_naming_the_key(dev: dict, changes: dict, parts: list[str]) -> None:
    message = refusal(make(**changes), dev)
    assert message.startswith("sweep bad.yaml: ")
    for part in parts:
        assert part in message, message


def test_quota_follows_the_environment() -> None:
    """Two GPUs per pod: over dev's benchmarks quota (1), within prod's (16)."""
    data = make(base={"gpuType": "nvidia-a100", "gpuCount": 2})
    assert "requests.nvidia.com/gpu" in refusal(data, load_environment("dev"))
    assert sweep.chart_values(data, load_environment("prod"))["groups"][0]["gpuCount"] == 2


def test_priority_quota_of_the_class_counts() -> None:
    """prod's benchmarks `preemptible` quota allows 4 GPUs, the namespace 16."""
    data = make(base={"gpuType": "nvidia-a100", "gpuCount": 6}, priorityClassName="preemptible")
    assert "priorityQuotas.preemptible.hard requests.nvidia.com/gpu: 4" in refusal(data, load_environment("prod"))


def test_limit_range_max_counts() -> None:
    """prod's quota allows 512Gi of limits, its LimitRange 64Gi per container."""
    data = make(resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "100Gi"}})
    message = refusal(data, load_environment("prod"))
    assert "resources.limits.memory 100Gi" in message
    assert "policy.namespaces.benchmarks.limitRange.max.memory: 64Gi" in message


def test_missing_required_config_key_is_named(dev: dict) -> None:
    data = make()
    del data["base"]["model"]
    assert "configs[0] has no model: set base.model" in refusal(data, dev)


def test_a_spot_sweep_runs_on_the_spot_pool_of_its_gpu_type(dev: dict) -> None:
    values = sweep.chart_values(make(spot=True, matrix={"gpuType": ["nvidia-t4", "nvidia-a100"]}), dev)
    assert {g["name"]: g["nodePool"] for g in values["groups"]} == {
        "t4-spot": "spot-gpu-t4",
        "a100-spot": "spot-gpu-a100",
    }
    assert all(g["spot"] for g in values["groups"])
    # The same sweep without spot stays on the on-demand pools.
    plain = sweep.chart_values(make(matrix={"gpuType": ["nvidia-t4", "nvidia-a100"]}), dev)
    assert {g["nodePool"] for g in plain["groups"]} == {"gpu-optimized", "gpu-high-end"}


def test_spot_needs_spot_capacity_of_the_gpu_type(dev: dict) -> None:
    env = deep_merge(dev, {})
    env["global"] = {
        **dev["global"],
        "nodePools": {k: v for k, v in dev["global"]["nodePools"].items() if k != "spot-gpu-t4"},
    }
    message = refusal(make(spot=True), env)
    assert "unknown spot GPU type 'nvidia-t4' (set at base.gpuType)" in message
    assert "known spot GPU types: nvidia-a100" in message


def test_spot_refuses_an_on_demand_pool(dev: dict) -> None:
    data = make(spot=True, base={"nodePool": "cpu-optimized"})
    del data["base"]["gpuType"]
    message = refusal(data, dev)
    assert "spot is true but nodePool cpu-optimized (set at base.nodePool) is not a spot pool" in message
    assert "spot-instances" in message


def test_deadlines_become_the_jobs_and_the_pods_deadlines(dev: dict) -> None:
    values = sweep.chart_values(make(deadline="1h30m", configDeadline="90s"), dev)
    assert values["deadlineSeconds"] == 5400 and values["configDeadlineSeconds"] == 90
    assert "deadlineSeconds" not in sweep.chart_values(make(), dev)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"deadline": "30"}, "deadline: '30' does not match"),
        ({"deadline": "0m"}, "deadline '0m' is zero"),
        ({"deadline": "5m", "configDeadline": "10m"}, "configDeadline 10m is longer than the whole sweep's"),
    ],
)
def test_bad_deadlines_are_refused(dev: dict, changes: dict, expected: str) -> None:
    data = make(**changes)
    if "does not match" in expected:
        with pytest.raises(ValuesError) as err:
            sweep.SPEC.validate(data, "bad.yaml")
        assert expected in str(err.value)
    else:
        assert expected in refusal(data, dev)


def test_a_model_path_comes_from_the_model_volume(dev: dict) -> None:
    torchscript = {"model": "torchscript", "modelPath": "/models/resnet50.pt"}
    values = sweep.chart_values(make(base=torchscript, models={"claimName": "models"}), dev)
    assert values["models"] == {"claimName": "models", "mountPath": "/models"}
    assert "has no way into the pod: name the PersistentVolumeClaim" in refusal(make(base=torchscript), dev)
    outside = make(base={**torchscript, "modelPath": "/data/resnet50.pt"}, models={"claimName": "models"})
    assert "modelPath /data/resnet50.pt (set at base.modelPath) is outside the model volume" in refusal(outside, dev)
    escape = make(base={**torchscript, "modelPath": "/models/../etc/x.pt"}, models={"claimName": "models"})
    assert "outside the model volume" in refusal(escape, dev)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("kind: training\nname: x\nbase: {}\n", ["kind:", "rule: enum"]),
        ("kind: model-latency\nname: x\nbase: {batchsize: 4}\n", ["base.batchsize: unknown key"]),
        (
            "kind: model-latency\nname: x\nbase: {}\nmatrix: {precision: [fp8]}\n",
            ["matrix.precision[0]:", "'fp8' is not one of"],
        ),
        ("kind: model-latency\nname: Bad_Name\nbase: {}\n", ["name:", "rule: pattern"]),
        ("kind: model-latency\nbase: {}\n", ["(top level): 'name' is a required property"]),
        ("kind: model-latency\nname: x\nbase: {}\nparallelism: 0\n", ["parallelism:", "rule: minimum"]),
    ],
)
def test_schema_errors_name_the_file_key_and_rule(tmp_path: Path, text: str, parts: list[str]) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(ValuesError) as err:
        sweep.load_sweep(path)
    message = str(err.value)
    assert message.startswith(f"sweep {path} breaks the sweep schema")
    for part in parts:
        assert part in message, message
    assert err.value.exit_code == 5


def test_chart_values_are_plain_yaml(dev: dict) -> None:
    """No anchors or Python objects: the values file helm reads is plain data."""
    text = yaml.safe_dump(sweep.chart_values(make(matrix={"batchSize": [1, 2]}), dev))
    assert "&id" not in text and "!!" not in text
