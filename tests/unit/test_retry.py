"""Only an absent API server is retried; a release's own failure is not."""

import asyncio

import pytest

from deploy.errors import HelmError
from deploy.kube.retry import is_transient, retrying

REFUSED = (
    'Error: Get "https://127.0.0.1:32769/api/v1/namespaces": dial tcp 127.0.0.1:32769: connect: connection refused'
)
TIMEOUT = "Error: context deadline exceeded: resource Deployment/kai-ml-dev/coordinator not ready"


def test_transient_markers() -> None:
    assert is_transient(HelmError("helm upgrade x", REFUSED))
    assert not is_transient(HelmError("helm upgrade x", TIMEOUT))


def test_retries_until_the_api_is_back_then_returns() -> None:
    tries: list[int] = []
    retries: list[tuple[int, float]] = []

    async def attempt(number: int) -> str:
        tries.append(number)
        if number < 3:
            raise HelmError("helm upgrade x", REFUSED)
        return "done"

    result = asyncio.run(retrying(attempt, lambda n, e, d: retries.append((n, d)), first_delay=0.01))
    assert result == "done"
    assert tries == [1, 2, 3]
    assert retries == [(1, 0.01), (2, 0.02)]


def test_a_release_failure_is_not_retried() -> None:
    tries: list[int] = []

    async def attempt(number: int) -> str:
        tries.append(number)
        raise HelmError("helm upgrade x", TIMEOUT)

    with pytest.raises(HelmError):
        asyncio.run(retrying(attempt, lambda n, e, d: None, first_delay=0.01))
    assert tries == [1]


def test_gives_up_after_the_last_attempt() -> None:
    async def attempt(number: int) -> str:
        raise HelmError("helm upgrade x", REFUSED)

    with pytest.raises(HelmError):
        asyncio.run(retrying(attempt, lambda n, e, d: None, attempts=3, first_delay=0.001))
