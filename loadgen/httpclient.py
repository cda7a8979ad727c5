"""The worker's HTTP/1.1 client: asyncio Protocols (uvloop's where installed), keep-alive connections,
request bytes built once per prompt, and a response parser that works on bytes as they arrive.

Why not aiohttp: at 32 SSE chunks per request its per-read cost (a coroutine resumed, a StreamReader
buffer, a chunk object per read) alone was over the engine's CPU budget of 1 ms per request. Here each
read costs one `data_received` call: the status line and headers are parsed once, chunked transfer
encoding is undone with `find` and slices, and each read's body bytes are kept with its arrival time
(time.perf_counter_ns) for the record processors, which parse the SSE events. No task switch per read:
the request's coroutine wakes once, when the response is complete.

What it handles: http and https (asyncio's ssl on the transport, default verification, SNI), bodies by
Content-Length, chunked, or until the server closes; `Connection: close` and HTTP/1.0; 1xx heads;
a reused connection that the server had closed (the request is sent again once, on a new connection,
when not one byte of the response had come); a connection lost mid-response (an error)."""

import asyncio
import base64
import socket
import ssl
import time
from urllib.parse import urlsplit

# Refuse a response head larger than this: a misbehaving server, not an LLM endpoint.
MAX_HEAD = 64 * 1024
MAX_CHUNK_LINE = 4096
# How long a resolved address is used before it is looked up again (aiohttp's ttl_dns_cache did the same).
DNS_TTL_S = 300.0

# Body framing.
_LENGTH, _CHUNKED, _UNTIL_CLOSE = 1, 2, 3
# Chunked sub-states: a size line next, chunk data (self.left bytes), the CRLF after the data, trailers.
_SIZE, _DATA, _DATA_END, _TRAILERS = 0, 1, 2, 3


class ProtocolError(Exception):
    """The server's bytes are not HTTP/1.1 as this client reads it."""


class ServerDisconnectedError(ConnectionError):
    """The server closed the connection before the response was complete."""


class Response:
    """One exchange: status, reason, when the head and the last byte arrived (ns after the start), and
    the body as (ns after the start, bytes) per read. `t0` is the request's perf_counter_ns start."""

    __slots__ = ("ack", "chunks", "end", "reason", "received", "status", "t0")

    def __init__(self, t0: int) -> None:
        self.t0 = t0
        self.status = 0
        self.reason = ""
        self.ack: int | None = None
        self.end: int | None = None  # the last byte's arrival
        self.chunks: list[tuple[int, bytes]] = []
        self.received = 0  # bytes of this response seen, head included

    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)


def _whole_chunks(data: bytes, pieces: list[bytes]) -> int:
    """Whole non-empty chunks at the start of `data` to `pieces`; where they end (the rest is the parser's)."""
    pos, n = 0, len(data)
    while pos < n:
        eol = data.find(b"\r\n", pos)
        if not 0 < eol - pos < 9:
            break
        try:
            size = int(data[pos:eol], 16)
        except ValueError:
            break
        end = eol + 2 + size
        if size == 0 or end + 2 > n or data[end : end + 2] != b"\r\n":
            break
        pieces.append(data[eol + 2 : end])
        pos = end + 2
    return pos


class Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight on it."""

    def __init__(self, pool: "Pool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.response: Response | None = None
        self.done: asyncio.Future | None = None
        self.buffer = b""
        self.reusable = True
        self.in_head = True
        self.framing = _LENGTH
        self.left = 0
        self.chunk_state = _SIZE

    # -- asyncio's side ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # TCP_NODELAY: asyncio and uvloop set it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.done is None or self.done.done():
            return
        if self.framing == _UNTIL_CLOSE and not self.in_head:
            self._finish()  # the body ends where the connection does
            return
        reason = exc or ServerDisconnectedError("the server closed the connection before the response was complete")
        self.done.set_exception(reason)

    def eof_received(self) -> bool | None:
        return None  # close our end as well: connection_lost follows

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or self.done is None or self.done.done():
            # Bytes nobody asked for (a server talking out of turn): this connection is not reused.
            self.reusable = False
            self.transport.close()  # type: ignore[union-attr]
            return
        at = time.perf_counter_ns() - response.t0
        response.received += len(data)
        try:
            if self.in_head:
                data = self._head(data, at)
                if data is None:
                    return
            if self.framing == _CHUNKED:
                self._chunked(data, at)
            elif self.framing == _LENGTH:
                if len(data) > self.left:
                    raise ProtocolError(f"{len(data) - self.left} bytes past the response's Content-Length")
                if data:
                    response.chunks.append((at, data))
                    self.left -= len(data)
                if self.left == 0:
                    self._finish()
            elif data:
                response.chunks.append((at, data))
        except (ProtocolError, ValueError) as e:
            self.reusable = False
            self.done.set_exception(e if isinstance(e, ProtocolError) else ProtocolError(str(e)))
            self.transport.close()  # type: ignore[union-attr]

    # -- the response --------------------------------------------------------------------------------

    def _head(self, data: bytes, at: int) -> bytes | None:
        """Parse the status line and headers once they are whole; the bytes after them (or None: more to come)."""
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise ProtocolError(f"response head over {MAX_HEAD} bytes")
            self.buffer = buffer
            return None
        self.buffer = b""
        lines = buffer[:end].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(code)
        rest_bytes = buffer[end + 4 :]
        if 100 <= status < 200:  # an interim response (100 Continue, 103 Early Hints): the real one follows
            return self._head(rest_bytes, at) if rest_bytes else None
        response = self.response
        assert response is not None
        response.status = status
        response.reason = reason.decode("latin-1")
        response.ack = at
        length = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
                if length < 0:
                    raise ProtocolError("negative Content-Length")
            elif name == b"transfer-encoding":
                chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"connection":
                token = value.strip().lower()
                if token == b"close":
                    keep_alive = False
                elif token == b"keep-alive":
                    keep_alive = True
        self.reusable = keep_alive
        self.in_head = False
        if chunked:
            self.framing, self.chunk_state, self.left = _CHUNKED, _SIZE, 0
        elif length is not None or status in (204, 304):
            self.framing, self.left = _LENGTH, length or 0
            if self.left == 0:
                if rest_bytes:
                    raise ProtocolError("bytes after a response without a body")
                self._finish()
                return None
        else:
            self.framing = _UNTIL_CLOSE
            self.reusable = False
        return rest_bytes

    def _chunked(self, data: bytes, at: int) -> None:
        """Undo chunked transfer encoding over this read; the read's body bytes become one chunk."""
        pieces: list[bytes] = []
        if not self.buffer and self.chunk_state == _SIZE:
            # The common read: whole chunks (a server writes an event per write; several when it catches up).
            pos = _whole_chunks(data, pieces)
            if pos == len(data):
                self._add(pieces, at)
                return
            data = data[pos:] if pos else data
        buffer = self.buffer + data if self.buffer else data
        n = len(buffer)
        pos = 0
        state = self.chunk_state
        while pos < n:
            if state == _DATA:
                take = min(self.left, n - pos)
                pieces.append(buffer[pos : pos + take] if pos or take < n else buffer)
                pos += take
                self.left -= take
                if self.left:
                    break
                state = _DATA_END
            elif state == _DATA_END:
                if n - pos < 2:
                    break
                if buffer[pos : pos + 2] != b"\r\n":
                    raise ProtocolError("no CRLF after a chunk's data")
                pos += 2
                state = _SIZE
            elif state == _SIZE:
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    if n - pos > MAX_CHUNK_LINE:
                        raise ProtocolError("chunk size line too long")
                    break
                size = int(buffer[pos:eol].split(b";", 1)[0].strip(), 16)
                pos = eol + 2
                if size == 0:
                    state = _TRAILERS
                else:
                    self.left = size
                    state = _DATA
            else:  # trailers: header lines, then an empty line
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    if n - pos > MAX_HEAD:
                        raise ProtocolError("trailers too long")
                    break
                empty = eol == pos
                pos = eol + 2
                if empty:
                    if pos < n:
                        raise ProtocolError("bytes after the last chunk")
                    self.buffer = b""
                    self._add(pieces, at)
                    self._finish()
                    return
        self.chunk_state = state
        self.buffer = buffer[pos:] if pos < n else b""
        self._add(pieces, at)

    def _add(self, pieces: list[bytes], at: int) -> None:
        if pieces:
            self.response.chunks.append((at, pieces[0] if len(pieces) == 1 else b"".join(pieces)))  # type: ignore[union-attr]

    def _finish(self) -> None:
        self.response.end = time.perf_counter_ns() - self.response.t0  # type: ignore[union-attr]
        done = self.done
        self.done = None
        if done is not None and not done.done():
            done.set_result(self.response)

    # -- the request ---------------------------------------------------------------------------------

    async def exchange(self, request: list[bytes], t0: int) -> Response:
        """Send the request's bytes; the response once complete."""
        self.response = Response(t0)
        self.in_head = True
        self.buffer = b""
        self.done = asyncio.get_running_loop().create_future()
        self.transport.writelines(request)  # type: ignore[union-attr]
        return await self.done


class Pool:
    """A worker's connections to one endpoint: idle ones reused (last in, first out), new ones opened as the
    requests in flight need them. The number open is bounded by the worker's credits."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.idle: list[Connection] = []
        self.addresses: list[tuple] = []
        self.resolved_at = -DNS_TTL_S
        self.next_address = 0
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"POST {path} HTTP/1.1", f"Host: {host if default_port else f'{host}:{self.port}'}",
                "Content-Type: application/json", "Accept: */*"]  # fmt: skip
        if parts.username is not None:
            user = f"{parts.username}:{parts.password or ''}".encode()
            head.append(f"Authorization: Basic {base64.b64encode(user).decode()}")
        self.head = ("\r\n".join(head) + "\r\n").encode("latin-1")

    def request(self, body: bytes) -> tuple[bytes, bytes]:
        """A request's bytes around its X-Request-ID: (head up to the header, the rest with the body)."""
        return self.head + b"X-Request-ID: ", b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    def forget(self, conn: Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    async def _address(self) -> tuple:
        loop = asyncio.get_running_loop()
        if not self.addresses or loop.time() - self.resolved_at > DNS_TTL_S:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            self.addresses = [(family, address) for family, *_, address in infos]
            self.resolved_at = loop.time()
        self.next_address = (self.next_address + 1) % len(self.addresses)
        return self.addresses[self.next_address]

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        family, address = await self._address()
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(self), address[0], address[1], family=family, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )  # fmt: skip
        except OSError:
            self.addresses = []  # look the name up again next time
            raise
        return conn

    async def post(self, request: list[bytes], t0: int) -> Response:
        """One exchange on an idle connection (or a new one); a reused connection that turns out closed
        before one byte of the response came is replaced once."""
        while self.idle:
            conn = self.idle.pop()
            if conn.closed:
                continue
            try:
                response = await conn.exchange(request, t0)
            except (ConnectionError, OSError):
                if conn.response is not None and conn.response.received:
                    raise
                conn.transport.abort()  # type: ignore[union-attr]
                break  # the server closed it while idle: once more on a new connection
            except BaseException:
                conn.transport.abort()  # type: ignore[union-attr]
                raise
            self.release(conn)
            return response
        conn = await self.connect()
        try:
            response = await conn.exchange(request, t0)
        except BaseException:
            conn.transport.abort()  # type: ignore[union-attr]
            raise
        self.release(conn)
        return response

    def release(self, conn: Connection) -> None:
        conn.response = None
        if conn.reusable and not conn.closed:
            self.idle.append(conn)
        else:
            conn.transport.close()  # type: ignore[union-attr]

    def close(self) -> None:
        for conn in self.idle:
            conn.transport.close()  # type: ignore[union-attr]
        self.idle = []
