"""What is deployed, read in one API call: Helm 3/4 keep each release revision in a Secret of type
`helm.sh/release.v1` (labels owner=helm, name, status, version; data.release is
base64(gzip(json))). Reading them directly instead of running `helm status` per release is what
lets a no-op re-run finish in about a second.

Skipping unchanged releases: each release this tool applies gets the description
`kaiml-deploy digest=<sha256>`, the digest of its chart's files (library included), its final
values and the release namespace. A release is unchanged when its current revision is `deployed`
and carries the same digest. Anything else (a failed or pending revision, a manual
`helm upgrade`, a rollback: those rewrite the description) makes it changed again.

The same digest is also put, as labels, on the release's storage Secret (`helm upgrade --labels`),
where a no-op run reads it from one metadata-only list call, without decoding any release:
`kaiml.io/digest` (the digest's first 40 hex digits; a label value holds at most 63 characters) and
`kaiml.io/revision`, the revision the labels were written for. Helm carries labels over to later
revisions (an upgrade merges them, a rollback copies the target's), so labels count only on the
revision they name: a revision made by anything else is read the slow way, from its description."""

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deploy.kube.reader import METADATA_LIST, Reader
from deploy.platform.charts import chart_digest
from deploy.platform.values import canonical

DIGEST_PREFIX = "kaiml-deploy digest="
DIGEST_LABEL = "kaiml.io/digest"
REVISION_LABEL = "kaiml.io/revision"
LABEL_DIGEST_CHARS = 40
FORMAT = "1"  # bump when what the digest covers changes
# Helm's storage Secrets, the newest revisions only.
HELM_SECRETS = {"labelSelector": "owner=helm,status!=superseded", "fieldSelector": "type=helm.sh/release.v1"}


@dataclass(frozen=True)
class Deployed:
    name: str
    revision: int
    status: str
    description: str
    chart: str  # name-version
    updated: str

    @property
    def digest(self) -> str | None:
        return self.description.removeprefix(DIGEST_PREFIX) if self.description.startswith(DIGEST_PREFIX) else None


def release_digest(chart_dir: Path, values: dict[str, Any], namespace: str) -> str:
    payload = canonical({"format": FORMAT, "chart": chart_digest(chart_dir), "values": values, "namespace": namespace})
    return hashlib.sha256(payload.encode()).hexdigest()


def description(digest: str) -> str:
    return f"{DIGEST_PREFIX}{digest}"


def digest_labels(digest: str, revision: int) -> dict[str, str]:
    """Labels for the storage Secret of `revision` (the one `helm upgrade` is about to write)."""
    return {DIGEST_LABEL: digest[:LABEL_DIGEST_CHARS], REVISION_LABEL: str(revision)}


def is_current(current: "Deployed | Labelled | None", digest: str) -> bool:
    """The one rule for "this release is what the run would apply": its newest revision is `deployed`,
    made by this tool from `digest`, and nothing has made a revision since. Read from the release record
    (Deployed: its description) or from the storage Secret's labels alone (Labelled: the no-op path)."""
    if current is None or current.status != "deployed":
        return False
    if isinstance(current, Labelled):
        return (
            current.labels.get(REVISION_LABEL) == str(current.revision)
            and current.labels.get(DIGEST_LABEL) == digest[:LABEL_DIGEST_CHARS]
        )
    return current.digest == digest


@dataclass(frozen=True)
class Labelled:
    """The newest revision of a release as its storage Secret's labels tell it."""

    name: str
    revision: int
    status: str
    labels: dict[str, str]


def from_secret_labels(items: list[dict[str, Any]]) -> dict[str, Labelled]:
    """Newest revision per release name from the metadata of Helm storage Secrets."""
    out: dict[str, Labelled] = {}
    for item in items:
        labels = (item.get("metadata") or {}).get("labels") or {}
        name, version = labels.get("name"), labels.get("version", "")
        if labels.get("owner") != "helm" or not name or not version.isdigit():
            continue
        if name not in out or int(version) > out[name].revision:
            out[name] = Labelled(name, int(version), str(labels.get("status", "unknown")), dict(labels))
    return out


def decode_release(data: str) -> dict[str, Any]:
    """The release record inside a Helm storage Secret's `data.release` (as the API returns it)."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def from_secret_items(items: list[dict[str, Any]]) -> dict[str, Deployed]:
    """Newest revision per release name from a list of Helm storage Secrets (raw JSON dicts)."""
    newest: dict[str, dict[str, Any]] = {}
    for item in items:
        labels = item.get("metadata", {}).get("labels") or {}
        name, version = labels.get("name"), int(labels.get("version", 0))
        if name and (name not in newest or version > int(newest[name]["metadata"]["labels"]["version"])):
            newest[name] = item
    out = {}
    for name, item in newest.items():
        rel = decode_release(item["data"]["release"])
        info = rel.get("info") or {}
        meta = (rel.get("chart") or {}).get("metadata") or {}
        out[name] = Deployed(
            name=name,
            revision=int(rel.get("version", 0)),
            status=str(info.get("status", "unknown")),
            description=str(info.get("description", "")),
            chart=f"{meta.get('name', '?')}-{meta.get('version', '?')}",
            updated=str(info.get("last_deployed", "")),
        )
    return out


def read_deployed(reader: Reader, namespace: str) -> dict[str, Deployed]:
    """All releases in `namespace`, newest revision each (superseded revisions are not fetched)."""
    found = reader.get(f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets", HELM_SECRETS)
    return from_secret_items((found or {}).get("items") or [])


def read_labelled(reader: Reader, namespace: str) -> dict[str, Labelled] | None:
    """The same, from the Secrets' metadata only (no release decoded): the no-op path's one request."""
    found = reader.get(f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets", HELM_SECRETS, METADATA_LIST)
    return None if not isinstance(found, dict) else from_secret_labels(found.get("items") or [])
