"""Lists and watches of the API server's objects as plain JSON dicts.

The bench commands read hundreds of pods many times over (a 1,000-config sweep is some 5,000 pod
events); the client's model classes cost milliseconds per object to build and several times the
JSON's memory, so these helpers skip them: `json.loads` of what the server sent, nothing more.
Lists are paged, so a large namespace never sits in memory at once."""

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

# `reading(response)`: a block within which another thread may end the read (deploy/kube/streams.py Stop).
Reading = Callable[[Any], contextlib.AbstractContextManager[None]]

PAGE = 250


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


def get(obj: dict[str, Any] | None, *path: str, default: Any = None) -> Any:
    """obj[path[0]][path[1]]... or `default` where a step is missing or null."""
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def list_pages(list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[tuple[list[dict[str, Any]], str]]:
    """Each page of a list call: (items, the list's resourceVersion)."""
    token = None
    while True:
        resp = list_fn(*args, limit=PAGE, _continue=token, _preload_content=False, **kwargs)
        doc = json.loads(resp.data)
        meta = doc.get("metadata") or {}
        yield doc.get("items") or [], meta.get("resourceVersion", "")
        token = meta.get("continue")
        if not token:
            return


def list_all(list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    version = ""
    for page, listed in list_pages(list_fn, *args, **kwargs):
        items.extend(page)
        version = listed
    return items, version


def watch(
    list_fn: Callable[..., Any],
    *args: Any,
    resource_version: str,
    timeout_s: int,
    reading: Reading | None = None,
    **kwargs: Any,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, object) of each change after `resource_version`, bookmarks included, until the
    server ends the watch after `timeout_s`. Raises Expired on 410 Gone."""
    from kubernetes.client.rest import ApiException

    try:
        resp = list_fn(
            *args,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_s,
            _preload_content=False,
            **kwargs,
        )
    except ApiException as err:
        if err.status == 410:
            raise Expired() from err
        raise
    with reading(resp) if reading else contextlib.nullcontext():
        try:
            for line in _lines(resp):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        raise Expired()
                    raise ApiException(status=status.get("code"), reason=status.get("message"))
                yield event["type"], event["object"]
        finally:
            resp.release_conn()


def _lines(resp: Any) -> Iterator[bytes]:
    """Newline-delimited JSON from a streamed response, whatever its chunk boundaries."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def observe(
    list_fn: Callable[..., Any], *args: Any, timeout_s: int = 60, reading: Reading | None = None, **kwargs: Any
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object now (as ADDED, page by page), then each change, without end: watches resumed
    from the last resourceVersion seen, a new list when that expires. Bookmarks are not yielded.
    Other failures (a dropped connection) end it; observe again to start from a new list."""
    version: str | None = None
    while True:
        if version is None:
            for items, listed in list_pages(list_fn, *args, **kwargs):
                version = listed
                for obj in items:
                    yield "ADDED", obj
        try:
            changes = watch(
                list_fn, *args, resource_version=version or "", timeout_s=timeout_s, reading=reading, **kwargs
            )
            for kind, obj in changes:
                version = get(obj, "metadata", "resourceVersion", default=version)
                if kind != "BOOKMARK":
                    yield kind, obj
        except Expired:
            version = None
