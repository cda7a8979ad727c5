"""The deploy tool against the local control plane, with the fixture chart suite (same shape as the
real one). The tests run in file order and share the cluster's state: each builds on the last."""

import base64
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from deploy.errors import DeployError, PlanError
from deploy.kube.helm import Helm, run
from deploy.paths import REPO
from deploy.platform.apply import ApplyOptions
from deploy.platform.deployer import Result, deploy
from deploy.platform.prepare import Selection
from deploy.platform.request import Request
from deploy.platform.state import decode_release
from deploy.platform.values import Inputs

pytestmark = pytest.mark.cluster
NS = "default"


def request_for(suite, kube: Path, env: str, **kw) -> Request:
    inputs = Inputs(env=env, tag=kw.pop("tag", "v1"), sets=kw.pop("sets", []), context=None, namespace=NS)
    return Request(
        inputs=inputs,
        selection=Selection(only=kw.pop("only", []), with_deps=kw.pop("with_deps", False)),
        kubeconfig=kube,
        apply=ApplyOptions(timeout="60s", parallel=4),
        runs_root=suite.runs,
        values_dir=suite.values,
        charts_dir=suite.charts,
        **kw,
    )


def actions(result: Result) -> dict[str, str]:
    return {o.release.name: o.action for o in result.outcomes}


def cli(suite, kube: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAIML_CHARTS_DIR": str(suite.charts),
        "KAIML_VALUES_DIR": str(suite.values),
        "KAIML_RUNS_DIR": str(suite.runs),
        "COLUMNS": "300",
    }
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args, "--kubeconfig", str(kube)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def helm_status(kube: Path, release: str) -> dict | None:
    return run(Helm(kubeconfig=kube).status(release, NS))


def test_only_without_deps_refuses_when_needs_are_missing(shared_suite, kube):
    with pytest.raises(PlanError, match="dev-coordinator needs dev-platform-policy"):
        deploy(request_for(shared_suite, kube, "dev", only=["coordinator"]))
    assert helm_status(kube, "dev-coordinator") is None  # nothing applied


def test_only_with_deps_applies_just_what_it_needs(shared_suite, kube):
    runs_before = set(shared_suite.runs.iterdir())  # the refused run's folder is kept
    result = deploy(request_for(shared_suite, kube, "dev", only=["coordinator"], with_deps=True))
    assert result.ok
    assert actions(result) == {
        "platform-cluster": "installed",
        "dev-platform-policy": "installed",
        "dev-coordinator": "installed",
    }
    assert helm_status(kube, "dev-workflows") is None
    assert result.kept_run is None and set(shared_suite.runs.iterdir()) == runs_before  # removed after a success


def test_only_without_deps_once_needs_are_deployed(shared_suite, kube):
    result = deploy(request_for(shared_suite, kube, "dev", only=["coordinator"], sets=["coordinator.message=hi"]))
    assert actions(result) == {"dev-coordinator": "upgraded"}


def test_full_deploy_skips_workflows_without_argo(shared_suite, kube):
    result = deploy(request_for(shared_suite, kube, "staging"))
    assert result.ok
    assert actions(result) == {
        "platform-cluster": "unchanged",  # shared: dev's install serves staging too
        "staging-platform-policy": "installed",
        "staging-coordinator": "installed",
        "staging-cache": "installed",
    }
    assert "Argo CRD" in result.prepared.plan.excluded["workflows"]


def test_workflows_applied_once_the_crd_exists(shared_suite, kube, argo_crd):
    result = deploy(request_for(shared_suite, kube, "staging"))
    assert result.ok
    assert actions(result)["staging-workflows"] == "installed"
    assert {a for n, a in actions(result).items() if n != "staging-workflows"} == {"unchanged"}


def test_noop_rerun_applies_nothing_and_is_fast(shared_suite, kube):
    t0 = time.monotonic()
    r = cli(shared_suite, kube, "--env", "staging", "--tag", "v1", "--output", "json")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(r.stdout)
    assert data["counts"] == {"unchanged": 5}
    assert elapsed < 3.0, f"no-op redeploy took {elapsed:.1f}s"


def test_diff_exit_codes(shared_suite, kube):
    same = cli(shared_suite, kube, "diff", "--env", "staging", "--tag", "v1")
    assert same.returncode == 0, same.stderr
    assert "nothing would change" in same.stderr
    changed = cli(shared_suite, kube, "diff", "--env", "staging", "--tag", "v2", "--set", "cache.message=s3cr3t")
    assert changed.returncode == 2, changed.stderr
    assert "image: registry.example.com/cache:v2" in changed.stdout or "cache:v2" in changed.stdout
    assert "Secret/fx-staging-platform/staging-cache-token changed" in changed.stdout
    assert "<hidden sha256:" in changed.stdout  # Secret data never shown
    secret = next(line for line in changed.stdout.splitlines() if line.startswith("+  token:"))
    assert "hidden" in secret
    # A CI job tells a typo from a real diff by the exit code: usage errors are 64, never 2.
    typo = cli(shared_suite, kube, "diff", "--env", "staging", "--tag", "v2", "--only", "coordinatr")
    assert typo.returncode == 64, typo.stderr
    assert "unknown component in --only: coordinatr" in typo.stderr


def test_diff_into_a_closed_pipe_keeps_its_exit_code(shared_suite, kube):
    """`./deploy.sh diff | head -1`: the reader leaves early; the exit code still says "changes"."""
    env = {
        **os.environ,
        "KAIML_CHARTS_DIR": str(shared_suite.charts),
        "KAIML_VALUES_DIR": str(shared_suite.values),
        "KAIML_RUNS_DIR": str(shared_suite.runs),
    }
    cmd = [sys.executable, "-m", "deploy", "diff", "--env", "staging", "--tag", "v9", "--kubeconfig", str(kube)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # as `head` does once it has its lines
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err


def test_failing_release_is_rolled_back_and_earlier_ones_stay(shared_suite, kube):
    before = helm_status(kube, "staging-cache")
    r = cli(shared_suite, kube, "--env", "staging", "--tag", "v2", "--set", "cache.fail=true")
    assert r.returncode == 1, r.stderr
    assert "staging-cache failed" in r.stderr and "Invalid_Name_Fails" in r.stderr
    assert "not started: staging-workflows" in r.stderr
    kept = r.stderr.split("kept in ")[-1].strip().rstrip(".")
    assert (Path(kept) / "values" / "staging-cache.yaml").exists()  # the run folder is kept
    after = helm_status(kube, "staging-cache")
    assert after["info"]["status"] == "deployed" and after["version"] > before["version"]  # rolled back
    assert "v1" in yaml.safe_dump(run(Helm(kubeconfig=kube).values("staging-cache", NS)))
    coord = helm_status(kube, "staging-coordinator")
    assert coord["info"]["status"] == "deployed" and coord["version"] == 2  # applied before the failure, kept


def test_rerun_after_the_fix_applies_the_rest(shared_suite, kube):
    result = deploy(request_for(shared_suite, kube, "staging", tag="v2"))
    assert result.ok
    a = actions(result)
    assert a["staging-cache"] == "upgraded" and a["staging-workflows"] == "upgraded"
    assert a["staging-coordinator"] == "unchanged"


def test_release_stuck_in_pending_is_recovered(shared_suite, kube):
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(str(kube)))
    secrets = core.list_namespaced_secret(NS, label_selector="owner=helm,name=staging-cache,status=deployed").items
    latest = max(secrets, key=lambda s: int(s.metadata.labels["version"]))
    record = decode_release(latest.data["release"])
    record["info"]["status"] = "pending-upgrade"  # what a killed `helm upgrade` leaves behind
    payload = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(record).encode()))).decode()
    core.patch_namespaced_secret(
        latest.metadata.name,
        NS,
        {"metadata": {"labels": {"status": "pending-upgrade"}}, "data": {"release": payload}},
    )
    result = deploy(request_for(shared_suite, kube, "staging", tag="v2"))
    assert result.ok, [o.detail for o in result.outcomes]
    cache = next(o for o in result.outcomes if o.release.name == "staging-cache")
    assert cache.action == "upgraded"


def test_status_and_rollback_commands(shared_suite, kube):
    r = cli(shared_suite, kube, "status", "--env", "staging", "--tag", "v2", "--output", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["release"]: row for row in yaml.safe_load(r.stdout)}
    assert rows["staging-coordinator"]["status"] == "deployed"
    r = cli(shared_suite, kube, "rollback", "coordinator", "1", "--env", "staging")
    assert r.returncode == 0, r.stderr
    assert helm_status(kube, "staging-coordinator")["info"]["status"] == "deployed"
    again = deploy(request_for(shared_suite, kube, "staging", tag="v2"))
    assert actions(again)["staging-coordinator"] == "upgraded"  # a rollback is a change the next run undoes


def test_errors_from_the_cluster_are_deploy_errors(shared_suite, kube):
    with pytest.raises(DeployError, match="release namespace 'missing-ns'"):
        req = request_for(shared_suite, kube, "staging")
        req.inputs.namespace = "missing-ns"
        deploy(req)


def test_cluster_up_knows_an_environment_that_exists_only_as_a_template(shared_suite, cluster, kubectl):
    """The fixture's staging is values/staging.yaml.j2 only: `cluster up -e staging` reads it through the
    one values loader (rendered) and adds its pool's fake node to the running cluster."""
    assert not (shared_suite.values / "staging.yaml").exists()
    env = {**os.environ, "KAIML_CHARTS_DIR": str(shared_suite.charts), "KAIML_VALUES_DIR": str(shared_suite.values)}
    up = [sys.executable, "-m", "deploy", "cluster", "up", "-e", "staging", "--name", cluster.name, "--no-real-node"]
    r = subprocess.run(up, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(cluster.kubeconfig)
    nodes = subprocess.run(
        [*kubectl, "get", "nodes", "-l", "kaiml.dev/pool=system", "-o", "name"], capture_output=True, text=True
    )
    assert nodes.stdout.strip(), nodes.stderr


def test_nodes_reports_each_pool_with_its_nodes(shared_suite, kube):
    r = cli(shared_suite, kube, "nodes", "--env", "dev", "-o", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["pools"]["system"] and report["fixes"] == []
    assert report["unassigned"]  # the real environments' nodes are in no pool of the fixture


def test_both_clients_answer_the_preflight_and_read_the_releases_alike(shared_suite, kube):
    """The checks are written once against the read interface: the standard-library client (the no-op
    path) and the kubernetes package's (the full path) give the same answers from the same server."""
    from kubernetes import config

    from deploy.kube.reader import ClientReader
    from deploy.kube.readonly import KubeAPI
    from deploy.platform.charts import kube_version_floor
    from deploy.platform.nodepools import node_pools
    from deploy.platform.preflight import run_preflight
    from deploy.platform.state import read_deployed
    from deploy.platform.values import load_environment

    pools = node_pools(load_environment("staging", shared_suite.values, shared_suite.charts))
    floor = kube_version_floor(shared_suite.charts)
    answers = []
    for reader in (KubeAPI.from_kubeconfig(kube, None), ClientReader(config.new_client_from_config(str(kube)))):
        answers.append(
            (run_preflight(reader, "the test cluster", pools, "warn", True, floor), read_deployed(reader, NS))
        )
    assert answers[0] == answers[1]
    pre, deployed = answers[0]
    assert pre.server_version.startswith("v1.") and "staging-coordinator" in deployed
