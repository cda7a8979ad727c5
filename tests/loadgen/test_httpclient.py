"""The worker's HTTP client (loadgen/httpclient.py) against real servers on loopback: a small asyncio server
in the test writes scripted bytes, each piece a separate write with a pause (so each arrives as a read of
its own), to split responses where parsers go wrong: inside a chunk's size line, inside an SSE line, inside
the CRLF after a chunk's data; several events in one chunk; keep-alive reuse; the server closing; TLS."""

import asyncio
import itertools
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loadgen import httpclient
from loadgen.local import event_loop_runner
from loadgen.metrics import sse_events

PAUSE_S = 0.02  # between two pieces: each is a read of its own on loopback


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def event(n: int) -> bytes:
    """An SSE event of 29 bytes: its chunk's size line has two digits ("1d")."""
    return b'data: {"n":%d,"text":"word"}\n\n' % n


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


class Scripted:
    """Answers each request with the next reply: (pieces, then close the connection?). Counts connections."""

    def __init__(self, replies: list[tuple[list[bytes], bool]], ssl_context=None) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.requests: list[bytes] = []
        self.ssl = ssl_context

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.ssl)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{port}/v1/chat/completions"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
                self.requests.append(head + await reader.readexactly(length))
                pieces, close = self.replies.pop(0)
                for piece in pieces:
                    if piece == b"RESET":  # an RST, not a FIN
                        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                                   struct.pack("ii", 1, 0))  # fmt: skip
                        writer.transport.abort()
                        return
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(PAUSE_S)
                if close:
                    return
        finally:
            writer.close()


def split(wire: bytes, *after: bytes) -> list[bytes]:
    """`wire` cut right after each of these markers (found in order)."""
    pieces, at = [], 0
    for marker in after:
        cut = wire.index(marker, at) + len(marker)
        pieces.append(wire[at:cut])
        at = cut
    return [*pieces, wire[at:]]


def exchange(replies: list[tuple[list[bytes], bool]], count: int, between: float = 0.0, ssl_context=None,
             pool_setup: Callable[[], None] | None = None) -> tuple[list, Scripted]:  # fmt: skip
    """`count` requests one after the other through one Pool; each response or the exception it raised."""

    async def go() -> tuple[list, Scripted]:
        server = Scripted(replies, ssl_context)
        url = await server.start()
        if pool_setup:
            pool_setup()
        pool = httpclient.Pool(url)
        head, rest = pool.request(b'{"model":"m"}')
        out: list = []
        for i in range(count):
            try:
                out.append(await pool.post([head, b"r%d" % i, rest], time.perf_counter_ns()))
            except Exception as e:
                out.append(e)
            await asyncio.sleep(between)
        pool.close()
        server.server.close()
        return out, server

    with event_loop_runner() as runner:
        return runner.run(go())


def test_a_chunked_stream_split_anywhere_reads_whole() -> None:
    body = [event(1), event(2) + event(3), event(4)]  # chunk 2 carries two events
    c1, c2, c3 = (chunk(b) for b in body)
    wire = c1 + c2 + c3 + b"0\r\n\r\n"
    cuts = [
        1,  # inside chunk 1's size line
        c1.index(b'"text'),  # inside an SSE line
        len(c1 + c2) - 1,  # between the CR and LF after chunk 2's data
        len(c1 + c2) + c3.index(b"\r\n") + 1,  # between chunk 3's size line's CR and LF
        len(c1 + c2 + c3) + 3,  # inside the last chunk's two lines
    ]
    pieces = [CHUNKED_HEAD, *(wire[a:b] for a, b in itertools.pairwise([0, *cuts, len(wire)]))]
    [response], server = exchange([(pieces, False)], 1)
    assert response.status == 200 and response.ack is not None
    assert response.body() == b"".join(body)
    # Reads that carried body bytes: the start of event 1; its rest and chunk 2; chunk 3.
    times = [at for at, _ in response.chunks]
    assert len(times) == 3 and times == sorted(times) and response.end >= times[-1]
    events = sse_events([list(c) for c in response.chunks])
    assert [e for _, e in events] == [b'{"n":%d,"text":"word"}' % n for n in (1, 2, 3, 4)]
    # An event arrives with the read that completed it.
    assert [at for at, _ in events] == [times[1], times[1], times[1], times[2]]
    assert b"X-Request-ID: r0\r\n" in server.requests[0] and server.requests[0].endswith(b'{"model":"m"}')


def test_content_length_bodies_and_keep_alive_reuse() -> None:
    body = b'{"choices":[{"message":{"content":"hi there"}}]}'
    first = [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10], body[10:]]
    second = [CHUNKED_HEAD, chunk(event(1)) + chunk(event(2)) + b"0\r\n\r\n"]  # several chunks in one read
    third = [b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\n", b"oops"]
    (one, two, three), server = exchange([(first, False), (second, False), (third, False)], 3)
    assert one.body() == body and two.body() == event(1) + event(2) and len(two.chunks) == 1
    assert (three.status, three.reason, three.body()) == (500, "Internal Server Error", b"oops")
    assert server.connections == 1  # each finished response left the connection for the next request


def test_the_server_closing_the_connection() -> None:
    closes = [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]
    until_close = [b"HTTP/1.0 200 OK\r\n\r\npart one, ", b"part two"]
    keep_alive_then_close = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    replies = [(closes, True), (until_close, True), (keep_alive_then_close, True), (keep_alive_then_close, True)]
    # The third reply's connection is closed by the server after a keep-alive response: the next request
    # finds it closed (at once: no pause) and goes out on a new connection.
    out, server = exchange(replies, 4)
    assert [r.body() for r in out] == [b"ok", b"part one, part two", b"ok", b"ok"]
    assert server.connections == 4


def test_a_connection_lost_mid_response_is_an_error() -> None:
    cut = [CHUNKED_HEAD, chunk(event(1))]
    reset = [CHUNKED_HEAD, chunk(event(1)), b"RESET"]
    short = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"]
    (closed, was_reset, too_short), _ = exchange([(cut, True), (reset, True), (short, True)], 3)
    assert isinstance(closed, httpclient.ServerDisconnectedError)
    assert isinstance(was_reset, ConnectionError), repr(was_reset)
    assert isinstance(too_short, httpclient.ServerDisconnectedError)


def test_malformed_responses_are_errors() -> None:
    (bad_status, bad_chunk, extra), _ = exchange(
        [
            ([b"HTTP/1.1 OK\r\n\r\n"], True),
            ([CHUNKED_HEAD, b"zz\r\nabc\r\n"], True),
            ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"], True),
        ],
        3,
    )
    assert isinstance(bad_status, httpclient.ProtocolError) and "status line" in str(bad_status)
    assert isinstance(bad_chunk, httpclient.ProtocolError)
    assert isinstance(extra, httpclient.ProtocolError) and "Content-Length" in str(extra)


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=loadgen-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)  # fmt: skip
    return cert, key


def test_https_endpoints_are_verified_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    reply = [CHUNKED_HEAD, chunk(event(1)), chunk(event(2)) + b"0\r\n\r\n"]
    # Not trusted: refused.
    [refused], _ = exchange([(reply, False)], 1, ssl_context=context)
    assert isinstance(refused, ssl.SSLCertVerificationError), repr(refused)
    # Trusted (OpenSSL's SSL_CERT_FILE, read by the default context): read like plain HTTP, connection reused.
    (one, two), server = exchange([(reply, False), (reply, False)], 2, ssl_context=context,
                                  pool_setup=lambda: monkeypatch.setenv("SSL_CERT_FILE", str(cert)))  # fmt: skip
    assert one.body() == two.body() == event(1) + event(2)
    assert server.connections == 1


def test_the_engine_records_a_stream_cut_short_as_an_error(loadgen) -> None:
    """The whole engine against a server that sends one event and closes: every request is an error with
    its type, none is lost."""
    ready = threading.Event()
    box: dict = {}

    def serve() -> None:
        async def main() -> None:
            server = Scripted([([CHUNKED_HEAD, chunk(event(1))], True)] * 1000)
            box["url"] = await server.start()
            box["loop"] = asyncio.get_running_loop()
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()
            server.server.close()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        run = loadgen("cut", "--endpoint", box["url"], "--model", "m", "--streaming", "--concurrency", "4",
                      "--requests", "20")  # fmt: skip
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
    assert run.proc.returncode == 0, run.proc.stderr
    acc = run.summary["accounting"]
    assert (acc["sent"], acc["errors"], acc["lost"]) == (20, 20, 0)
    assert {r["error"]["type"] for r in run.records} == {"ServerDisconnectedError"}
