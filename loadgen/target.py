"""A target to test against: an OpenAI-compatible endpoint (chat and completions, streaming or not)
with configured time to first token, inter-token latency and output length. One word per token, so
loadgen's tokenizer counts exactly what was configured. Several processes can share one listening
socket (pre-fork) to hold many connections on a small machine; it listens on loopback by default.

Token times follow absolute deadlines (start + TTFT + i * ITL), so a late wake-up does not push the
following tokens later: the mean ITL stays the configured one."""

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass

from aiohttp import web

from loadgen.limits import raise_files

_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod",
          "tempor")


@dataclass(frozen=True)
class TargetConfig:
    ttft_ms: float = 50.0
    itl_ms: float = 20.0
    output_tokens: int = 32
    honor_max_tokens: bool = False
    error_every: int = 0  # every Nth request of a process answers 500 (0: never)


class Counters:
    """Shared across the target's processes (fork-inherited shared memory)."""

    def __init__(self) -> None:
        self.requests = multiprocessing.Value("q", 0)
        self.active = multiprocessing.Value("q", 0)
        self.peak = multiprocessing.Value("q", 0)

    def enter(self) -> int:
        with self.requests.get_lock():
            self.requests.value += 1
            n = self.requests.value
        with self.active.get_lock():
            self.active.value += 1
            if self.active.value > self.peak.value:
                self.peak.value = self.active.value
        return n

    def leave(self) -> None:
        with self.active.get_lock():
            self.active.value -= 1

    def as_json(self) -> dict:
        return {"requests": self.requests.value, "active": self.active.value, "peak_active": self.peak.value}


def _chunk(model: str, kind: str, text: str, finish: str | None) -> bytes:
    if kind == "chat":
        choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        obj = "text_completion"
    body = {"id": "loadgen-target", "object": obj, "created": 0, "model": model, "choices": [choice]}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class _Stream:
    """One streamed response's token events, each written straight to the connection by a timer callback at
    its absolute deadline (start + TTFT + i * ITL). A coroutine step and aiohttp's writer per token cost
    several times more CPU: at concurrency 500 that is some 24,000 tokens a second, and a target that falls
    behind its own schedule on a 2-core machine measures itself, not the client. The frames are HTTP/1.1
    chunks already; aiohttp wrote the headers and writes the last (empty) chunk."""

    __slots__ = ("done", "frames", "handle", "index", "itl", "loop", "start", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport | None, frames: list[bytes],
                 first_at: float, itl_s: float) -> None:  # fmt: skip
        self.loop, self.transport, self.frames = loop, transport, frames
        self.start, self.itl, self.index = first_at, itl_s, 0
        self.done: asyncio.Future[None] = loop.create_future()
        self.handle: asyncio.TimerHandle | None = loop.call_at(first_at, self.step)

    def step(self) -> None:
        self.handle = None
        transport = self.transport
        if transport is None or transport.is_closing():  # the client went: nothing more to send
            self._finish()
            return
        transport.write(self.frames[self.index])
        self.index += 1
        if self.index == len(self.frames):
            self._finish()
            return
        self.handle = self.loop.call_at(self.start + self.index * self.itl, self.step)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def make_app(cfg: TargetConfig, counters: Counters) -> web.Application:
    # Pre-encoded token events per (model, kind, n), framed as HTTP/1.1 chunks: the target's CPU goes to
    # writing, not encoding.
    cache: dict[tuple[str, str, int], list[bytes]] = {}

    def frames(model: str, kind: str, n: int) -> list[bytes]:
        key = (model, kind, n)
        have = cache.get(key)
        if have is None:
            events = [_chunk(model, kind, " " + _WORDS[i % len(_WORDS)], None) for i in range(n)]
            events[-1] += _chunk(model, kind, "", "length") + b"data: [DONE]\n\n"
            have = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
            if len(cache) < 64:  # a few models and lengths; --honor-max-tokens could ask for many
                cache[key] = have
        return have

    async def completion(request: web.Request, kind: str) -> web.StreamResponse:
        number = counters.enter()
        try:
            try:
                body = await request.json()
                model = str(body["model"])
            except (ValueError, KeyError, TypeError):
                return web.json_response({"error": {"message": "want a JSON body with \"model\""}}, status=400)
            if cfg.error_every and number % cfg.error_every == 0:
                return web.json_response({"error": {"message": "configured failure"}}, status=500)
            n = cfg.output_tokens
            asked = body.get("max_completion_tokens") or body.get("max_tokens")
            if cfg.honor_max_tokens and isinstance(asked, int) and asked > 0:
                n = asked
            loop = asyncio.get_running_loop()
            start = loop.time()
            if not body.get("stream"):
                await asyncio.sleep(cfg.ttft_ms / 1000 + (n - 1) * cfg.itl_ms / 1000)
                text = "".join(" " + _WORDS[i % len(_WORDS)] for i in range(n))
                if kind == "chat":
                    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
                else:
                    choice = {"index": 0, "text": text, "finish_reason": "length"}
                return web.json_response({"id": "loadgen-target", "object": kind, "model": model,
                                          "choices": [choice],
                                          "usage": {"completion_tokens": n}})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            response.enable_chunked_encoding()
            await response.prepare(request)  # the headers go out now
            stream = _Stream(loop, request.transport, frames(model, kind, n), start + cfg.ttft_ms / 1000,
                             cfg.itl_ms / 1000)  # fmt: skip
            try:
                await stream.done
            finally:
                stream.cancel()
            if request.transport is not None and not request.transport.is_closing():
                await response.write_eof()  # the last chunk, through aiohttp: the connection is reused
            return response
        finally:
            counters.leave()

    async def chat(request: web.Request) -> web.StreamResponse:
        return await completion(request, "chat")

    async def completions(request: web.Request) -> web.StreamResponse:
        return await completion(request, "completions")

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "loadgen-target", "object": "model"}]})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(counters.as_json())

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    return app


def _serve(sock: socket.socket, cfg: TargetConfig, counters: Counters) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    web.run_app(make_app(cfg, counters), sock=sock, print=None, access_log=None, handle_signals=False,
                backlog=4096, shutdown_timeout=1)


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # The kernel caps the backlog at net.core.somaxconn; a burst of thousands of connects needs it long.
    sock.listen(65535)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadgen target", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: any free port (printed)")
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=20.0)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--honor-max-tokens", action="store_true", help="stream the request's max_tokens instead")
    p.add_argument("--error-every", type=int, default=0, metavar="N", help="answer 500 to every Nth request")
    p.add_argument("--processes", type=int, default=1, help="processes sharing the listening socket")
    p.add_argument("--max-connections", type=int, default=20000, help="open-file limit to raise to")
    a = p.parse_args(argv)
    if a.output_tokens < 1 or a.processes < 1 or a.ttft_ms < 0 or a.itl_ms < 0:
        p.error("--output-tokens and --processes must be at least 1, times 0 or more")
    raise_files(a.max_connections)
    cfg = TargetConfig(a.ttft_ms, a.itl_ms, a.output_tokens, a.honor_max_tokens, a.error_every)
    sock = listen(a.host, a.port)
    counters = Counters()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_serve, args=(sock, cfg, counters), daemon=True) for _ in range(a.processes)]
    for proc in procs:
        proc.start()
    # The ready line a test or script waits for: the URL to point loadgen at.
    print(f"loadgen-target listening on http://{a.host}:{sock.getsockname()[1]} pid {os.getpid()}", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    while not stop["now"] and all(proc.is_alive() for proc in procs):
        time.sleep(0.2)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(5)
    return 0
