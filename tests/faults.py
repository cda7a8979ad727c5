"""Faults injected into the local control plane, for the tests that must survive them."""

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from deploy.cluster import supervise
from deploy.cluster.local import LocalCluster, _alive


def kill(cluster: LocalCluster, component: str) -> int:
    """SIGKILL the component (what a crash leaves); its pid."""
    pid = cluster._pids()[component]
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)
    return pid


@contextmanager
def stopped(cluster: LocalCluster, component: str) -> Iterator[int]:
    """The component killed and kept down (held from the cluster's supervisor) while inside; after it,
    the supervisor starts it again with kwokctl's command line. Yields the killed pid."""
    with supervise.hold(cluster.cluster_dir, component):
        yield kill(cluster, component)


def wait_running(cluster: LocalCluster, timeout: float = 120) -> None:
    """Until every component runs again and the API answers."""
    deadline = time.monotonic() + timeout
    while not cluster.running():
        if time.monotonic() > deadline:
            raise AssertionError(f"{cluster.name}: still not running after {timeout}s: {cluster.component_states()}")
        time.sleep(0.25)


def restart_apiserver(cluster: LocalCluster, downtime: float) -> None:
    """Kill kube-apiserver, keep it down for `downtime` s, and return once the supervisor has started
    it again (same binary, flags, folder and environment) and it answers."""
    with stopped(cluster, "kube-apiserver"):
        time.sleep(downtime)
    deadline = time.monotonic() + 60
    while not cluster.healthy():
        if time.monotonic() > deadline:
            raise AssertionError("kube-apiserver did not come back within 60s of its outage")
        time.sleep(0.1)
