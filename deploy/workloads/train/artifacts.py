"""A run's artifacts in the object store (runs/train-<run>/values.json says where): the final model and
metrics, or the latest checkpoint of a run that did not finish. The key pair comes from an env file or the
cluster's Secret and is never printed or written anywhere but the client."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.errors import ClusterError, ValuesError

ACCESS_KEY = "access-key"
SECRET_KEY = "secret-key"


@dataclass(frozen=True)
class KeyPair:
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    @classmethod
    def of(cls, data: dict[str, str], source: str) -> "KeyPair":
        missing = [k for k in (ACCESS_KEY, SECRET_KEY) if not data.get(k)]
        if missing:
            raise ValuesError(f"{source} has no {' and no '.join(missing)}: the object store's key pair is the keys "
                              f"{ACCESS_KEY} and {SECRET_KEY}.")  # fmt: skip
        return cls(data[ACCESS_KEY].strip(), data[SECRET_KEY].strip())

    def redact(self, text: str) -> str:
        for value in (self.secret_key, self.access_key):
            text = text.replace(value, "[redacted]")
        return text


def from_cluster(api_client: Any, namespace: str, name: str) -> KeyPair:
    """The key pair from the credentials Secret (needs `get` on it: platform admins)."""
    import base64

    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        secret = client.CoreV1Api(api_client).read_namespaced_secret(name, namespace)
    except ApiException as err:
        raise ClusterError(
            f"cannot read Secret {namespace}/{name} ({err.status} {err.reason}): give the key pair with "
            "--credentials-env-file F instead."
        ) from None
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    return KeyPair.of(data, f"Secret {namespace}/{name}")


def write_secret_dir(keys: KeyPair, directory: Path) -> Path:
    """The key pair as the Secret volume gives it to a pod: one file per key, owner-read only."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, value in ((ACCESS_KEY, keys.access_key), (SECRET_KEY, keys.secret_key)):
        path = directory / name
        path.write_text(value)
        path.chmod(0o400)
    return directory


def download(store: dict[str, Any], job: str, keys: KeyPair, into: Path) -> list[Path]:
    """final/model.pt and final/metrics.json of the run (Job `job`), or its latest checkpoint when it has no
    final model; returns the files written. The runner's own S3 client (runner/training/s3.py)."""
    import http.client

    from runner.training.s3 import Client, S3Error

    base = f"{store['prefix'].strip('/')}/{job}" if store.get("prefix") else job
    client = Client(store["endpoint"].rstrip("/"), store["region"], access_key=keys.access_key,
                    secret_key=keys.secret_key)  # fmt: skip
    into.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def fetch(key: str, name: str) -> bytes | None:
        data = client.get(store["bucket"], key)
        if data is not None:
            (into / name).write_bytes(data)
            written.append(into / name)
        return data

    try:
        if fetch(f"{base}/final/model.pt", "model.pt") is not None:
            fetch(f"{base}/final/metrics.json", "metrics.json")
            return written
        pointer = fetch(f"{base}/checkpoints/latest", "checkpoint-latest.json")
        if pointer is not None:
            key = json.loads(pointer)["key"]
            fetch(key, key.rsplit("/", 1)[-1])
    except (S3Error, http.client.HTTPException, OSError, ValueError, KeyError) as e:
        raise ClusterError(
            f"object store {store['endpoint']}, bucket {store['bucket']}: cannot download {base}/: "
            f"{keys.redact(f'{type(e).__name__}: {e}')}"
        ) from None
    return written
