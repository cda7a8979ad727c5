"""The run's knobs, checked before anything starts, and the sizing of the topology from them."""

import json
import math
import re
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from loadgen.errors import ConfigError

ENDPOINT_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
DEFAULT_CONNECTIONS_PER_WORKER = 500
WORKERS_PER_RECORD_PROCESSOR = 4


@dataclass(frozen=True)
class Ports:
    """The controller's ZMQ ports (AIPerf's ZMQTCPConfig numbers, so a chart can reuse them)."""

    credits: int = 5562  # ROUTER: credits out to workers, returns back
    raw_in: int = 5665  # raw inference proxy, frontend (workers PUSH)
    raw_out: int = 5666  # raw inference proxy, backend (record processors PULL)
    records: int = 5557  # processed records (record processors PUSH)
    events_in: int = 5663  # event bus proxy, XSUB (publishers connect)
    events_out: int = 5664  # event bus proxy, XPUB (subscribers connect)

    def as_arg(self) -> str:
        return ",".join(str(p) for p in asdict(self).values())

    @classmethod
    def parse(cls, text: str) -> "Ports":
        names = list(asdict(cls()))
        parts = text.split(",")
        if len(parts) != len(names) or not all(p.strip().isdigit() and 0 < int(p) < 65536 for p in parts):
            raise ConfigError(f"--ports: want {len(names)} port numbers ({','.join(names)}), got {text!r}")
        return cls(**{n: int(p) for n, p in zip(names, parts, strict=True)})


@dataclass(frozen=True)
class RunConfig:
    endpoint: str
    model: str
    endpoint_type: str = "chat"
    streaming: bool = False
    concurrency: int | None = None
    request_rate: float | None = None
    arrival: str = "constant"
    duration: float | None = None
    requests: int | None = None
    grace: float = 30.0
    warmup: int = 0
    ramp_up: float = 0.0
    isl: int = 128
    osl: int = 32
    dataset: str | None = None
    workers: int = 1
    record_processors: int = 1
    connections_per_worker: int = DEFAULT_CONNECTIONS_PER_WORKER
    request_timeout: float = 600.0
    seed: int = 0
    name: str = "run"

    @property
    def url(self) -> str:
        return resolve_url(self.endpoint, self.endpoint_type)

    def to_json(self) -> dict:
        return asdict(self)

    def public(self) -> dict:
        """The config for logs and exports: credentials in the URL (user:password@) left out."""
        return {**self.to_json(), "endpoint": redact(self.endpoint)}

    @classmethod
    def from_json(cls, data: dict) -> "RunConfig":
        return cls(**data)


def redact(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (a broken IPv6 host): hide anything that looks like user:password@
        return re.sub(r"//[^/]*@", "//***@", url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def resolve_url(endpoint: str, endpoint_type: str) -> str:
    """A bare base URL gets the endpoint type's path; a URL with a path is used as it is."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + ENDPOINT_PATHS[endpoint_type]
    return endpoint


def check_url(endpoint: str) -> tuple[str, int]:
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"--endpoint {redact(endpoint)!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--endpoint {redact(endpoint)!r}: want an http:// or https:// URL with a host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """One TCP connect to the endpoint, so a typo fails in seconds and not after the workers start."""
    host, port = check_url(endpoint)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or e
        raise ConfigError(f"--endpoint {redact(endpoint)}: cannot connect to {host}:{port} ({reason})") from None


def sized_workers(concurrency: int | None, connections_per_worker: int) -> int:
    return max(1, math.ceil((concurrency or 1) / connections_per_worker))


def sized_record_processors(workers: int) -> int:
    return max(1, math.ceil(workers / WORKERS_PER_RECORD_PROCESSOR))


def validate(cfg: RunConfig) -> None:
    """Every rule on the knobs, one error naming the flag; nothing has started yet."""
    check_url(cfg.endpoint)
    if not cfg.model.strip():
        raise ConfigError("--model must not be empty")
    if cfg.endpoint_type not in ENDPOINT_PATHS:
        raise ConfigError(f"--endpoint-type must be one of {', '.join(ENDPOINT_PATHS)} (got {cfg.endpoint_type!r})")
    if cfg.concurrency is None and cfg.request_rate is None:
        raise ConfigError("give --concurrency N or --request-rate R (or both: a rate capped at N in flight)")
    if cfg.concurrency is not None and cfg.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1 (got {cfg.concurrency})")
    if cfg.request_rate is not None and not cfg.request_rate > 0:
        raise ConfigError(f"--request-rate must be above 0 (got {cfg.request_rate})")
    if cfg.arrival not in ("constant", "poisson"):
        raise ConfigError(f"--arrival must be constant or poisson (got {cfg.arrival!r})")
    if (cfg.duration is None) == (cfg.requests is None):
        raise ConfigError("give exactly one of --duration SECONDS and --requests N")
    if cfg.duration is not None and not cfg.duration > 0:
        raise ConfigError(f"--duration must be above 0 (got {cfg.duration})")
    if cfg.requests is not None and cfg.requests < 1:
        raise ConfigError(f"--requests must be at least 1 (got {cfg.requests})")
    for flag, value in (("--isl", cfg.isl), ("--osl", cfg.osl), ("--workers", cfg.workers),
                        ("--record-processors", cfg.record_processors),
                        ("--connections-per-worker", cfg.connections_per_worker)):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1 (got {value})")
    if cfg.ramp_up < 0 or (cfg.ramp_up > 0 and cfg.concurrency is None):
        raise ConfigError("--ramp-up needs --concurrency and must be 0 or more seconds")
    if cfg.ramp_up > 0 and cfg.request_rate is not None:
        raise ConfigError("--ramp-up is for --concurrency alone; --request-rate already paces the start")
    if cfg.warmup < 0:
        raise ConfigError(f"--warmup-requests must be 0 or more (got {cfg.warmup})")
    if cfg.grace < 0 or not cfg.request_timeout > 0:
        raise ConfigError("--grace must be 0 or more and --request-timeout above 0")
    if cfg.concurrency is not None and cfg.concurrency < cfg.workers:
        raise ConfigError(f"--workers {cfg.workers} is more than --concurrency {cfg.concurrency}: some would idle")
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise ConfigError(f"--name {cfg.name!r}: want a plain folder name")
    if cfg.dataset is not None:
        load_dataset(cfg.dataset)


def load_dataset(path: str) -> list[dict]:
    """A JSONL file, one request per line: {"text": PROMPT} (AIPerf's single-turn format), optionally
    with "output_length" (max_tokens for that request)."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"--dataset {path}: {e.strerror or e}") from None
    entries = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--dataset {path}: line {i} is not JSON ({e.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"].strip():
            raise ConfigError(f"--dataset {path}: line {i} needs a non-empty string \"text\"")
        osl = entry.get("output_length")
        if osl is not None and (not isinstance(osl, int) or osl < 1):
            raise ConfigError(f"--dataset {path}: line {i}: \"output_length\" must be a positive integer")
        entries.append(entry)
    if not entries:
        raise ConfigError(f"--dataset {path}: no entries")
    return entries
