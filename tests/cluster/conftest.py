"""Fixtures of the control-plane tests: an API client of the session cluster, and a namespace of the test's own."""

import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploy.cluster.controlplane import LocalCluster


@pytest.fixture(scope="module")
def api(cluster: LocalCluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A new namespace, once its default ServiceAccount exists (pods are refused before); deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    deadline = time.monotonic() + 60
    while not _has_default_service_account(core, name):
        assert time.monotonic() < deadline, f"namespace {name}: no default ServiceAccount after 60 s"
        time.sleep(0.25)
    yield name
    core.delete_namespace(name)


def _has_default_service_account(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
        return True
    except ApiException:
        return False
