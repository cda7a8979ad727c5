"""Secrets the charts reference but never create: read from a KEY=VALUE file and written to the cluster,
without a value ever reaching an output, a log or an error (errors name the file, the line and the key).
Also whether one exists, from its metadata only."""

import base64
import re
from pathlib import Path
from typing import Any

from deploy.errors import ClusterError, PreflightError, ValuesError
from deploy.kube.reader import METADATA

# A Secret's data key (kubectl's rule for --from-env-file keys).
KEY = re.compile(r"[-._a-zA-Z0-9]+")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and `#` comments skipped, no quoting rules: the value is the rest of
    the line, as kubectl's --from-env-file reads it)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ValuesError(f"cannot read the env file {path}: {e.strerror or type(e).__name__}.") from None
    data: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not KEY.fullmatch(key):
            shown = f"key {key!r}" if sep else "a line without `=`"
            raise ValuesError(
                f"{path}, line {number}: {shown} is not KEY=VALUE with a key of letters, digits, `-`, `_` and `.` "
                "(the line's value is not shown)."
            )
        if key in data:
            raise ValuesError(f"{path}, line {number}: key {key!r} appears twice.")
        data[key] = value
    if not data:
        raise ValuesError(f"{path} holds no KEY=VALUE line: a Secret needs at least one key.")
    return data


def exists(api_client: Any, namespace: str, name: str) -> bool | None:
    """Whether the Secret exists, from its metadata only (no value is read); None when the caller may not
    `get` Secrets there (a job creator holds only `use` on its credentials)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(api_client).read_namespaced_secret(
            name, namespace, _headers={"Accept": METADATA}, _preload_content=False, _request_timeout=10
        )
    except ApiException as err:
        if err.status == 404:
            return False
        if err.status == 403:
            return None
        raise ClusterError(f"cannot check Secret {namespace}/{name}: {err.status} {err.reason}") from None
    return True


def require(api_client: Any, namespace: str, name: str, needed_by: str, hint: str) -> None:
    """PreflightError naming the Secret when it does not exist (before anything is applied); a warning when
    the caller may not look."""
    found = exists(api_client, namespace, name)
    if found is None:
        from deploy.console import warning

        warning(f"cannot check that the Secret {namespace}/{name} exists (no `get` on Secrets in {namespace}): if it "
                "does not, the pod waits in ContainerCreating and `status` says so")  # fmt: skip
        return
    if not found:
        raise PreflightError(
            f"the Secret {namespace}/{name} that {needed_by} needs does not exist. Nothing was applied. The charts "
            f"never create credentials from values: {hint}"
        )


def apply(api_client: Any, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]) -> str:
    """Create the Secret, or replace its data when it exists; returns "created" or "updated". Errors carry
    the API server's status and reason only (its message may quote the object)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    try:
        try:
            core.create_namespaced_secret(namespace, body, _preload_content=False)
            return "created"
        except ApiException as err:
            if err.status != 409:
                raise
        core.replace_namespaced_secret(name, namespace, body, _preload_content=False)
        return "updated"
    except ApiException as err:
        raise ClusterError(
            f"cannot write Secret {namespace}/{name}: {err.status} {err.reason} (the server's message is not shown: "
            "it may quote the Secret)."
        ) from None
