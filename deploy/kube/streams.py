"""Watches that run in background threads, feed one queue, and end when asked.

A watch blocks in a socket read until the server sends an event or ends the watch (up to a minute
later). A thread still inside such a read when the interpreter exits can abort the process (SIGABRT,
seen as `run start --no-follow` exiting -6 after it had done everything): so stopping shuts down the
socket of every read in flight, which ends it at once, and the threads are joined before the caller
goes on. Dropped connections and API server restarts are retried, from a new list."""

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from deploy.kube import watch as kube

# Tries of a watch or a read that fails (a dropped connection, an API server restart),
# 1, 2, 4, 8, 16 s apart: half a minute of outage is ridden out.
ATTEMPTS = 6
# How long a stopped thread may take to end: its read is shut down, so it ends in milliseconds; a
# list call in flight (not shut down: it is short) bounds it.
JOIN_S = 10.0

Event = tuple[str, str, Any]  # (topic, event type, object); ("error", topic, exception) after ATTEMPTS failures


class Stopped(Exception):
    """A read began after its Stop was set."""


class Stop(threading.Event):
    """An Event whose `set()` also ends the reads in flight that were registered with `reading`."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._open: set[Any] = set()

    def set(self) -> None:
        super().set()
        with self._lock:
            responses = list(self._open)
        for response in responses:
            _shut(response)

    @contextlib.contextmanager
    def reading(self, response: Any) -> Iterator[None]:
        """Within this block, `set()` shuts down `response`'s socket (a urllib3 response). Raises Stopped
        when set already: a shut-down read may end as if the server had closed the watch, and the next
        watch must not begin."""
        with self._lock:
            if self.is_set():
                _shut(response)
                raise Stopped()
            self._open.add(response)
        try:
            yield
        finally:
            with self._lock:
                self._open.discard(response)


def _shut(response: Any) -> None:
    # Already released or closed: nothing is reading from it.
    with contextlib.suppress(Exception):
        response.shutdown()


def backoff(stop: threading.Event, failures: int) -> None:
    """1, 2, 4... s after the 1st, 2nd, 3rd... failure in a row; at once when stopped."""
    stop.wait(2 ** (failures - 1))


def stream(
    out: "queue.Queue[Event]",
    stop: Stop,
    topic: str,
    list_fn: Callable[..., Any],
    namespace: str,
    watch_s: int,
    **selectors: str,
) -> None:
    """Each object of `kube.observe` to `out` as (topic, event type, object), until stopped. ATTEMPTS
    failures in a row go to `out` as ("error", topic, exception), and end it."""
    failures = 0
    while not stop.is_set():
        try:
            for kind, obj in kube.observe(list_fn, namespace, timeout_s=watch_s, reading=stop.reading, **selectors):
                if stop.is_set():
                    return
                out.put((topic, kind, obj))
                failures = 0
        except Exception as err:
            if stop.is_set():  # the read was shut down on purpose
                return
            failures += 1
            if failures >= ATTEMPTS:
                out.put(("error", topic, err))
                return
            backoff(stop, failures)


def refusal(err: Exception) -> str:
    """One line from a failed API call: the status code and the server's own message."""
    from kubernetes.client.rest import ApiException

    if not isinstance(err, ApiException):
        return f"{type(err).__name__}: {err}"[:300]
    message = ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        message = json.loads(err.body).get("message", "")
    return f"{err.status} {message or err.reason or ''}".strip()[:300]


class Watches:
    """`with Watches(namespace, watch_s, (topic, list_fn, selectors), ...) as w:` starts one thread per
    watch, all feeding `w.events`; leaving the block stops and joins them. `w.stop` is for other threads
    of the caller's that should end with them (it is a threading.Event)."""

    def __init__(self, namespace: str, watch_s: int, *watched: tuple[str, Callable[..., Any], dict[str, str]]) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.stop = Stop()
        self._threads = [
            threading.Thread(
                target=stream,
                args=(self.events, self.stop, topic, fn, namespace, watch_s),
                kwargs=selectors,
                name=f"watch-{topic}",
                daemon=True,  # a join that times out must not keep the process alive
            )
            for topic, fn, selectors in watched
        ]

    def __enter__(self) -> "Watches":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(JOIN_S)
