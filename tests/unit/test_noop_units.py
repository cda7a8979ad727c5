"""The pieces of the no-op fast path that need no cluster: the digest labels and their reading, and
which kubeconfigs the standard-library client refuses (the full path takes those)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.kube.readonly import KubeAPI, Unsupported
from deploy.platform.state import DIGEST_LABEL, REVISION_LABEL, digest_labels, from_secret_labels, is_current

DIGEST = "ab" * 32
LABEL_VALUE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def secret(name: str, version: int, status: str, **extra: str) -> dict:
    labels = {"owner": "helm", "name": name, "version": str(version), "status": status, **extra}
    return {"metadata": {"name": f"sh.helm.release.v1.{name}.v{version}", "labels": labels}}


def test_digest_labels_are_valid_label_values():
    labels = digest_labels(DIGEST, 12)
    assert labels == {DIGEST_LABEL: DIGEST[:40], REVISION_LABEL: "12"}
    assert all(len(v) <= 63 and LABEL_VALUE.match(v) for v in labels.values())


def test_newest_revision_decides():
    ours = digest_labels(DIGEST, 3)
    items = [secret("a", 3, "deployed", **ours), secret("a", 2, "superseded"), secret("b", 1, "deployed")]
    newest = from_secret_labels(items)
    assert newest["a"].revision == 3 and is_current(newest["a"], DIGEST)
    assert not is_current(newest["a"], "cd" * 32)  # another digest
    assert not is_current(newest["b"], DIGEST)  # no labels: applied by hand or by an older tool
    assert not is_current(newest.get("c"), DIGEST)  # not installed
    newest = from_secret_labels([*items, secret("a", 4, "deployed", **ours)])  # `helm upgrade` merged them
    assert not is_current(newest["a"], DIGEST)
    for status in ("failed", "pending-upgrade", "pending-install", "uninstalling"):
        assert not is_current(from_secret_labels([secret("a", 3, status, **ours)])["a"], DIGEST)


def kubeconfig(tmp_path: Path, user: dict, server: str = "https://127.0.0.1:6443") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "user",
    [
        {"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}},
        {"auth-provider": {"name": "gcp"}},
        {"username": "a", "password": "b"},
        {"token": "t", "as": "someone"},
    ],
)
def test_kubeconfigs_it_does_not_speak_are_refused(tmp_path, user):
    with pytest.raises(Unsupported):
        KubeAPI.from_kubeconfig(kubeconfig(tmp_path, user), None)


def test_a_proxy_or_an_unknown_context_is_refused(tmp_path, monkeypatch):
    path = kubeconfig(tmp_path, {"token": "t"})
    with pytest.raises(Unsupported):
        KubeAPI.from_kubeconfig(path, "other")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    with pytest.raises(Unsupported):
        KubeAPI.from_kubeconfig(path, None)


def test_a_token_kubeconfig_is_spoken(tmp_path):
    api = KubeAPI.from_kubeconfig(kubeconfig(tmp_path, {"token": "t"}, "https://127.0.0.1:6443/prefix/"), "c")
    assert api.headers == {"Authorization": "Bearer t"} and api.prefix == "/prefix"
    api.close()


def test_an_unreachable_server_is_unsupported_not_an_error(tmp_path):
    api = KubeAPI.from_kubeconfig(kubeconfig(tmp_path, {"token": "t"}, "https://127.0.0.1:1"), None)
    with pytest.raises(Unsupported):
        api.get("/version")


def test_the_cli_imports_no_heavy_package():
    code = "import sys, deploy.cli; print(sorted({'kubernetes', 'pyhelm3', 'jsonschema', 'jinja2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
