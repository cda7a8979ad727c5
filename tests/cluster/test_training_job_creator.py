"""The training-job-creator ServiceAccount runs the `train` commands as a submitter inside the cluster would:
the deploy tool and its helm with a kubeconfig of that account's own (a real bound token from the TokenRequest
API, no impersonation). submit (the credentials Secret checked by name first, the release kept as ConfigMaps,
the Job, following to the result), status, logs and stop all pass with platform-policy's Role alone, and what
the Role does not grant is refused: NetworkPolicies (the run's egress is platform-policy's), Secrets other
than its credentials, listing or writing Secrets, pods/exec. Uses the prod install of
test_workload_admission.py (its `namespaces` fixture: platform-cluster, then prod)."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_workload_admission import namespaces  # noqa: F401 (the fixture)

from deploy.cluster.controlplane import LocalCluster
from deploy.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "train"))
from train_cli import LOG_LABELS, cli, write_spec

pytestmark = pytest.mark.cluster

CREATOR = "training-job-creator"
CREDENTIALS = "r2-credentials"  # the one Secret its Role names


def token_kubeconfig(cluster: LocalCluster, namespace: str, account: str, path: Path) -> Path:
    """The cluster's kubeconfig with the account's bound token as its only user."""
    core = client.CoreV1Api(cluster.api_client())
    token = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def as_token(kubeconfig: Path) -> client.ApiClient:
    from kubernetes import config

    return config.new_client_from_config(str(kubeconfig))


def refused(call: Callable[[], Any]) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, err.value.body
    return json.loads(err.value.body)["message"]


def test_the_job_creator_submits_follows_and_stops_a_training_run(
    cluster: LocalCluster,
    namespaces: dict[str, str],  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    ns = namespaces["training"]
    kube = token_kubeconfig(cluster, ns, CREATOR, tmp_path / "creator.kubeconfig")
    runs = tmp_path / "runs"
    admin = client.CoreV1Api(cluster.api_client())
    spec = write_spec(tmp_path, "as-creator")
    outputs: list[str] = []

    def train(*args: str, ok: bool = True) -> Any:
        done = cli(runs, "train", *args, "--env", "prod", kubeconfig=kube)
        outputs.extend([done.stdout, done.stderr])
        if ok:
            assert done.returncode == 0, done.stderr + done.stdout
        return done

    submit = ("submit", str(spec), "--executor", "kubernetes", "--set", LOG_LABELS)
    # The credentials Secret is looked up by name (the Role's `get`): missing, it is named, nothing applied.
    missing = train(*submit, ok=False)
    assert missing.returncode == 1, missing.stderr
    assert f"the Secret {ns}/{CREDENTIALS} that training run as-creator needs does not exist" in missing.stderr
    assert "cannot check" not in missing.stderr

    secret = {"metadata": {"name": CREDENTIALS}, "stringData": {"access-key": "AKIATEST", "secret-key": "not-used"}}
    admin.create_namespaced_secret(ns, secret)
    try:
        # Installed without following, then submitted again: Helm upgrades its release (its record updated).
        train(*submit, "--no-follow")
        done = train(*submit)
        assert "installed train-as-creator" in done.stderr and "1 of 1 runs have a result" in done.stderr, done.stderr
        assert "forbidden" not in (done.stdout + done.stderr).lower()
        status = json.loads(train("status", "as-creator", "-o", "json").stdout)
        assert status["phase"] == "Succeeded" and status["namespace"] == ns
        assert "KAIML_RESULT" in train("logs", "as-creator", "--tail", "2").stdout
        again = train("follow", "as-creator")
        assert "1 of 1 runs have a result" in again.stderr
        stopped = train("stop", "as-creator")
        assert "uninstalled train-as-creator" in stopped.stderr, stopped.stderr
        assert f"no release train-as-creator in namespace {ns}" in train("stop", "as-creator").stderr
        batch = client.BatchV1Api(cluster.api_client())
        assert not batch.list_namespaced_job(ns, label_selector="kai-ml.io/run=as-creator").items
        assert not admin.list_namespaced_config_map(ns, label_selector="name=train-as-creator").items
    finally:
        admin.delete_namespaced_secret(CREDENTIALS, ns)
        cli(runs, "train", "stop", "as-creator", "--env", "prod", kubeconfig=cluster.kubeconfig)
    assert not any("not-used" in text for text in outputs)


def test_what_the_job_creator_role_does_not_grant_is_refused(
    cluster: LocalCluster,
    namespaces: dict[str, str],  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    ns = namespaces["training"]
    api = as_token(token_kubeconfig(cluster, ns, CREATOR, tmp_path / "creator.kubeconfig"))
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    egress = {"metadata": {"name": "open"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}}
    assert "networkpolicies" in refused(lambda: net.create_namespaced_network_policy(ns, egress))
    assert "secrets" in refused(lambda: core.list_namespaced_secret(ns))
    assert "secrets" in refused(lambda: core.create_namespaced_secret(ns, {"metadata": {"name": "mine"}}))
    assert "secrets" in refused(lambda: core.read_namespaced_secret("other-credentials", ns))
    assert "pods/exec" in refused(lambda: core.connect_get_namespaced_pod_exec("any", ns, command=["sh"]))
    assert "pods" in refused(lambda: core.delete_namespaced_pod("any", ns))
    # Its Role holds in the training namespace only.
    assert "jobs" in refused(lambda: client.BatchV1Api(api).list_namespaced_job(namespaces["benchmarks"]))
