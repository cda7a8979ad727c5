"""Training specs checked before anything is applied, the key named; the chart values they become (one
group, one unit, the reference resources, GPUs only where the pool has them, egress to the store only)."""

from pathlib import Path
from typing import Any

import pytest
from train_cli import write_spec

from deploy.errors import ValuesError
from deploy.paths import REPO
from deploy.platform.values import deep_merge, load_environment
from deploy.workloads.train import spec

DEV = load_environment("dev")
WITHOUT_POLICY = deep_merge(DEV, {"policy": {"enabled": False}})


@pytest.mark.parametrize(
    ("change", "key", "rule"),
    [
        ({"framework": "torchvision", "model": "resnet9000"}, "model", "unknown torchvision classification model"),
        ({"model": "transformer"}, "model", "unknown model 'transformer' of framework runner"),
        ({"epochs": 0}, "epochs", "minimum"),
        ({"nodePool": None, "gpuType": "nvidia-h100"}, "gpuType", "no pool of global.nodePools has it"),
        ({"nodePool": "gpu-huge"}, "nodePool", "is not a node pool"),
        ({"resources": {"limits": {"memory": "200Gi"}}}, "resources.limits.memory", "quota limits.memory: 64Gi"),
        (
            {"resources": {"requests": {"cpu": "9"}, "limits": {"cpu": "9"}}},
            "resources.requests.cpu",
            "policy.namespaces.training.quota requests.cpu: 8",
        ),
        ({"nodePool": "gpu-high-end", "gpuCount": 2}, "gpuCount", "policy.namespaces.training.quota"),
        ({"resources": {"requests": {"nvidia.com/gpu": 1}}}, "resources.requests", "nvidia.com/gpu"),
        ({"nodes": 2}, "nodes", "maximum"),
        ({"learningRate": 0}, "learningRate", "exclusiveMinimum"),
        ({"epoch": 3}, "epoch", "unknown key"),
        ({"objectStore": {"endpoint": "http://store:9000/path"}}, "objectStore.endpoint", "pattern"),
        ({"priorityClassName": "urgent"}, "priorityClassName", "is not a PriorityClass"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(tmp_path: Path, change: dict[str, Any], key: str, rule: str) -> None:
    path = write_spec(tmp_path, "bad", **change)
    with pytest.raises(ValuesError) as caught:
        spec.plan(path, DEV)
    message = str(caught.value)
    assert str(path) in message and f"{key}:" in message and rule in message, message


def test_a_gpu_run_gets_the_reference_resources_and_one_job(tmp_path: Path) -> None:
    values = spec.plan(write_spec(tmp_path, "gpu", nodePool=None, gpuType="nvidia-a100", resources=None), DEV)
    job = values["job"]
    assert job["nodePool"] == "gpu-high-end" and job["gpuType"] == "nvidia-a100"
    assert job["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 1},
        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
    }
    assert values["groups"] == [{"name": "train", "indexes": [0]}]
    [unit] = values["units"]
    assert unit["index"] == 0 and unit["config"]["gpuCount"] == 1 and "name" not in unit["config"]
    assert values["global"]["namespaces"] == {"training": "training-dev"}


def test_a_cpu_run_has_no_gpu_and_an_ip_store_narrows_the_egress(tmp_path: Path) -> None:
    """Without platform-policy the chart's own NetworkPolicy allows the store's address and port only."""
    store = {"endpoint": "http://10.1.2.3:9000", "credentialsSecret": "store-keys"}
    values = spec.plan(write_spec(tmp_path, "cpu", objectStore=store), WITHOUT_POLICY)
    res = values["job"]["resources"]
    # null deletes the chart's default GPU (Helm's rule for a default key)
    assert res["requests"]["nvidia.com/gpu"] is None and res["limits"]["nvidia.com/gpu"] is None
    assert values["objectStore"]["endpoint"] == "http://10.1.2.3:9000"
    assert values["objectStore"]["credentialsSecret"] == "store-keys"
    assert values["networkPolicy"] == {"objectStore": {"cidrs": ["10.1.2.3/32"], "except": [], "ports": [9000]}}
    spec.check_store_reachable(values, WITHOUT_POLICY)  # the chart's policy lets it out: nothing to check


def test_under_platform_policy_the_run_has_no_policy_of_its_own_and_its_store_must_be_allowed(tmp_path: Path) -> None:
    """As for sweeps: platform-policy's egress rules confine the pod, so the submitter needs no NetworkPolicy
    rights; a store those rules do not allow (an address, or a host name's port) is refused naming the key and
    the rules, and a rule in the environment's values lets it through."""
    values = spec.plan(write_spec(tmp_path, "cpu"), DEV)
    assert values["networkPolicy"] == {"enabled": False}
    spec.check_store_reachable(values, DEV)  # the chart's default store: a name on 443, dev's training rule
    for endpoint, target in (("http://10.213.3.1:9000", "10.213.3.1/32 port 9000"),
                             ("http://store.example.com:9000", "port 9000")):  # fmt: skip
        store = {**values["objectStore"], "endpoint": endpoint}
        with pytest.raises(ValuesError) as caught:
            spec.check_store_reachable({**values, "objectStore": store}, DEV)
        message = str(caught.value)
        assert message.startswith(f"objectStore.endpoint: the training pods may not reach {endpoint}"), message
        assert "training-object-storage: 0.0.0.0/0 except 10.0.0.0/8" in message and "ports 443" in message
        assert f"Add a rule for {target}" in message and "Nothing was applied" in message
    rule = {"namespace": "training", "podLabels": {}, "cidrs": ["10.213.0.0/16"], "except": [], "ports": [9000]}
    allowed = deep_merge(DEV, {"policy": {"networkPolicies": {"externalEgress": {"local-store": rule}}}})
    spec.check_store_reachable({**values, "objectStore": {"endpoint": "http://10.213.3.1:9000"}}, allowed)
    elsewhere = deep_merge(allowed, {"policy": {"networkPolicies": {"externalEgress": {
        "local-store": {"namespace": "platform"}}}}})  # fmt: skip
    with pytest.raises(ValuesError):
        spec.check_store_reachable({**values, "objectStore": {"endpoint": "http://10.213.3.1:9000"}}, elsewhere)


def test_the_examples_plan_in_every_environment() -> None:
    from deploy.platform.values import environments

    for env in environments():
        for path in sorted((REPO / "examples" / "training").glob("*.yaml")):
            values = spec.plan(path, load_environment(env))
            assert values["run"]["name"] == path.stem


def test_the_store_rule_follows_the_endpoint_that_set_gives() -> None:
    """`--set objectStore.endpoint=http://IP:PORT` after planning: the pod's egress rule is that address and
    port (a rule from the spec's endpoint would refuse it); a host name keeps the outside-the-cluster rule."""
    from deploy.workloads.train.spec import chart_defaults, with_store_egress

    values = {"objectStore": {"endpoint": "http://10.213.30.1:33991"}, "networkPolicy": {"enabled": True}}
    rule = with_store_egress(values)["networkPolicy"]
    assert rule["objectStore"] == {"cidrs": ["10.213.30.1/32"], "except": [], "ports": [33991]} and rule["enabled"]
    named = with_store_egress({**values, "objectStore": {"endpoint": "https://r2.example.com"}})
    default = chart_defaults()["networkPolicy"]["objectStore"]
    assert named["networkPolicy"]["objectStore"] == {**default, "ports": [443]}
