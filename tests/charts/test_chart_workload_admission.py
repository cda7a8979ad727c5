"""The workload admission policy as rendered: platform-cluster ships one ValidatingAdmissionPolicy
(who may run pods as which ServiceAccount, with which Secrets), each environment binds it to its
own namespaces, and the shared release is labelled with its own version, not an environment's
image tag. What the policy admits and refuses is tested on the API server
(tests/cluster/test_workload_admission.py)."""

import yaml
from chartkit import ENVIRONMENTS, UMBRELLA, Manifest, template

from deploy.paths import CHARTS, VALUES

POLICY = "kai-ml-workload-credentials"


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def test_the_cluster_release_ships_the_policy(cluster_manifests: list[Manifest]) -> None:
    (policy,) = of_kind(cluster_manifests, "ValidatingAdmissionPolicy")
    spec = policy["spec"]
    assert policy["metadata"]["name"] == POLICY
    assert spec["failurePolicy"] == "Fail"
    matched = {
        (g, r)
        for rule in spec["matchConstraints"]["resourceRules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert {("", "pods"), ("batch", "jobs"), ("batch", "cronjobs"), ("apps", "deployments")} <= matched
    assert {("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets")} <= matched
    assert ("argoproj.io", "workflows") in matched
    # Controllers are exempt by identity, from values.
    (condition,) = spec["matchConditions"]
    assert '["system:kube-controller-manager","system:serviceaccount:argo:argo"]' in condition["expression"]
    assert '["system:serviceaccounts:kube-system"]' in condition["expression"]
    # Every refusal says why.
    assert all(v["messageExpression"] and v["reason"] == "Forbidden" for v in spec["validations"])
    # The policy alone checks nothing: no binding in the cluster release.
    assert not of_kind(cluster_manifests, "ValidatingAdmissionPolicyBinding")


def test_the_policy_can_be_left_out(helm: str) -> None:
    rendered = template(helm, CHARTS / "platform-cluster", "--set", "workloadAdmission.enabled=false")
    assert not of_kind(rendered, "ValidatingAdmissionPolicy")


def test_exempt_requesters_come_from_values(helm: str) -> None:
    rendered = template(
        helm,
        CHARTS / "platform-cluster",
        "--set-json",
        'workloadAdmission.exemptUsers=["system:serviceaccount:wf:ctl"]',
    )
    (policy,) = of_kind(rendered, "ValidatingAdmissionPolicy")
    assert '["system:serviceaccount:wf:ctl"]' in policy["spec"]["matchConditions"][0]["expression"]


def test_each_environment_binds_the_policy_to_its_namespaces(render) -> None:
    bindings = {}
    for env in ENVIRONMENTS:
        values = yaml.safe_load((VALUES / f"{env}.yaml").read_text())["global"]["namespaces"]
        (binding,) = of_kind(render(env), "ValidatingAdmissionPolicyBinding")
        spec = binding["spec"]
        assert spec["policyName"] == POLICY
        assert spec["validationActions"] == ["Deny"]
        (selector,) = spec["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert selector["key"] == "kubernetes.io/metadata.name" and selector["operator"] == "In"
        assert set(selector["values"]) == {values["platform"], values["benchmarks"], values["training"]}, env
        bindings[binding["metadata"]["name"]] = env
    # Cluster-scoped: one name per environment, so environments sharing a cluster do not collide.
    assert sorted(bindings) == sorted(f"{POLICY}-{env}" for env in ENVIRONMENTS)


def test_the_binding_can_warn_instead(helm: str) -> None:
    rendered = template(
        helm,
        UMBRELLA,
        "-f",
        str(VALUES / "dev.yaml"),
        "--set-json",
        'policy.workloadAdmission.validationActions=["Warn","Audit"]',
    )
    (binding,) = of_kind(rendered, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"]


def test_the_cluster_release_is_labelled_with_its_own_version(helm: str) -> None:
    """An environment's image tag (the deploy tool's --tag) must not relabel the shared release."""
    app_version = yaml.safe_load((CHARTS / "platform-cluster" / "Chart.yaml").read_text())["appVersion"]
    for args in ([], ["--set", "global.image.tag=v9.9.9"]):
        rendered = template(helm, CHARTS / "platform-cluster", *args)
        assert {m["metadata"]["labels"]["app.kubernetes.io/version"] for m in rendered} == {app_version}, args
    # Through the umbrella (cluster.enabled) as well, while the components do carry the tag.
    rendered = template(
        helm,
        UMBRELLA,
        "-f",
        str(VALUES / "dev.yaml"),
        "--set",
        "cluster.enabled=true",
        "--set",
        "global.image.tag=v9.9.9",
    )
    versions = {m["kind"]: m["metadata"]["labels"]["app.kubernetes.io/version"] for m in rendered}
    assert versions["PriorityClass"] == versions["ValidatingAdmissionPolicy"] == app_version
    assert versions["Deployment"] == "v9.9.9"
