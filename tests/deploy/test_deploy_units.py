"""Small pure pieces: Helm storage decoding, skip decisions, diff redaction, node checks, dependency staleness."""

import base64
import gzip
import json
import os
import time

from deploy.platform.apply import changed, helm_message
from deploy.platform.charts import dependencies_stale
from deploy.platform.diff import manifest_diff, redact_values, values_diff
from deploy.platform.nodecheck import check_nodes
from deploy.platform.nodepools import NodePool
from deploy.platform.prepare import Selection, prepare
from deploy.platform.state import Deployed, description, from_secret_items
from deploy.platform.values import Inputs


def storage_secret(name: str, version: int, status: str, desc: str) -> dict:
    record = {
        "name": name,
        "version": version,
        "info": {"status": status, "description": desc, "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"name": "coordinator", "version": "0.1.0"}},
    }
    inner = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {
        "metadata": {"labels": {"name": name, "version": str(version), "status": status, "owner": "helm"}},
        "data": {"release": base64.b64encode(inner).decode()},
    }


def test_newest_revision_per_release_is_decoded():
    items = [
        storage_secret("dev-coordinator", 1, "superseded", "x"),
        storage_secret("dev-coordinator", 3, "deployed", description("abc")),
        storage_secret("dev-coordinator", 2, "failed", "Upgrade failed"),
        storage_secret("dev-cache", 1, "pending-install", "Initial install underway"),
    ]
    got = from_secret_items(items)
    assert got["dev-coordinator"].revision == 3 and got["dev-coordinator"].digest == "abc"
    assert got["dev-coordinator"].chart == "coordinator-0.1.0"
    assert got["dev-cache"].status == "pending-install" and got["dev-cache"].digest is None


def test_only_deployed_releases_with_the_same_digest_are_skipped(suite):
    prep = prepare(Inputs(env="dev"), Selection(), suite.runs, suite.values, suite.charts)
    d = prep.digests

    def dep(name, status, digest):
        return Deployed(name, 1, status, description(digest), "c-1", "")

    deployed = {
        "platform-cluster": dep("platform-cluster", "deployed", d["cluster"]),
        "dev-platform-policy": dep("dev-platform-policy", "deployed", "old"),
        "dev-coordinator": dep("dev-coordinator", "pending-upgrade", d["coordinator"]),
    }
    assert changed(prep, deployed) == {"cluster": False, "policy": True, "coordinator": True, "workflows": True}
    assert all(changed(prep, deployed, force=True).values())


def test_helm_message_keeps_the_final_error():
    stderr = 'level=WARN msg="upgrade failed"\nError: UPGRADE FAILED: boom\nmore detail\n'
    assert helm_message(stderr) == "UPGRADE FAILED: boom\nmore detail"


def test_diff_never_shows_secret_data():
    old = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {token: hunter2}\n"
    new = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {token: swordfish}\n"
    text = manifest_diff(old, new)
    assert "Secret/n/s changed" in text
    assert "hunter2" not in text and "swordfish" not in text and "<hidden sha256:" in text
    assert manifest_diff(old, old) == ""
    v = values_diff({"db": {"password": "hunter2"}, "a": 1}, {"db": {"password": "swordfish"}, "a": 1})
    assert "hunter2" not in v and "swordfish" not in v and v
    assert redact_values({"apiToken": "x", "n": {"k": 1}})["n"] == {"k": 1}


def test_added_and_removed_objects_are_named():
    a = "kind: ConfigMap\nmetadata: {name: a, namespace: n}\n"
    b = "kind: ConfigMap\nmetadata: {name: b, namespace: n}\n"
    text = manifest_diff(a, b)
    assert "ConfigMap/n/a removed" in text and "ConfigMap/n/b added" in text


def test_nodes_against_pools():
    pools = {
        "system": NodePool("system", {"pool": "system"}),
        "gpu": NodePool(
            "gpu", {"pool": "gpu"}, taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
        ),
    }
    nodes = [
        {"metadata": {"name": "system-0", "labels": {"pool": "system"}}},
        {"metadata": {"name": "gpu-0", "labels": {}}, "spec": {}},
        {"metadata": {"name": "n7", "labels": {}}},
        {"metadata": {"name": "other", "labels": {}}},
    ]
    report = check_nodes(nodes, pools, {"n7": "gpu"})
    assert report.pools == {"system": ["system-0"], "gpu": []}
    assert [(f.node, f.labels, len(f.taints)) for f in report.fixes] == [
        ("gpu-0", {"pool": "gpu"}, 1),
        ("n7", {"pool": "gpu"}, 1),
    ]
    assert report.unassigned == ["other"] and not report.ok
    patch = report.fixes[0].patch([{"key": "old", "effect": "NoExecute"}])
    assert patch["metadata"]["labels"] == {"pool": "gpu"} and len(patch["spec"]["taints"]) == 2


def test_dependencies_stale_until_built_and_again_after_library_changes(suite):
    chart = suite.charts / "coordinator"
    assert dependencies_stale(chart)
    (chart / "Chart.lock").write_text("dependencies: []\n")
    (chart / "charts").mkdir()
    archive = chart / "charts" / "platform-lib-0.1.0.tgz"
    archive.write_bytes(b"x")
    assert not dependencies_stale(chart)
    lib = suite.charts / "platform-lib" / "templates" / "_helpers.tpl"
    future = time.time() + 60
    os.utime(lib, (future, future))
    assert dependencies_stale(chart)
    assert not dependencies_stale(suite.charts / "platform-lib")  # no dependencies
