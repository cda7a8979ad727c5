"""The no-op fast path (deploy.platform.noop) against the local control plane, with the fixture chart suite:
taken when nothing changed (without the kubernetes package or helm), and not taken when a value
changed, a release was rolled back or upgraded by hand, or its newest revision is failed or pending.
The tests run in file order and build on each other's state."""

import base64
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.kube.helm import Helm, run
from deploy.paths import REPO
from deploy.platform import deployer
from deploy.platform.apply import ApplyOptions
from deploy.platform.deployer import Result, deploy
from deploy.platform.prepare import Selection
from deploy.platform.request import Request
from deploy.platform.state import DIGEST_LABEL, REVISION_LABEL, decode_release
from deploy.platform.values import Inputs

pytestmark = pytest.mark.cluster
NS = "default"
ENV = "staging"


def request_for(suite, kube: Path, tag: str = "fp1", sets: list[str] | None = None) -> Request:
    return Request(
        inputs=Inputs(env=ENV, tag=tag, sets=list(sets or []), namespace=NS),
        selection=Selection(),
        kubeconfig=kube,
        apply=ApplyOptions(timeout="60s", parallel=4),
        runs_root=suite.runs,
        values_dir=suite.values,
        charts_dir=suite.charts,
    )


def fast(req: Request) -> tuple[bool, Result]:
    """Deploy; whether the fast path decided it."""
    result = deploy(req)
    assert result.ok, [o.detail for o in result.outcomes]
    return result.fast_path, result


def actions(result: Result) -> dict[str, str]:
    return {o.release.name: o.action for o in result.outcomes}


def core(kube: Path):
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(kube)))


def newest_secret(kube: Path, release: str):
    items = core(kube).list_namespaced_secret(NS, label_selector=f"owner=helm,name={release}").items
    return max(items, key=lambda s: int(s.metadata.labels["version"]))


def test_apply_puts_the_digest_labels_on_the_storage_secret(shared_suite, kube):
    taken, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))
    assert not taken
    assert "upgraded" in actions(result).values() or "installed" in actions(result).values()
    for o in result.outcomes:
        labels = newest_secret(kube, o.release.name).metadata.labels
        assert labels[DIGEST_LABEL] == result.prepared.digests[o.release.alias][:40]
        assert labels[REVISION_LABEL] == labels["version"] == str(o.revision)


def test_noop_takes_the_fast_path(shared_suite, kube, monkeypatch):
    def no_connect(*args, **kwargs):
        raise AssertionError("the fast path must not connect the kubernetes client")

    monkeypatch.setattr(deployer, "open_session", no_connect)
    taken, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))
    assert taken
    assert set(actions(result).values()) == {"unchanged"}
    assert result.kept_run is None  # the run folder is removed after a success, as on the full path


def test_noop_cli_imports_neither_kubernetes_nor_pyhelm3(shared_suite, kube):
    args = ["--env", ENV, "--tag", "fp1", "--set", "cache.message=fastpath-1", "--kubeconfig", str(kube), "-o", "json"]
    code = (
        "import sys\nfrom deploy.cli import main\n"
        f"sys.argv = ['deploy', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as err:\n    assert not err.code, err.code\n"
        "sys.stderr.write('IMPORTED=' + ','.join(m for m in ('kubernetes', 'pyhelm3') if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "KAIML_CHARTS_DIR": str(shared_suite.charts),
        "KAIML_VALUES_DIR": str(shared_suite.values),
        "KAIML_RUNS_DIR": str(shared_suite.runs),
    }
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.endswith("IMPORTED="), r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"env", "ok", "counts", "releases", "excluded", "dry_run", "seconds", "run_folder"}
    assert data["ok"] and list(data["counts"]) == ["unchanged"]
    assert set(data["releases"][0]) == {
        "release",
        "component",
        "chart",
        "level",
        "action",
        "revision",
        "seconds",
        "detail",
        "events",
    }


def test_a_changed_value_takes_the_full_path(shared_suite, kube):
    taken, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-2"]))
    assert not taken
    assert actions(result)[f"{ENV}-cache"] == "upgraded"
    assert {a for n, a in actions(result).items() if n != f"{ENV}-cache"} == {"unchanged"}
    taken, _ = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-2"]))
    assert taken  # the labels of the new revision


def test_force_and_dry_run_never_take_the_fast_path(shared_suite, kube):
    req = request_for(shared_suite, kube, sets=["cache.message=fastpath-2"])
    req.dry_run = True
    assert not fast(req)[0]
    req = request_for(shared_suite, kube, sets=["cache.message=fastpath-2"])
    req.apply.force = True
    taken, result = fast(req)
    assert not taken and set(actions(result).values()) == {"upgraded"}


def test_a_rollback_takes_the_full_path(shared_suite, kube):
    """The rolled-back-to revision's labels are copied by Helm: here they even carry the digest of
    this run's values (fastpath-1), yet the release must be upgraded, as the full path decides."""
    cache = f"{ENV}-cache"
    wanted = digest_of(shared_suite, kube, "fastpath-1")
    history = run(Helm(kubeconfig=kube).history(cache, NS))
    same = [int(h["revision"]) for h in history if digest_label(kube, cache, int(h["revision"])) == wanted]
    assert same and same[-1] != int(history[-1]["revision"]), history
    run(Helm(kubeconfig=kube).rollback(cache, same[-1], NS, "60s"))
    assert newest_secret(kube, cache).metadata.labels[DIGEST_LABEL] == wanted
    taken, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))
    assert not taken
    assert actions(result)[cache] == "upgraded"


def digest_label(kube: Path, release: str, revision: int) -> str | None:
    items = core(kube).list_namespaced_secret(NS, label_selector=f"owner=helm,name={release},version={revision}").items
    return items[0].metadata.labels.get(DIGEST_LABEL) if items else None


def digest_of(suite, kube: Path, message: str) -> str:
    from deploy.platform.prepare import prepare

    req = request_for(suite, kube, sets=[f"cache.message={message}"])
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir)
    prep.run.remove()
    return prep.digests["cache"][:40]


def test_a_manual_helm_upgrade_takes_the_full_path(shared_suite, kube):
    """`helm upgrade` merges the previous labels into the new revision: they must not count there."""
    cache = f"{ENV}-cache"
    _, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))
    rel = next(o.release for o in result.outcomes if o.release.name == cache)
    values = {**result.prepared.values["cache"], "message": "by hand"}
    run(Helm(kubeconfig=kube).upgrade(cache, rel.chart_dir, values, NS, "by hand", "60s"))
    assert newest_secret(kube, cache).metadata.labels[DIGEST_LABEL] == result.prepared.digests["cache"][:40]
    taken, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))
    assert not taken
    assert actions(result)[cache] == "upgraded"


@pytest.mark.parametrize("status", ["failed", "pending-upgrade"])
def test_a_failed_or_pending_newest_revision_takes_the_full_path(shared_suite, kube, status):
    cache = f"{ENV}-cache"
    assert fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))[0]
    latest = newest_secret(kube, cache)
    record = decode_release(latest.data["release"])
    record["info"]["status"] = status
    payload = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(record).encode()))).decode()
    core(kube).patch_namespaced_secret(
        latest.metadata.name, NS, {"metadata": {"labels": {"status": status}}, "data": {"release": payload}}
    )
    taken, result = fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))
    assert not taken
    assert actions(result)[cache] == "upgraded"
    assert fast(request_for(shared_suite, kube, sets=["cache.message=fastpath-1"]))[0]
