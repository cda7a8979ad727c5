"""`./deploy.sh` with the real charts and environment files, on the session's local control plane:
each environment deploys in full, a re-run applies nothing, environments sharing the cluster converge
on one cluster-scoped release, and destroy leaves the shared release to the environments still there."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from envsecrets import create_credentials, credentials
from kubernetes import client

from deploy import tools
from deploy.paths import REPO
from deploy.platform.values import environments

pytestmark = pytest.mark.cluster


def cli(kubeconfig: Path, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args, "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """release -> action, from `-o json`."""
    assert result.returncode == 0, result.stderr
    return {row["release"]: row["action"] for row in json.loads(result.stdout)["releases"]}


@pytest.fixture(scope="module")
def deployed(kubeconfig: Path, argo_crd: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every environment deployed once with Argo's CRD present (so workflows deploy too). The
    credentials Secrets are made first, as the README tells an operator to: their namespace before the
    platform's, which the first deploy then adopts."""
    for env in environments():
        create_credentials(client.ApiClient(_config(kubeconfig)), env)
    runs = tmp_path_factory.mktemp("runs")
    yield runs
    for env in reversed(environments()):
        done = cli(kubeconfig, runs, "destroy", "--env", env, "--yes")
        assert done.returncode == 0, done.stderr


def test_a_missing_credentials_secret_is_refused_before_anything_is_applied(deployed: Path, kubeconfig: Path) -> None:
    env = next(e for e in environments() if credentials(e))
    namespace, _ = credentials(env)
    r = cli(kubeconfig, deployed, "--env", env, "--set", "distributedProcessing.credentials.existingSecret=absent")
    assert r.returncode == 1, r.stderr
    assert f"Secrets that the releases reference do not exist: {namespace}/absent (needed by " in r.stderr
    assert "Nothing was applied" in r.stderr and "Traceback" not in r.stderr
    helm = [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig)]
    listed = subprocess.run([*helm, "list", "-q"], capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in listed if name.startswith(f"{env}-")], listed


@pytest.mark.parametrize("env", environments())
def test_full_deploy_then_a_rerun_applies_nothing(deployed: Path, kubeconfig: Path, env: str) -> None:
    run = cli(kubeconfig, deployed, "--env", env, "-o", "json")
    if credentials(env):  # its namespace was made by hand for the Secret: adopted, not refused
        assert f"adopting namespace {credentials(env)[0]} into release {env}-platform-policy" in run.stderr
        assert "s3cr3t-value" not in run.stdout + run.stderr  # no Secret value in any output
    first = summary(run)
    assert f"{env}-workflows" in first
    assert set(first.values()) <= {"installed", "upgraded", "unchanged"}, first
    assert all(first[r] in ("installed", "upgraded") for r in first if r != "platform-cluster"), first
    again = summary(cli(kubeconfig, deployed, "--env", env, "-o", "json"))
    assert set(again.values()) == {"unchanged"}, again


def test_environments_sharing_the_cluster_converge(deployed: Path, kubeconfig: Path) -> None:
    """After every environment has deployed, each one's re-run is still a no-op, the shared
    cluster-scoped release included (it carries no environment's values)."""
    for env in environments():
        rerun = summary(cli(kubeconfig, deployed, "--env", env, "-o", "json"))
        assert set(rerun.values()) == {"unchanged"}, (env, rerun)


def status(kubeconfig: Path, runs: Path, env: str) -> dict[str, bool]:
    """release -> up to date, from `status -o json`."""
    done = cli(kubeconfig, runs, "status", "--env", env, "-o", "json")
    assert done.returncode == 0, done.stderr
    return {row["release"]: row["current"] for row in json.loads(done.stdout)}


def test_one_environments_tag_does_not_churn_the_shared_release(deployed: Path, kubeconfig: Path) -> None:
    """--tag is one environment's image tag: deploying prod with it upgrades prod's components but
    not platform-cluster, so dev stays up to date, and prod with another tag leaves it alone again."""
    for env in ("dev", "prod"):  # as the tests above leave them (a no-op then)
        summary(cli(kubeconfig, deployed, "--env", env, "-o", "json"))
    assert all(status(kubeconfig, deployed, "dev").values())
    revisions = len(history(kubeconfig))  # earlier test modules may have installed it before
    try:
        for tag in ("v7.0.1", "v7.0.2"):
            tagged = summary(cli(kubeconfig, deployed, "--env", "prod", "--tag", tag, "-o", "json"))
            assert tagged["platform-cluster"] == "unchanged", (tag, tagged)
            assert tagged["prod-coordinator"] == "upgraded", (tag, tagged)
            assert all(status(kubeconfig, deployed, "dev").values()), tag
    finally:
        # Back to what the other tests expect: prod as deployed without a tag.
        back = summary(cli(kubeconfig, deployed, "--env", "prod", "-o", "json"))
    assert back["platform-cluster"] == "unchanged", back
    labels = (
        client.SchedulingV1Api(client.ApiClient(_config(kubeconfig))).read_priority_class("interactive").metadata.labels
    )
    chart = yaml.safe_load((REPO / "charts" / "platform-cluster" / "Chart.yaml").read_text())
    assert labels["app.kubernetes.io/version"] == chart["appVersion"], labels  # not a tag
    assert len(history(kubeconfig)) == revisions, "platform-cluster was upgraded"


def history(kubeconfig: Path) -> list[dict]:
    helm = [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig)]
    done = subprocess.run(
        [*helm, "history", "platform-cluster", "-o", "json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_destroy_keeps_the_shared_release_while_others_remain(deployed: Path, kubeconfig: Path) -> None:
    first, *rest = environments()
    done = cli(kubeconfig, deployed, "destroy", "--env", first, "--yes")
    assert done.returncode == 0, done.stderr
    assert "kept platform-cluster" in done.stderr
    scheduling = client.SchedulingV1Api(client.ApiClient(_config(kubeconfig)))
    assert {"interactive", "preemptible"} <= {pc.metadata.name for pc in scheduling.list_priority_class().items}
    for env in rest:
        assert set(summary(cli(kubeconfig, deployed, "--env", env, "-o", "json")).values()) == {"unchanged"}
    helm = [str(tools.tool("helm")), "--kubeconfig", str(kubeconfig)]
    listed = subprocess.run([*helm, "list", "-q"], capture_output=True, text=True, check=True).stdout.split()
    assert not [r for r in listed if r.startswith(f"{first}-")]


def _config(kubeconfig: Path) -> client.Configuration:
    from kubernetes import config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return cfg
