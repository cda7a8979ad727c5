"""Fixtures of the chart tests: the real helm with every chart's dependencies built,
and each environment rendered once per session."""

import functools
from collections.abc import Callable

import pytest
from chartkit import ARGO_API, ENVIRONMENTS, UMBRELLA, Manifest, build_dependencies, template, tool

from deploy.paths import CHARTS, VALUES


@pytest.fixture(scope="session")
def helm() -> str:
    """The project's helm, with every chart's dependencies built."""
    path = tool("helm")
    build_dependencies(path)
    return path


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Manifest]]:
    """render(env, *helm_args) -> manifests of the umbrella for that environment, with
    Argo's WorkflowTemplate API available; cached for the session."""

    @functools.cache
    def _render(env: str, *args: str) -> tuple[Manifest, ...]:
        values = str(VALUES / f"{env}.yaml")
        return tuple(template(helm, UMBRELLA, "-f", values, "--api-versions", ARGO_API, *args, release=f"kai-ml-{env}"))

    return lambda env, *args: list(_render(env, *args))


@pytest.fixture(scope="session")
def cluster_manifests(helm: str) -> list[Manifest]:
    """The cluster-scoped release (charts/platform-cluster) with its defaults."""
    return template(helm, CHARTS / "platform-cluster", release="kai-ml-cluster")


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    """Each environment in turn (values/<env>.yaml)."""
    return request.param


@pytest.fixture(scope="module")
def manifests(render, env: str) -> list[Manifest]:
    """The umbrella rendered for `env`."""
    return render(env)
