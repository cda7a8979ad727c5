"""A read-only Kubernetes API client made of the standard library (ssl, http.client), for the few
GET requests of a no-op run: importing the kubernetes package alone takes longer than that whole run.

It understands the plain kubeconfig: an http(s) server, its CA (file or data) or
insecure-skip-tls-verify, and a user with a client certificate and key (files or data) or a bearer
token (or tokenFile). Anything else (exec or auth-provider plugins, basic auth, proxies,
tls-server-name, impersonation) raises Unsupported, and the caller takes the kubernetes package's path.
It is a deploy.kube.reader.Reader, as is the kubernetes package's client behind ClientReader."""

import base64
import contextlib
import http.client
import json
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from deploy.kube.reader import JSON

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
USER_KEYS = {"client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile"}
CLUSTER_KEYS = {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify"}


class Unsupported(Exception):
    """This kubeconfig (or answer) needs more than this client does: use the kubernetes package."""


def _named(entries: Any, name: str, kind: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(kind), dict):
            return entry[kind]
    raise Unsupported(f"no {kind} {name!r} in the kubeconfig")


def _pem(section: dict[str, Any], key: str, base: Path) -> str | None:
    """`<key>-data` (base64) or the file `<key>` (relative to the kubeconfig's folder)."""
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"]).decode()
    if section.get(key):
        return (base / os.path.expanduser(str(section[key]))).read_text()
    return None


class KubeAPI:
    def __init__(self, server: str, ssl_context: ssl.SSLContext | None, token: str | None, timeout: float = 3.0):
        self.server = server
        url = urlsplit(server)
        if url.scheme not in ("https", "http") or not url.hostname or url.query or url.fragment:
            raise Unsupported(f"server {server!r}")
        self.prefix = url.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        if url.scheme == "https":
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.hostname, url.port or 443, context=ssl_context, timeout=timeout
            )
        else:
            self.conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, context: str | None) -> "KubeAPI":
        if any(os.environ.get(v) for v in PROXY_VARIABLES):
            raise Unsupported("a proxy is configured")
        try:
            config = yaml.safe_load(kubeconfig.read_text())
            if not isinstance(config, dict):
                raise Unsupported("not a kubeconfig")
            ctx = _named(config.get("contexts"), context or config.get("current-context") or "", "context")
            cluster = _named(config.get("clusters"), ctx.get("cluster", ""), "cluster")
            user = _named(config.get("users"), ctx.get("user", ""), "user") if ctx.get("user") else {}
            unknown = (set(cluster) - CLUSTER_KEYS - {"extensions"}) | (set(user) - USER_KEYS - {"extensions"})
            if unknown:
                raise Unsupported(f"kubeconfig settings {sorted(unknown)}")
            base = kubeconfig.parent
            token = user.get("token") or (
                (base / str(user["tokenFile"])).read_text().strip() if user.get("tokenFile") else None
            )
            ca = _pem(cluster, "certificate-authority", base)
            if (
                ca
            ):  # the kubeconfig's CA alone, as the kubernetes package trusts it (and faster than all of the system's)
                ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ssl_context.load_verify_locations(cadata=ca)
            else:
                ssl_context = ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
            cert, key = _pem(user, "client-certificate", base), _pem(user, "client-key", base)
            if bool(cert) != bool(key):
                raise Unsupported("a client certificate without its key (or the reverse)")
            if cert and key:
                _load_client_cert(ssl_context, cert, key)
        except (OSError, ValueError, ssl.SSLError, yaml.YAMLError, AttributeError, TypeError) as err:
            raise Unsupported(f"kubeconfig: {err}") from None
        return cls(str(cluster.get("server", "")), ssl_context, token)

    def get(self, path: str, query: dict[str, Any] | None = None, accept: str = JSON) -> Any:
        """The decoded JSON of a 200 answer, None for a 404; Unsupported for anything else."""
        url = self.prefix + path + ("?" + urlencode(query) if query else "")
        try:
            self.conn.request("GET", url, headers={**self.headers, "Accept": accept})
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as err:
            raise Unsupported(f"GET {path}: {type(err).__name__}: {err}") from None
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise Unsupported(f"GET {path}: HTTP {resp.status}")
        try:
            return json.loads(body)
        except ValueError:
            raise Unsupported(f"GET {path}: not JSON") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "KubeAPI":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_client_cert(ssl_context: ssl.SSLContext, cert: str, key: str) -> None:
    """`ssl` reads a client certificate only from a file: a private one, removed at once."""
    fd, path = tempfile.mkstemp(prefix="kaiml-client-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(cert.rstrip("\n") + "\n" + key)
        ssl_context.load_cert_chain(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
