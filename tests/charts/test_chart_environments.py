"""What distinguishes the environments: dev is small, prod has the reference's sizes (001)."""

from chartkit import Manifest, quantity


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def test_dev_runs_one_replica_of_everything(render) -> None:
    manifests = render("dev")
    assert all(m["spec"]["replicas"] == 1 for m in manifests if m["kind"] == "Deployment")
    assert all(m["spec"]["minReplicas"] <= 1 for m in manifests if m["kind"] == "HorizontalPodAutoscaler")
    assert not [m for m in manifests if m["kind"] == "PodDisruptionBudget"]


def test_prod_platform_quota_is_the_reference_kai_ml_quota(render) -> None:
    hard = find(render("prod"), "ResourceQuota", "platform-quota")["spec"]["hard"]
    expected = {
        "pods": "100",
        "requests.cpu": "100",
        "limits.cpu": "200",
        "requests.memory": "200Gi",
        "limits.memory": "400Gi",
        "requests.nvidia.com/gpu": "16",
    }
    assert {k: hard[k] for k in expected} == expected


def test_prod_coordinator_is_highly_available(render) -> None:
    manifests = render("prod")
    hpa = find(manifests, "HorizontalPodAutoscaler", "kai-ml-prod-coordinator")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert find(manifests, "PodDisruptionBudget", "kai-ml-prod-coordinator")["spec"]["minAvailable"] == 2
    pod = find(manifests, "Deployment", "kai-ml-prod-coordinator")["spec"]["template"]["spec"]
    assert "podAntiAffinity" in pod["affinity"]
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == ["topology.kubernetes.io/zone"]


def test_quotas_grow_from_dev_to_prod(render) -> None:
    def platform_cpu(env: str) -> float:
        quotas = [m for m in render(env) if m["kind"] == "ResourceQuota" and m["metadata"]["name"] == "platform-quota"]
        return quantity(quotas[0]["spec"]["hard"]["requests.cpu"])

    assert platform_cpu("dev") < platform_cpu("staging") < platform_cpu("prod")
