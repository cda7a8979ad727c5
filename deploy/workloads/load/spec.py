"""A load run as the user asks for it (`load run`'s options), checked before anything is applied, and its
sizing: workers from the concurrency (`connections_per_worker` each, default 500), record processors 1
per 4 workers. The knobs are the engine's own (loadgen/config.py checks them: one rule set for
`--here`, the pods and `python -m loadgen`)."""

import ipaddress
import re
import socket
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deploy.errors import PlanError
from loadgen import config as engine
from loadgen.errors import ConfigError

# The run's name is a DNS label inside object names (`<run>-controller`, `load-<run>`).
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$")
# A ConfigMap holds at most 1 MiB; the dataset travels in one.
DATASET_MAX_BYTES = 900 * 1024
# Host names that only a cluster's DNS resolves: not checked from this machine (the controller
# checks them in the cluster before any request).
CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


@dataclass(frozen=True)
class LoadSpec:
    endpoint: str
    model: str
    name: str = ""
    endpoint_type: str = "chat"
    streaming: bool = False
    concurrency: int | None = None
    request_rate: float | None = None
    duration: float | None = None
    requests: int | None = None
    grace: float = 30.0
    warmup_requests: int = 0
    ramp_up: float = 0.0
    isl: int = 128
    osl: int = 32
    dataset: Path | None = None
    workers: int | None = None
    record_processors: int | None = None
    connections_per_worker: int = engine.DEFAULT_CONNECTIONS_PER_WORKER
    request_timeout: float = 600.0
    seed: int = 0

    def sized(self) -> "LoadSpec":
        """Workers and record processors given, or sized from the concurrency."""
        workers = self.workers or engine.sized_workers(self.concurrency, max(1, self.connections_per_worker))
        processors = self.record_processors or engine.sized_record_processors(workers)
        return replace(self, workers=workers, record_processors=processors)

    def run_name(self) -> str:
        if self.name:
            return self.name
        model = re.sub(r"[^a-z0-9]+", "-", self.model.lower()).strip("-")[:12].strip("-") or "m"
        load = f"c{self.concurrency}" if self.concurrency else f"r{self.request_rate:g}".replace(".", "-")
        return f"{model}-{load}-{time.strftime('%H%M%S')}"

    def engine_config(self) -> engine.RunConfig:
        sized = self.sized()
        return engine.RunConfig(
            endpoint=self.endpoint, model=self.model, endpoint_type=self.endpoint_type, streaming=self.streaming,
            concurrency=self.concurrency, request_rate=self.request_rate, duration=self.duration,
            requests=self.requests, grace=self.grace, warmup=self.warmup_requests, ramp_up=self.ramp_up,
            isl=self.isl, osl=self.osl, dataset=str(self.dataset) if self.dataset else None,
            workers=sized.workers or 1, record_processors=sized.record_processors or 1,
            connections_per_worker=self.connections_per_worker, request_timeout=self.request_timeout,
            seed=self.seed, name="artifacts",
        )  # fmt: skip

    def config(self) -> dict[str, Any]:
        """What the run's record keeps beside its result (the endpoint without credentials)."""
        sized = self.sized()
        out = {k: v for k, v in asdict(sized).items() if v is not None and k != "name"}
        out["endpoint"] = engine.redact(self.endpoint)
        if self.dataset:
            out["dataset"] = self.dataset.name
        return out


def cluster_only_host(host: str) -> bool:
    return host.endswith(CLUSTER_SUFFIXES)


def check(spec: LoadSpec, *, in_cluster: bool, reach: bool = True) -> LoadSpec:
    """Every rule on the options, one line naming the flag; the endpoint connected to once from here
    (unless its name only resolves in a cluster). Returns the spec sized."""
    if spec.name and not NAME.match(spec.name):
        raise PlanError(f"--name {spec.name!r}: want a DNS label of at most 30 characters (a-z, 0-9, -).")
    if spec.workers is not None and spec.workers < 1:
        raise PlanError(f"--workers must be at least 1 (got {spec.workers})")
    if spec.record_processors is not None and spec.record_processors < 1:
        raise PlanError(f"--record-processors must be at least 1 (got {spec.record_processors})")
    try:
        engine.validate(spec.engine_config())
    except ConfigError as err:
        raise PlanError(str(err)) from None
    host = urlsplit(spec.endpoint).hostname or ""
    if in_cluster and urlsplit(spec.endpoint).password is not None:
        raise PlanError(
            f"--endpoint {engine.redact(spec.endpoint)}: credentials in the URL would be stored in the release's "
            "values and the controller's arguments; give the URL without them."
        )
    if in_cluster and spec.dataset and spec.dataset.stat().st_size > DATASET_MAX_BYTES:
        raise PlanError(
            f"--dataset {spec.dataset}: {spec.dataset.stat().st_size} bytes; a run on a cluster carries its dataset "
            f"in a ConfigMap (at most {DATASET_MAX_BYTES} bytes here)."
        )
    if reach and not (in_cluster and cluster_only_host(host)):
        try:
            engine.check_reachable(spec.engine_config().url)
        except ConfigError as err:
            raise PlanError(f"{err}; nothing was started.") from None
    return spec.sized()


def endpoint_peers(endpoint: str) -> dict[str, Any]:
    """Where the workers' NetworkPolicy lets them connect: the endpoint's port, and its address when
    it is one (an IP: that /32 or /128), the namespace of a cluster Service name (`svc.ns.svc...`),
    or any address on that port for other names (a policy cannot name a DNS name)."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip = ipaddress.ip_address(host)
        return {"port": port, "cidrs": [f"{ip}/{ip.max_prefixlen}"], "namespace": ""}
    except ValueError:
        pass
    if cluster_only_host(host) and len(host.split(".")) >= 3:
        return {"port": port, "cidrs": [], "namespace": host.split(".")[1]}
    return {"port": port, "cidrs": ["0.0.0.0/0"], "namespace": ""}


def resolvable(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True
