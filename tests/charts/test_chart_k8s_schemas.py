"""Every rendered manifest of every environment (and of the cluster chart) is valid,
strictly, against the Kubernetes API schemas of the oldest and newest supported versions."""

import kubernetes_validate
import pytest
from chartkit import ENVIRONMENTS, Manifest

KUBERNETES_VERSIONS = ["1.33", "1.37"]
# Custom resources have no Kubernetes schema; only these are skipped, by name.
CUSTOM_KINDS = {("argoproj.io/v1alpha1", "WorkflowTemplate")}


def validate(manifests: list[Manifest], version: str) -> None:
    errors = []
    for m in manifests:
        if (m["apiVersion"], m["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(m, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{m['kind']}/{m['metadata']['name']}: {err.message} at {list(err.path)}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_manifests_are_valid(render, env: str, version: str) -> None:
    manifests = render(env)
    assert any((m["apiVersion"], m["kind"]) in CUSTOM_KINDS for m in manifests)
    validate(manifests, version)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_cluster_manifests_are_valid(cluster_manifests: list[Manifest], version: str) -> None:
    validate(cluster_manifests, version)
