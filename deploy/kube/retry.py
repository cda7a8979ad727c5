"""Retry what failed only because the API server was briefly away (a restart, an upgrade of the
control plane, a leader change): the next attempt starts from the release's state as it is then."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from deploy.errors import HelmError

T = TypeVar("T")

# What helm (client-go) says when the API server is not there; a timeout waiting for pods to become
# ready is *not* among them: that is the release's own failure.
TRANSIENT = (
    "connection refused",
    "connection reset by peer",
    "http2: client connection lost",
    "tls handshake timeout",
    "i/o timeout",
    "unexpected eof",
    "the server is currently unable to handle the request",
    "etcdserver: request timed out",
    "etcdserver: leader changed",
    "no route to host",
)


async def _sleep(seconds: float) -> None:
    import asyncio  # imported here: the no-op path never runs an event loop

    await asyncio.sleep(seconds)


def is_transient(err: BaseException) -> bool:
    text = (err.stderr if isinstance(err, HelmError) else str(err)).lower()
    return any(marker in text for marker in TRANSIENT)


async def retrying(
    attempt: Callable[[int], Awaitable[T]],
    on_retry: Callable[[int, BaseException, float], None],
    attempts: int = 9,
    first_delay: float = 1.0,
    max_delay: float = 10.0,
) -> T:
    """Run attempt(1), attempt(2), ... while it fails transiently, backing off between tries
    (1, 2, 4, 8, 10, 10, 10, 10 s: close to a minute of API downtime is ridden out, such as a control
    plane restart that also costs the controller manager and the scheduler their leader leases)."""
    delay = first_delay
    for number in range(1, attempts + 1):
        try:
            return await attempt(number)
        except Exception as err:
            if number == attempts or not is_transient(err):
                raise
            on_retry(number, err, delay)
            await _sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
