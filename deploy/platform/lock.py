"""One change to an environment at a time, also across machines: a Lease `kaiml-deploy-<env>` in the
release namespace, taken before the first release is applied and renewed while the run lasts.

A second run waits for it, saying who holds it and since when, and takes it as soon as the holder
lets go, or stops renewing it (a crashed run: the Lease expires after LEASE_SECONDS); after `wait`
seconds it gives up with the holder named, having applied nothing. Helm alone would let both runs
start and fail on its own internals ("another operation is in progress")."""

import contextlib
import datetime as dt
import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from deploy.errors import ClusterError, DeployError

LEASE_SECONDS = 30  # renewed every third of it
POLL_SECONDS = 2.0


class LockedError(DeployError):
    """Another run holds the environment's lock."""

    exit_code = 1


def lease_name(env: str) -> str:
    return f"kaiml-deploy-{env}"


def identity() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _expired(lease: Any, now: dt.datetime) -> bool:
    spec = lease.spec
    if not spec.holder_identity:
        return True  # released
    renewed = spec.renew_time or spec.acquire_time
    return renewed is None or renewed + dt.timedelta(seconds=spec.lease_duration_seconds or LEASE_SECONDS) < now


def _holder(lease: Any) -> str:
    since = lease.spec.acquire_time
    when = f" since {since.astimezone().strftime('%H:%M:%S')}" if since else ""
    return f"{lease.spec.holder_identity}{when}"


def _spec(me: str, now: dt.datetime) -> Any:
    from kubernetes import client

    return client.V1LeaseSpec(
        holder_identity=me, lease_duration_seconds=LEASE_SECONDS, acquire_time=now, renew_time=now
    )


def _try_take(api: Any, namespace: str, name: str, me: str) -> Any | None:
    """Create the Lease, or take over a released or expired one: None when it is ours, else the Lease
    that another run holds."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    now = _now()
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/managed-by": "kaiml-deploy"}),
        spec=_spec(me, now),
    )
    try:
        api.create_namespaced_lease(namespace, body, _request_timeout=10)
        return None
    except ApiException as err:
        if err.status != 409:
            raise
    current = api.read_namespaced_lease(name, namespace, _request_timeout=10)
    if not _expired(current, now):
        return current
    current.spec = _spec(me, now)
    try:  # resourceVersion makes this a compare-and-swap: of two runs taking over, one wins
        api.replace_namespaced_lease(name, namespace, current, _request_timeout=10)
    except ApiException as err:
        if err.status == 409:
            return api.read_namespaced_lease(name, namespace, _request_timeout=10)
        raise
    return None


def _renew(api: Any, namespace: str, name: str, stop: threading.Event) -> None:
    while not stop.wait(LEASE_SECONDS / 3):
        # A failed renewal (API server briefly away) is tried again at the next tick; the run's own
        # retries decide whether it goes on.
        with contextlib.suppress(Exception):
            api.patch_namespaced_lease(
                name, namespace, {"spec": {"renewTime": _now().isoformat(timespec="microseconds")}}, _request_timeout=5
            )


def _release(api: Any, namespace: str, name: str, me: str) -> None:
    from kubernetes import client

    with contextlib.suppress(Exception):
        lease = api.read_namespaced_lease(name, namespace, _request_timeout=5)
        if lease.spec.holder_identity == me:
            api.delete_namespaced_lease(
                name,
                namespace,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=lease.metadata.uid)),
                _request_timeout=5,
            )


@contextlib.contextmanager
def environment_lock(
    api_client: Any, namespace: str, env: str, wait: float, log: Callable[[str], None]
) -> Iterator[None]:
    """Hold the environment's lock for the body; LockedError after `wait` seconds of another holder."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = client.CoordinationV1Api(api_client)
    name, me = lease_name(env), identity()
    deadline = time.monotonic() + wait
    said = None
    while True:
        try:
            got = _try_take(api, namespace, name, me)
        except ApiException as err:
            raise ClusterError(
                f"cannot take the deploy lock (Lease {namespace}/{name}): {err.status} {err.reason}. The deployer "
                "needs create/get/update/patch/delete on leases.coordination.k8s.io in that namespace."
            ) from None
        if got is None:
            break
        holder = _holder(got)
        if time.monotonic() >= deadline:
            raise LockedError(
                f"environment {env!r} is being changed by another run: {holder} holds Lease {namespace}/{name}. "
                f"Nothing was applied. Wait for it (--lock-wait SECONDS), or, if that run is gone, the lock "
                f"expires {LEASE_SECONDS}s after its last renewal."
            )
        if holder != said:
            log(f"waiting for the deploy lock of {env!r}: held by {holder} (up to {wait:.0f}s)")
            said = holder
        time.sleep(POLL_SECONDS)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(api, namespace, name, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(6)  # a renewal in flight ends within its 5 s request timeout; no thread outlives the run
        _release(api, namespace, name, me)
