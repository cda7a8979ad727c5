"""A small S3 client over the standard library: PUT, GET and DELETE of whole objects and the keys under a
prefix, path-style, signed with AWS Signature Version 4 (any S3-compatible store: AWS S3, MinIO, R2, moto).
The runner image has Debian's torch and nothing from PyPI, and Debian ships no S3 client that needs no more
packages; this covers what checkpoints and artifacts need, and the listing that the tests check a store's
contents with (the project's one S3 client). Connection errors and 5xx answers are retried with backoff, so
a store restart is ridden out.

The key pair only signs: it is never sent, logged or put in an error."""

import hashlib
import hmac
import http.client
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

SERVICE = "s3"
ALGORITHM = "AWS4-HMAC-SHA256"
RETRIED = (500, 502, 503, 504)
SAFE = "-_.~"  # SigV4's unreserved characters: everything else in a query is percent-encoded


class S3Error(Exception):
    """An answer other than 2xx: the S3 error `code` (NoSuchKey, SignatureDoesNotMatch, ...) and HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Client:
    endpoint: str  # http(s)://host[:port]
    region: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    timeout: float = 60.0
    retries: int = 5

    def put(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._request("PUT", bucket, key, body, {"content-type": content_type})

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes; None when it does not exist."""
        try:
            return self._request("GET", bucket, key)
        except S3Error as e:
            if e.code == "NoSuchKey" or (e.status == 404 and e.code != "NoSuchBucket"):
                return None
            raise

    def delete(self, bucket: str, key: str) -> None:
        self._request("DELETE", bucket, key)

    def keys(self, bucket: str, prefix: str = "", page: int = 1000) -> list[str]:
        """The keys under `prefix`, every page of ListObjectsV2 (NoSuchBucket when there is no such bucket)."""
        from xml.etree import ElementTree

        found: list[str] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page)}
            query |= {"continuation-token": token} if token else {}
            listing = ElementTree.fromstring(self._request("GET", bucket, "", query=query))
            found += [key.text or "" for key in listing.iterfind("{*}Contents/{*}Key")]
            token = listing.findtext("{*}NextContinuationToken")
            if listing.findtext("{*}IsTruncated") != "true" or not token:
                return found

    def _headers(self, method: str, path: str, query: str, body: bytes, extra: dict[str, str]) -> dict[str, str]:
        """The signed headers of one request (SigV4, header-based); `query` canonical (sorted, encoded)."""
        host = urlsplit(self.endpoint).netloc
        now = datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {"host": host, "x-amz-date": stamp, "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
                   **extra}  # fmt: skip
        names = sorted(headers)
        canonical = "\n".join([
            method, path, query,
            *(f"{n}:{headers[n].strip()}" for n in names), "",
            ";".join(names), headers["x-amz-content-sha256"],
        ])  # fmt: skip
        scope = f"{day}/{self.region}/{SERVICE}/aws4_request"
        to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = _hmac(_hmac(_hmac(_hmac(f"AWS4{self.secret_key}".encode(), day), self.region), SERVICE), "aws4_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return headers

    def _request(
        self,
        method: str,
        bucket: str,
        key: str,
        body: bytes = b"",
        extra: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> bytes:
        url = urlsplit(self.endpoint)
        path = "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/-_.~") if key else "")
        canonical = "&".join(f"{quote(k, safe=SAFE)}={quote(v, safe=SAFE)}" for k, v in sorted((query or {}).items()))
        target = f"{path}?{canonical}" if canonical else path
        connection = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        for attempt in range(self.retries + 1):
            conn = connection(url.netloc, timeout=self.timeout)
            try:
                headers = self._headers(method, path, canonical, body, extra or {})
                conn.request(method, target, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                if attempt == self.retries:
                    raise
                time.sleep(0.5 * 2**attempt)
                continue
            finally:
                conn.close()
            if 200 <= response.status < 300:
                return data
            if response.status in RETRIED and attempt < self.retries:
                time.sleep(0.5 * 2**attempt)
                continue
            text = data.decode(errors="replace")
            code = re.search(r"<Code>([^<]*)</Code>", text)
            message = re.search(r"<Message>([^<]*)</Message>", text)
            raise S3Error(
                response.status,
                code[1] if code else response.reason,
                (message[1] if message else text[:200]) + f" ({method} {path})",
            )
        raise AssertionError("unreachable")
