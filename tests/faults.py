"""Faults injected into the local control plane, for the tests that must survive them."""

import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from deploy.cluster import supervise
from deploy.cluster.controlplane import LocalCluster, _alive


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


@contextmanager
def refusing(port: int) -> Iterator[None]:
    """While inside, 127.0.0.1:`port` takes each connection and resets it, as a dead server's port
    does, and stays bound: on a machine where other clusters are being made, kwokctl would otherwise
    hand the free port of a stopped API server to one of them."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 10
    while True:  # a killed server's other threads may still hold its socket for a moment
        try:
            listener.bind(("127.0.0.1", port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    listener.listen(64)
    listener.settimeout(0.2)
    done = threading.Event()

    def reset_each() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            conn.close()

    thread = threading.Thread(target=reset_each, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        listener.close()


def restart_apiserver(cluster: LocalCluster, downtime: float) -> None:
    """Kill kube-apiserver, keep it down for `downtime` s, and return once the supervisor has started
    it again (same binary, flags, folder and environment) and it answers."""
    port = urlparse(cluster.api_client().configuration.host).port
    assert port is not None
    with stopped(cluster, "kube-apiserver"), refusing(port):
        time.sleep(downtime)
    deadline = time.monotonic() + 60
    while not cluster.healthy():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"kube-apiserver did not come back within 60s of its outage: {cluster.component_states()}"
            )
        time.sleep(0.1)
