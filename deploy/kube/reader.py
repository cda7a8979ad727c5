"""The one small read interface that the preflight checks, the no-op check and the reading of Helm's
records go through: GET an API path, get its decoded JSON (None for a 404).

Two clients satisfy it: deploy.kube.readonly.KubeAPI (the standard library: a no-op run answers its
questions without importing the kubernetes package) and ClientReader below (the kubernetes package's
ApiClient, which speaks every kubeconfig: the full path). The checks are written once, against this."""

import json
from typing import Any, Protocol

from deploy.errors import ClusterError

JSON = "application/json"
# Metadata only (no spec, no data): what the checks need of nodes, CRDs and Helm's Secrets.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class Reader(Protocol):
    server: str  # the API server's URL, for messages

    def get(self, path: str, query: dict[str, Any] | None = None, accept: str = JSON) -> Any:
        """The decoded JSON of a 200 answer; None for a 404."""
        ...


class ForbiddenError(ClusterError):
    """The API server answered 403: the caller may not read this."""


class ClientReader:
    """Reader over a kubernetes ApiClient. A broken connection raises urllib3's error (callers turn it
    into a ClusterError naming the target); an answer other than 200 or 404 is a ClusterError."""

    def __init__(self, api_client: Any, timeout: tuple[float, float] = (5, 30)):
        self.api_client = api_client
        self.server = str(getattr(api_client.configuration, "host", "?"))
        self.timeout = timeout

    def get(self, path: str, query: dict[str, Any] | None = None, accept: str = JSON) -> Any:
        method, url, headers, _, _ = self.api_client.param_serialize(
            "GET", path, query_params=list((query or {}).items()), header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )  # fmt: skip
        resp = self.api_client.call_api(method, url, headers, _request_timeout=self.timeout)
        body = resp.read()
        if resp.status == 404:
            return None
        if resp.status != 200:
            detail = _message(body)
            error = ForbiddenError if resp.status == 403 else ClusterError
            raise error(f"GET {path} at {self.server}: HTTP {resp.status} {resp.reason}{detail}.")
        return json.loads(body)


def _message(body: bytes) -> str:
    """The API server's own words from a Status answer (e.g. what a Forbidden user may not do)."""
    try:
        text = json.loads(body).get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {text}" if text else ""
