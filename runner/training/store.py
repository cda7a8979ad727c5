"""Checkpoints and artifacts in an S3-compatible object store, with the credentials as a Kubernetes
Secret gives them to a pod.

Where things come from (see runner/README.md, "kind train"):
- the key pair: files `access-key` and `secret-key` in KAIML_OBJECTSTORE_CREDENTIALS_DIR (default
  /var/run/secrets/kaiml/objectstore), the Secret mounted read-only as a volume. Files, not env
  vars: they are not copied into every child process's environment or an `env` dump, and a
  rotated Secret reaches a running pod;
- the endpoint, bucket, region and key prefix: KAIML_OBJECTSTORE_ENDPOINT, KAIML_OBJECTSTORE_BUCKET,
  KAIML_OBJECTSTORE_REGION (default us-east-1), KAIML_OBJECTSTORE_PREFIX (default `training`),
  from the backend ConfigMap (envFrom);
- the run: KAIML_RUN_ID (the launcher sets it to the Job's name, the same for every retry of its
  pods); without it `train-<first 12 hex digits of the config's digest>`.

Writes are atomic for a reader: a checkpoint object is written whole (one PUT), then the small
`latest` pointer names it; a run killed between the two resumes from the previous pointer.

No credential value leaves this module: every store error is re-raised with the values replaced."""

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError, RunnerError

DEFAULT_CREDENTIALS_DIR = "/var/run/secrets/kaiml/objectstore"
ACCESS_KEY_FILE = "access-key"
SECRET_KEY_FILE = "secret-key"
DEFAULT_REGION = "us-east-1"
DEFAULT_PREFIX = "training"
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Credentials:
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    def redact(self, text: str) -> str:
        for value in (self.secret_key, self.access_key):
            if value:
                text = text.replace(value, REDACTED)
        return text


@dataclass(frozen=True)
class StoreSettings:
    endpoint: str
    bucket: str
    region: str
    prefix: str
    credentials: Credentials = field(repr=False)


def read_credentials(directory: Path) -> Credentials:
    values = []
    for name in (ACCESS_KEY_FILE, SECRET_KEY_FILE):
        path = directory / name
        try:
            value = path.read_text().strip()
        except OSError as e:
            raise ConfigError(
                "KAIML_OBJECTSTORE_CREDENTIALS_DIR",
                f"cannot read {path} ({e.strerror or type(e).__name__}): mount the object-store Secret there "
                f"with the keys {ACCESS_KEY_FILE} and {SECRET_KEY_FILE}",
            ) from None
        if not value:
            raise ConfigError("KAIML_OBJECTSTORE_CREDENTIALS_DIR", f"{path} is empty")
        values.append(value)
    return Credentials(access_key=values[0], secret_key=values[1])


def settings_from_env(env: dict[str, str] | None = None) -> StoreSettings:
    env = dict(os.environ) if env is None else env
    for name in ("KAIML_OBJECTSTORE_ENDPOINT", "KAIML_OBJECTSTORE_BUCKET"):
        if not env.get(name, "").strip():
            raise ConfigError(
                name, "unset: a train run keeps its checkpoints in an object store (the backend ConfigMap)"
            )
    directory = Path(env.get("KAIML_OBJECTSTORE_CREDENTIALS_DIR") or DEFAULT_CREDENTIALS_DIR)
    return StoreSettings(
        endpoint=env["KAIML_OBJECTSTORE_ENDPOINT"].strip(),
        bucket=env["KAIML_OBJECTSTORE_BUCKET"].strip(),
        region=env.get("KAIML_OBJECTSTORE_REGION", "").strip() or DEFAULT_REGION,
        prefix=env.get("KAIML_OBJECTSTORE_PREFIX", "").strip().strip("/") or DEFAULT_PREFIX,
        credentials=read_credentials(directory),
    )


def run_id(config_digest: str, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    value = env.get("KAIML_RUN_ID", "").strip()
    if value and ("/" in value or value in (".", "..")):
        raise ConfigError("KAIML_RUN_ID", f"must not contain '/': {value!r}")
    return value or f"train-{config_digest[:12]}"


@dataclass(frozen=True)
class Checkpoint:
    key: str
    step: int
    payload: bytes


class RunStore:
    """One run's objects: `<prefix>/<run>/checkpoints/step-<n>.pt`, `.../checkpoints/latest`,
    `<prefix>/<run>/final/model.pt` and `.../final/metrics.json`. The client is runner/training/s3.py
    (any S3-compatible store, AWS S3 included; nothing beyond the standard library, as in the image)."""

    def __init__(self, settings: StoreSettings, run: str, retries: int = 5) -> None:
        from urllib.parse import urlsplit

        from runner.training.s3 import Client

        url = urlsplit(settings.endpoint)
        if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
            raise ConfigError(
                "KAIML_OBJECTSTORE_ENDPOINT", f"must be http(s)://host[:port] with no path, not {settings.endpoint!r}"
            )
        self.settings = settings
        self.bucket = settings.bucket
        self.base = f"{settings.prefix}/{run}"
        self._redact: Callable[[str], str] = settings.credentials.redact
        # Retries with backoff on connection errors and 5xx: a store restart is ridden out.
        self._client = Client(
            f"{url.scheme}://{url.netloc}",
            settings.region,
            access_key=settings.credentials.access_key,
            secret_key=settings.credentials.secret_key,
            retries=retries,
        )

    @property
    def pointer_key(self) -> str:
        return f"{self.base}/checkpoints/latest"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Store failures as RunnerError (exit 1, retried), credential values replaced; `from None`
        keeps the original (and whatever it quotes) out of the traceback that the CLI logs."""
        import http.client

        from runner.training.s3 import S3Error

        try:
            yield
        except (S3Error, http.client.HTTPException, OSError) as e:
            message = self._redact(f"{type(e).__name__}: {e}")
            raise RunnerError(
                f"object store {self.settings.endpoint}, bucket {self.bucket}: {what}: {message}"
            ) from None

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        with self._errors(f"writing {key}"):
            self._client.put(self.bucket, key, body, content_type)

    def _get(self, key: str) -> bytes | None:
        """The object's bytes, None when it does not exist."""
        with self._errors(f"reading {key}"):
            return self._client.get(self.bucket, key)

    def latest(self) -> Checkpoint | None:
        """The checkpoint the pointer names, checked against its digest; None before the first."""
        raw = self._get(self.pointer_key)
        if raw is None:
            return None
        try:
            pointer = json.loads(raw)
            key, step, sha = str(pointer["key"]), int(pointer["step"]), str(pointer["sha256"])
        except (ValueError, KeyError, TypeError) as e:
            raise RunnerError(f"{self.pointer_key} is not a checkpoint pointer: {e}") from None
        payload = self._get(key)
        if payload is None:
            raise RunnerError(f"{self.pointer_key} names {key}, which does not exist")
        if hashlib.sha256(payload).hexdigest() != sha:
            raise RunnerError(f"{key} does not match the sha256 in {self.pointer_key}")
        return Checkpoint(key=key, step=step, payload=payload)

    def save(self, step: int, payload: bytes, previous: str | None) -> str:
        """The checkpoint object, then the pointer; then the previous checkpoint goes."""
        key = f"{self.base}/checkpoints/step-{step:09d}.pt"
        self._put(key, payload, "application/octet-stream")
        pointer = {"key": key, "step": step, "sha256": hashlib.sha256(payload).hexdigest()}
        self._put(self.pointer_key, json.dumps(pointer).encode(), "application/json")
        if previous and previous != key:
            with self._errors(f"deleting {previous}"):
                self._client.delete(self.bucket, previous)
        return key

    def upload_final(self, model: bytes, metrics: dict[str, Any]) -> dict[str, str]:
        keys = {"model": f"{self.base}/final/model.pt", "metrics": f"{self.base}/final/metrics.json"}
        self._put(keys["model"], model, "application/octet-stream")
        self._put(keys["metrics"], json.dumps(metrics, indent=2, sort_keys=True).encode(), "application/json")
        return keys
