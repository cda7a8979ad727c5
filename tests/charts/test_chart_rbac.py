"""Least privilege and the cluster-wide release: the ServiceAccounts' Roles are exactly the
designed ones, people's ClusterRoles aggregate viewer < team member < platform admin, and
the seven PriorityClasses carry the reference's values."""

import pytest
from chartkit import PRIORITY_CLASSES, UMBRELLA, Manifest, template

from deploy.paths import CHARTS, VALUES

ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
# (namespace key, ServiceAccount) -> {(apiGroup, resource): verbs}
DESIGNED = {
    # A sweep's Helm release (its Jobs, its ConfigMap, Helm's records as ConfigMaps) and following it.
    ("benchmarks", "benchmark-launcher"): {
        ("batch", "jobs"): set(ALL_VERBS),
        ("", "configmaps"): set(ALL_VERBS),
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get", "list", "watch"},
        ("", "events"): {"get", "list", "watch"},
        ("", "serviceaccounts:benchmark-runner"): {"use"},
    },
    # A training run's Helm release (its Job, its backend ConfigMap, Helm's records as ConfigMaps), following
    # it, and its credentials by name (tests/cluster/test_training_job_creator.py runs `train` as it).
    ("training", "training-job-creator"): {
        ("batch", "jobs"): {"create", "get", "list", "watch", "patch", "delete"},
        ("", "configmaps"): set(ALL_VERBS),
        ("", "pods"): {"list", "watch"},
        ("", "events"): {"list", "watch"},
        ("", "pods/log"): {"get"},
        ("", "serviceaccounts:training-runner"): {"use"},
        ("", "secrets:r2-credentials"): {"get", "use"},
    },
    ("platform", "coordinator"): {
        **{("argoproj.io", r): set(ALL_VERBS) for r in ("workflows", "workflows/finalizers", "workflowtemplates")},
        ("", "serviceaccounts:workflow-executor"): {"use"},
    },
    ("platform", "workflow-executor"): {("argoproj.io", "workflowtaskresults"): {"create", "patch"}},
}
NAMESPACES = {"platform": "kai-ml-dev", "benchmarks": "benchmarks-dev", "training": "training-dev"}


def permissions(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs; a rule limited to some names counts as `resource:name`."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules") or []:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for target in [f"{resource}:{n}" for n in rule.get("resourceNames", [])] or [resource]:
                    granted.setdefault((group, target), set()).update(rule["verbs"])
    return granted


@pytest.fixture(scope="module")
def dev(render) -> list[Manifest]:
    return render("dev")


def test_service_account_roles_are_exactly_the_designed_ones(dev: list[Manifest]) -> None:
    roles = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in dev if m["kind"] == "Role"}
    assert set(roles) == {(NAMESPACES[key], name) for key, name in DESIGNED}
    for (key, name), expected in DESIGNED.items():
        assert permissions(roles[(NAMESPACES[key], name)]) == expected, name


def test_each_role_is_bound_to_its_service_account_only(dev: list[Manifest]) -> None:
    for binding in (m for m in dev if m["kind"] == "RoleBinding" and m["roleRef"]["kind"] == "Role"):
        ns, name = binding["metadata"]["namespace"], binding["metadata"]["name"]
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": ns}]


def test_no_service_account_token_by_default_except_api_clients(dev: list[Manifest]) -> None:
    tokens = {m["metadata"]["name"] for m in dev if m["kind"] == "ServiceAccount" and m["automountServiceAccountToken"]}
    assert tokens == {"coordinator", "workflow-executor"}


def test_no_rule_uses_wildcards_or_touches_secrets_below_admin(dev, cluster_manifests) -> None:
    """Below platform admin a Secret can at most be lent to pods by name (`use`), and read by name only by the
    training job creator (its own credentials: submit checks they exist), never listed, watched or written."""
    for role in (m for m in dev + cluster_manifests if m["kind"] in {"Role", "ClusterRole"}):
        name = role["metadata"]["name"]
        for rule in role.get("rules") or []:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], name
            if "platform-admin" not in name and "secrets" in rule["resources"]:
                allowed = {"get", "use"} if name == "training-job-creator" else {"use"}
                assert set(rule["verbs"]) <= allowed and rule.get("resourceNames"), name


def test_people_roles_aggregate_upwards(cluster_manifests: list[Manifest]) -> None:
    aggregated = {
        m["metadata"]["name"]: [s["matchLabels"] for s in m["aggregationRule"]["clusterRoleSelectors"]]
        for m in cluster_manifests
        if m["kind"] == "ClusterRole" and "aggregationRule" in m
    }
    label = "rbac.kai-ml.io/aggregate-to-{}".format
    assert aggregated == {
        "kai-ml-viewer": [{label("viewer"): "true"}],
        "kai-ml-team-member": [{label("viewer"): "true"}, {label("team-member"): "true"}],
        "kai-ml-platform-admin": [{label(r): "true"} for r in ("viewer", "team-member", "platform-admin")],
    }
    parts = [m for m in cluster_manifests if m["kind"] == "ClusterRole" and "aggregationRule" not in m]
    assert all(m["rules"] for m in parts) and len(parts) == 3


def test_people_are_bound_per_namespace_when_named(helm) -> None:
    dev = str(VALUES / "dev.yaml")
    rendered = template(helm, UMBRELLA, "-f", dev, "--set", "policy.access.teamMembers.groups={ml-team}")
    bindings = [m for m in rendered if m["kind"] == "RoleBinding" and m["roleRef"]["kind"] == "ClusterRole"]
    assert {b["metadata"]["namespace"] for b in bindings} == set(NAMESPACES.values())
    assert {b["roleRef"]["name"] for b in bindings} == {"kai-ml-team-member"}


def test_seven_priority_classes_with_the_reference_values(cluster_manifests: list[Manifest]) -> None:
    classes = {m["metadata"]["name"]: m for m in cluster_manifests if m["kind"] == "PriorityClass"}
    assert {name: pc["value"] for name, pc in classes.items()} == PRIORITY_CLASSES
    assert classes["preemptible"]["preemptionPolicy"] == "Never"
    assert not [name for name, pc in classes.items() if pc["globalDefault"]]


def test_global_default_priority_class_is_a_choice(helm) -> None:
    rendered = template(helm, CHARTS / "platform-cluster", "--set", "globalDefault=medium-priority-batch")
    assert [m["metadata"]["name"] for m in rendered if m.get("globalDefault")] == ["medium-priority-batch"]
