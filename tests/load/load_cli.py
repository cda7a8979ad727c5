"""The deploy CLI as a user runs it (tests/bench's helper), and a loadgen target on loopback."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from deploy.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "bench"))
from bench_cli import cli

__all__ = ["cli", "closed_port", "target"]


def closed_port() -> int:
    """A loopback port nothing listens on (taken from the kernel, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def target(*args: str) -> Iterator[str]:
    """`python -m loadgen target` on a free loopback port; yields its base URL."""
    port = closed_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen", "target", "--port", str(port), *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the target did not listen within 30 s"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
