"""A person with the documented team-member role, and the benchmark-launcher ServiceAccount, launch,
follow and delete a sweep in the benchmarks namespace on the real API server: impersonated, with the
project's helm (`--kube-as-user`) and the deploy tool's own follower. The release is kept as
ConfigMaps in the benchmarks namespace (deploy/workloads/release.py), so neither needs to read a
Secret; Helm's Secret storage, a namespace outside the environment (and, for the launcher, any
namespace but benchmarks) are refused by RBAC. Uses the prod install of test_workload_admission.py
(its `namespaces` fixture: platform-cluster, then prod with the team member named)."""

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from test_workload_admission import TEAM_MEMBER, as_user, namespaces  # noqa: F401 (the fixture)

from deploy import tools
from deploy.cluster.controlplane import LocalCluster
from deploy.paths import CHARTS, REPO
from deploy.platform import charts
from deploy.platform.values import load_environment
from deploy.workloads.bench.sweep import plan_sweep
from deploy.workloads.bench.workload import BENCH
from deploy.workloads.follow import Followed, follow
from deploy.workloads.release import HELM_DRIVER, release_namespace
from deploy.workloads.store import ResultStore, read_records
from deploy.workloads.tracker import DONE

pytestmark = pytest.mark.cluster

SWEEP_FILE = REPO / "tests" / "fixtures" / "bench-sweep.yaml"
# kwok serves tests/fixtures/pod.log as the log of pods with this label (tests/conftest.py).
LOG_LABELS = {"kai-ml.io/test-logs": "true"}
LAUNCHER = "benchmark-launcher"


def helm_as(kubeconfig: Path, user: str, *args: str, driver: str = "configmap") -> subprocess.CompletedProcess[str]:
    command = [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig), "--kube-as-user", user, *args]
    env = {**os.environ, HELM_DRIVER: driver}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def sweep_values(tmp_path: Path, benchmarks: str | None = None) -> tuple[dict[str, Any], Path]:
    values = plan_sweep(SWEEP_FILE, load_environment("prod"))
    values["podLabels"] = LOG_LABELS
    if benchmarks:
        values["global"]["namespaces"]["benchmarks"] = benchmarks
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    return values, file


def user_of(who: str, names: dict[str, str]) -> str:
    return f"system:serviceaccount:{names['benchmarks']}:{who}" if who == LAUNCHER else who


@pytest.mark.parametrize("who", [TEAM_MEMBER, LAUNCHER])
def test_a_sweep_is_launched_followed_and_deleted(
    cluster: LocalCluster,
    namespaces: dict[str, str],  # noqa: F811 (the fixture)
    tmp_path: Path,
    who: str,
) -> None:
    user = user_of(who, namespaces)
    charts.build_dependencies(tools.tool("helm"), [CHARTS / "benchmark"])
    values, file = sweep_values(tmp_path)
    ns = release_namespace(BENCH, values)
    assert ns == namespaces["benchmarks"]  # the release lives beside its Jobs
    name = BENCH.release(BENCH.run_name(values))
    kube = cluster.kubeconfig

    installed = helm_as(kube, user, "install", name, str(CHARTS / "benchmark"), "-n", ns, "-f", str(file))
    assert installed.returncode == 0, installed.stderr
    try:
        api = as_user(cluster, user)
        run = Followed.of(BENCH, values, BENCH.namespace(values, ns))
        tracker = follow(api, run, ResultStore(tmp_path / "runs"), deadline_s=120)
        assert tracker.counts()[DONE] == len(values["configs"]), tracker.reasons
        assert len(list(read_records(tmp_path / "runs" / "results.jsonl"))) == len(values["configs"])
        # The release's records are ConfigMaps in the benchmarks namespace, which the launcher may read.
        listed = helm_as(kube, user, "list", "-n", ns, "-q")
        assert listed.returncode == 0 and name in listed.stdout.split(), listed.stderr
    finally:
        deleted = helm_as(kube, user, "uninstall", name, "-n", ns, "--wait", "--timeout", "2m")
    assert deleted.returncode == 0, deleted.stderr
    selector = f"kai-ml.io/benchmark={BENCH.run_name(values)}"
    assert not client.BatchV1Api(cluster.api_client()).list_namespaced_job(ns, label_selector=selector).items


@pytest.mark.parametrize("who", [TEAM_MEMBER, LAUNCHER])
def test_no_secret_storage_and_no_other_namespace(
    cluster: LocalCluster,
    namespaces: dict[str, str],  # noqa: F811 (the fixture)
    tmp_path: Path,
    who: str,
) -> None:
    kube, user = cluster.kubeconfig, user_of(who, namespaces)
    chart = str(CHARTS / "benchmark")
    values, file = sweep_values(tmp_path)
    name = BENCH.release(BENCH.run_name(values))
    # Helm's default Secret storage in the benchmarks namespace: no Secret rights there.
    as_secrets = helm_as(kube, user, "install", name, chart, "-n", namespaces["benchmarks"], "-f", str(file),
                         driver="secret")  # fmt: skip
    assert as_secrets.returncode != 0
    assert "secrets is forbidden" in as_secrets.stderr, as_secrets.stderr
    # A namespace outside the environment (the team member's role is bound in its namespaces only);
    # the launcher's Role holds in the benchmarks namespace alone.
    others = ["default"] + ([namespaces["platform"], namespaces["training"]] if who == LAUNCHER else [])
    for ns in others:
        _, elsewhere = sweep_values(tmp_path, ns)
        refused = helm_as(kube, user, "install", name, chart, "-n", ns, "-f", str(elsewhere))
        assert refused.returncode != 0, ns
        assert "forbidden" in refused.stderr, refused.stderr
    core = client.CoreV1Api(as_user(cluster, user))
    for ns in namespaces.values():
        with pytest.raises(client.ApiException) as err:
            core.list_namespaced_secret(ns)
        assert err.value.status == 403
