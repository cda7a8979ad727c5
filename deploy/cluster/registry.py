"""The local cluster's OCI registry: Debian's docker-registry (distribution 2.8) on loopback, where
`./deploy.sh images push` puts the images and the real node's containerd pulls them from."""

import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploy.cluster import procs
from deploy.errors import ClusterError


@dataclass
class LocalRegistry:
    root: Path  # its config, address, log and pid file
    # Its blobs and manifests: in the image cache by default, so that a new cluster's registry already
    # holds what an earlier one was given (a push then sends only what changed).
    data: Path | None = None

    @property
    def pidfile(self) -> Path:
        return self.root / "registry.pid"

    @property
    def address_file(self) -> Path:
        return self.root / "address"

    @property
    def address(self) -> str:
        """host:port, e.g. 127.0.0.1:41234 (empty when it was never started)."""
        return self.address_file.read_text().strip() if self.address_file.exists() else ""

    def running(self) -> bool:
        return procs.pid_alive(self.pidfile) and self.answers()

    def answers(self) -> bool:
        if not self.address:
            return False
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> str:
        """Start the registry (or keep a running one); return its address."""
        if self.running():
            return self.address
        self.root.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{_free_port()}"
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.data or self.root / "data")}},
            "http": {"addr": address},
        }
        (self.root / "config.yml").write_text(yaml.safe_dump(config))
        self.address_file.write_text(address + "\n")
        procs.start(
            ["docker-registry", "serve", str(self.root / "config.yml")], self.pidfile, self.root / "registry.log"
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.answers():
                return address
            if not procs.pid_alive(self.pidfile):
                break
            time.sleep(0.2)
        raise ClusterError(
            f"the local registry did not answer on {address}: see {self.root / 'registry.log'}: "
            + procs.tail(self.root / "registry.log")
        )

    def stop(self) -> None:
        procs.stop_pidfile(self.pidfile)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
