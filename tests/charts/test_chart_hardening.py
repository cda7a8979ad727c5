"""Production hardening of the component charts, in what each environment renders: disruption
budgets that let unhealthy pods go, zone spread of every multi-replica component, credentials
as read-only files, ephemeral storage sized for the emptyDirs, an authenticated cache."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import Manifest, Pod, environment_values, pods, quantity, template

from deploy.paths import CHARTS, REPO, VALUES
from deploy.workloads.bench import sweep

ZONE = "topology.kubernetes.io/zone"
DIGEST = "sha256:" + "ab" * 32
# Room left in a pod's ephemeral-storage limit beside its emptyDirs: logs and the writable layer.
LOG_ROOM = 256 * 2**20


def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Deployments by component name."""
    return {m["metadata"]["labels"]["app.kubernetes.io/name"]: m for m in manifests if m["kind"] == "Deployment"}


def pod_spec(manifests: list[Manifest], component: str) -> dict[str, Any]:
    return deployments(manifests)[component]["spec"]["template"]["spec"]


def fewest_replicas(manifests: list[Manifest]) -> dict[str, int]:
    """Each component's fewest replicas: the HPA's minimum, else the Deployment's count."""
    return {
        p.labels["app.kubernetes.io/name"]: p.replicas for p in pods(manifests) if p.source.startswith("Deployment/")
    }


def zone_constraints(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in spec.get("topologySpreadConstraints") or [] if c["topologyKey"] == ZONE]


# --- PodDisruptionBudgets


def test_every_pdb_lets_unhealthy_pods_be_evicted(manifests: list[Manifest], env: str) -> None:
    budgets = [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
    if env != "dev":
        assert budgets, env
    for pdb in budgets:
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", pdb["metadata"]["name"]


def test_the_unhealthy_pod_eviction_policy_is_a_value(render) -> None:
    rendered = render("prod", "--set", "wasmCompiler.podDisruptionBudget.unhealthyPodEvictionPolicy=IfHealthyBudget")
    policies = {
        m["metadata"]["name"]: m["spec"]["unhealthyPodEvictionPolicy"]
        for m in rendered
        if m["kind"] == "PodDisruptionBudget"
    }
    assert policies.pop("kai-ml-prod-wasm-compiler") == "IfHealthyBudget"
    assert set(policies.values()) == {"AlwaysAllow"}


def test_every_multi_replica_prod_component_has_a_budget(render) -> None:
    manifests = render("prod")
    budgeted = {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for m in manifests
        if m["kind"] == "PodDisruptionBudget"
    }
    assert budgeted == {name for name, n in fewest_replicas(manifests).items() if n > 1}


# --- Zone spread


def test_multi_replica_components_spread_over_zones(manifests: list[Manifest], env: str) -> None:
    several = {name for name, n in fewest_replicas(manifests).items() if n > 1}
    if env == "prod":
        assert several == {"coordinator", "distributed-processing", "mobile-optimization", "wasm-compiler"}
    for name in several:
        deployment = deployments(manifests)[name]
        (zone,) = zone_constraints(deployment["spec"]["template"]["spec"])
        assert zone["labelSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}, name
        assert zone["maxSkew"] == 1 and zone["whenUnsatisfiable"] == "ScheduleAnyway", name


def test_zone_spread_falls_back_to_global_key_by_key(render) -> None:
    def zones(*args: str) -> dict[str, list[dict[str, Any]]]:
        return {
            name: zone_constraints(d["spec"]["template"]["spec"])
            for name, d in deployments(render("prod", *args)).items()
        }

    off = zones("--set", "global.zoneSpread.enabled=false")
    assert not any(off.values())
    one = zones("--set", "global.zoneSpread.enabled=false", "--set", "wasmCompiler.zoneSpread.enabled=true")
    assert [name for name, c in one.items() if c] == ["wasm-compiler"]
    # A component's `false` wins over the global `true` (no sprig merge treating false as unset).
    but_one = zones("--set", "wasmCompiler.zoneSpread.enabled=false")
    assert not but_one["wasm-compiler"] and all(c for name, c in but_one.items() if name != "wasm-compiler")
    mixed = zones(
        "--set", "global.zoneSpread.maxSkew=2", "--set", "coordinator.zoneSpread.whenUnsatisfiable=DoNotSchedule"
    )
    assert {c[0]["maxSkew"] for c in mixed.values()} == {2}
    assert mixed["coordinator"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert mixed["wasm-compiler"][0]["whenUnsatisfiable"] == "ScheduleAnyway"


# --- Credentials as files


def test_no_container_takes_a_secret_as_environment(manifests: list[Manifest]) -> None:
    for pod in pods(manifests):
        for container in pod.spec["containers"]:
            assert not [e for e in container.get("envFrom") or [] if "secretRef" in e], pod.source
            assert not [e for e in container.get("env") or [] if "secretKeyRef" in e.get("valueFrom", {})], pod.source


def secret_mount(spec: dict[str, Any], secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume of `secret` in a pod spec and its one mount in the pod's one container."""
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret]
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    return volume, mount


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_processing_credentials_are_read_only_files(render, env: str) -> None:
    spec = pod_spec(render(env), "distributed-processing")
    volume, mount = secret_mount(spec, "distributed-processing-credentials")
    assert volume["secret"]["defaultMode"] == 0o400 and mount["readOnly"] is True
    env_vars = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env_vars["CREDENTIALS_DIR"] == mount["mountPath"]


# --- Ephemeral storage


def limit_ranges(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["namespace"]: m["spec"]["limits"][0] for m in manifests if m["kind"] == "LimitRange"}


def effective(pod: Pod, kind: str, limits: dict[str, dict[str, Any]]) -> float:
    """The pod's ephemeral-storage requests or limits as admitted: a container that sets none
    gets its namespace LimitRange's default."""
    default = limits[pod.namespace]["defaultRequest" if kind == "requests" else "default"]
    return sum(
        quantity((c.get("resources") or {}).get(kind, {}).get("ephemeral-storage", default["ephemeral-storage"]))
        for c in pod.spec["containers"]
    )


def empty_dirs(pod: Pod, manifests: list[Manifest]) -> float:
    volumes = pod.spec.get("volumes")
    if pod.source.startswith("WorkflowTemplate/"):
        (template,) = [m for m in manifests if f"WorkflowTemplate/{m['metadata']['name']}" in pod.source]
        volumes = template["spec"].get("volumes")
    return sum(quantity(v["emptyDir"]["sizeLimit"]) for v in volumes or [] if "emptyDir" in v)


def test_limit_ranges_default_ephemeral_storage(manifests: list[Manifest]) -> None:
    for ns, limits in limit_ranges(manifests).items():
        request = quantity(limits["defaultRequest"]["ephemeral-storage"])
        assert 0 < request <= quantity(limits["default"]["ephemeral-storage"]), ns


def test_workloads_set_ephemeral_storage_themselves(manifests: list[Manifest]) -> None:
    for pod in pods(manifests):
        if not pod.source.startswith("Deployment/"):
            continue
        for container in pod.spec["containers"]:
            resources = container["resources"]
            request = quantity(resources["requests"]["ephemeral-storage"])
            assert request <= quantity(resources["limits"]["ephemeral-storage"]), pod.source


def test_ephemeral_storage_limits_cover_the_empty_dirs(manifests: list[Manifest]) -> None:
    """The kubelet evicts a pod whose emptyDirs, logs and writable layers pass the sum of its
    containers' limits: that sum must hold every emptyDir full, and some logs, whether the limit
    is the workload's own or its namespace LimitRange's default."""
    limits = limit_ranges(manifests)
    for pod in pods(manifests):
        assert effective(pod, "requests", limits) <= effective(pod, "limits", limits), pod.source
        assert effective(pod, "limits", limits) >= empty_dirs(pod, manifests) + LOG_ROOM, pod.source
        ceiling = limits[pod.namespace].get("max", {}).get("ephemeral-storage")
        if ceiling:
            assert effective(pod, "limits", limits) <= quantity(ceiling), pod.source


def test_pods_fit_the_ephemeral_storage_of_their_test_nodes(manifests: list[Manifest], env: str) -> None:
    """Fake nodes must offer ephemeral-storage, or the scheduler refuses every pod that requests it."""
    pools = environment_values(env)["global"]["nodePools"]
    limits = limit_ranges(manifests)
    for pod in pods(manifests):
        node = pools[pod.labels["kai-ml.io/node-pool"]]
        assert effective(pod, "requests", limits) <= quantity(node["capacity"]["ephemeral-storage"]), pod.source


# --- The cache


def test_prod_cache_requires_a_password_from_a_secret(render) -> None:
    spec = pod_spec(render("prod"), "cache")
    (container,) = spec["containers"]
    volume, mount = secret_mount(spec, "cache-auth")
    assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    assert volume["secret"]["defaultMode"] == 0o400 and mount["readOnly"] is True
    password_file = f"{mount['mountPath']}/password"
    assert password_file in container["command"][2]
    assert container["args"][container["args"].index("--protected-mode") + 1] == "yes"
    # The password reaches Redis from the file, never through values, arguments or environment.
    assert "requirepass" not in " ".join(container["command"] + container["args"])
    assert not container.get("env")


def test_cache_readiness_is_an_authenticated_ping(render) -> None:
    (container,) = pod_spec(render("prod"), "cache")["containers"]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness != liveness and "tcpSocket" not in readiness
    script = readiness["exec"]["command"][-1]
    assert "REDISCLI_AUTH=" in script and "ping" in script and "PONG" in script


def test_the_cache_clients_read_the_same_password_file(render) -> None:
    manifests = render("prod")
    cache_volume, cache_mount = secret_mount(pod_spec(manifests, "cache"), "cache-auth")
    spec = pod_spec(manifests, "coordinator")
    volume, mount = secret_mount(spec, "cache-auth")
    assert (volume, mount) == (cache_volume, cache_mount)
    env_vars = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env_vars["CACHE_PASSWORD_FILE"] == f"{mount['mountPath']}/password"


def test_dev_cache_runs_without_a_password_only_when_told(render) -> None:
    (container,) = pod_spec(render("dev"), "cache")["containers"]
    assert container["args"][0] == "redis-server" and "command" not in container
    assert not [v for v in pod_spec(render("dev"), "cache")["volumes"] if "secret" in v]
    assert yaml.safe_load((VALUES / "dev.yaml").read_text())["cache"]["auth"]["required"] is False


def test_prod_says_its_cache_is_not_highly_available(render) -> None:
    """One Redis, no budget: visible in the prod values file, not only in a chart default."""
    assert yaml.safe_load((VALUES / "prod.yaml").read_text())["cache"]["highAvailability"] is False
    manifests = render("prod")
    assert deployments(manifests)["cache"]["spec"]["replicas"] == 1
    assert not [m for m in manifests if m["kind"] == "PodDisruptionBudget" and "cache" in m["metadata"]["name"]]


def test_prod_pins_the_cache_image_by_digest(render) -> None:
    values = environment_values("prod")["cache"]["image"]
    (container,) = pod_spec(render("prod"), "cache")["containers"]
    assert values["digest"].startswith("sha256:") and len(values["digest"]) == 71
    assert container["image"] == f"redis@{values['digest']}"


# --- Image digests


IMAGE_KEYS = ["coordinator", "distributedProcessing", "mobileOptimization", "wasmCompiler", "cache", "workflows"]


def test_a_digest_wins_over_the_tag_for_every_image(render) -> None:
    args = ["--set", "global.image.tag=v9.9.9"]
    for key in IMAGE_KEYS:
        args += ["--set", f"{key}.image.digest={DIGEST}", "--set", f"{key}.image.tag=v1"]
    for pod in pods(render("staging", *args)):
        for container in pod.spec["containers"]:
            assert container["image"].endswith(f"@{DIGEST}") and ":v" not in container["image"], pod.source


def test_the_benchmark_runner_image_takes_a_digest_too(helm: str, render, tmp_path: Path) -> None:
    """The one chart outside the umbrella: a sweep's Jobs, whose pods rely on the benchmarks
    namespace's LimitRange for ephemeral storage."""
    values = sweep.plan_sweep(sorted((REPO / "examples" / "sweeps").glob("*.yaml"))[0], environment_values("prod"))
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    jobs = template(helm, CHARTS / "benchmark", "-f", str(file), "--set", f"runner.image.digest={DIGEST}")
    limits = limit_ranges(render("prod"))
    found = pods(jobs)
    assert found
    for pod in found:
        assert all(c["image"].endswith(f"@{DIGEST}") for c in pod.spec["containers"]), pod.source
        assert effective(pod, "limits", limits) >= empty_dirs(pod, jobs) + LOG_ROOM, pod.source
