"""A worker: takes credits from the controller, sends one HTTP request per credit to the target, pushes
the raw response (each read with its arrival time) to the record processors, returns the credit.
HTTP is loadgen's own lean client (loadgen/httpclient.py) on uvloop.

The worker does no parsing or tokenising (the record processors do), so that its event loop stays
free to timestamp reads as they arrive."""

import asyncio
import json
import logging
import os
import time
import uuid

import zmq
import zmq.asyncio

from loadgen import httpclient, wire
from loadgen.config import Ports
from loadgen.limits import raise_files

log = logging.getLogger("loadgen.worker")

# A worker's records leave in batches of up to this many, or after this delay.
RECORDS_BATCH = 256
RECORDS_DELAY_S = 0.01


def payloads(config: dict, dataset: list[dict]) -> list[bytes]:
    """The request body for each dataset entry, encoded once."""
    out = []
    for entry in dataset:
        body: dict = {"model": config["model"], "max_tokens": entry["osl"], "stream": config["streaming"]}
        if config["endpoint_type"] == "chat":
            body["messages"] = [{"role": "user", "content": entry["text"]}]
        else:
            body["prompt"] = entry["text"]
        if config["streaming"]:
            body["stream_options"] = {"include_usage": True}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


class Worker:
    def __init__(self, host: str, ports: Ports, worker_id: str, ctx: zmq.asyncio.Context) -> None:
        self.id = worker_id
        self.credits = wire.unbounded(ctx.socket(zmq.DEALER))
        self.credits.setsockopt(zmq.IDENTITY, worker_id.encode())
        self.credits.connect(wire.tcp(host, ports.credits))
        self.raw = wire.unbounded(ctx.socket(zmq.PUSH))
        self.raw.connect(wire.tcp(host, ports.raw_in))
        self.tasks: set[asyncio.Task] = set()
        self.records: list[dict] = []
        self.returned: list[int] = []
        self.flush_scheduled = False
        self.records_scheduled = False
        self.sent = 0

    async def run(self) -> dict:
        await self.credits.send_multipart(wire.pack(wire.HELLO, {"worker": self.id, "pid": os.getpid()}))
        kind, body = wire.unpack(await self.credits.recv_multipart())
        if kind == wire.STOP:
            return self.bye(0.0)
        assert kind == wire.CONFIG, kind
        config = body["config"]
        capacity = body["capacity"]
        raise_files(capacity)
        self.url = body["url"]
        self.streaming = config["streaming"]
        self.isl = [entry["isl"] for entry in body["dataset"]]
        self.pool = httpclient.Pool(self.url)
        self.requests = [self.pool.request(b) for b in payloads(config, body["dataset"])]
        self.timeout = config["request_timeout"]
        cpu_start = wire.cpu_seconds()
        try:
            while True:
                kind, body = wire.unpack(await self.credits.recv_multipart())
                if kind == wire.CREDITS:
                    for session_num, index, warmup in body:
                        task = asyncio.create_task(self.request(session_num, index, warmup))
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)
                elif kind == wire.CANCEL:
                    for task in list(self.tasks):
                        task.cancel()
                elif kind == wire.STOP:
                    for task in list(self.tasks):
                        task.cancel()
                    if self.tasks:
                        await asyncio.wait(list(self.tasks), timeout=5)
                    self.flush()
                    break
        finally:
            self.pool.close()
        return self.bye(wire.cpu_seconds() - cpu_start)

    def bye(self, cpu: float) -> dict:
        stats = {"role": "worker", "id": self.id, "pid": os.getpid(), "cpu_s": cpu, "sent": self.sent}
        self.credits.send_multipart(wire.pack(wire.BYE, stats))
        return stats

    async def request(self, session_num: int, index: int, warmup: int) -> None:
        rid = f"{self.id}-{session_num}"
        chunks: list[tuple[int, bytes]] = []
        error = None
        status = None
        ack = None
        end = None
        cancelled = False
        head, rest = self.requests[index]
        start_ns = time.time_ns()
        t0 = time.perf_counter_ns()
        self.sent += 1
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.pool.post([head, rid.encode(), rest], t0)
            status, ack, end = response.status, response.ack, response.end
            if status >= 400:
                text = response.body()[:300].decode("utf-8", "replace")
                error = {"code": status, "type": response.reason or "HTTPError", "message": text}
            else:
                chunks = response.chunks
        except asyncio.CancelledError:
            cancelled = True
            error = {"code": 499, "type": "RequestCancellationError",
                     "message": "cancelled: the benchmark's grace period ended"}
        except Exception as e:  # any transport failure is this request's error, not the worker's
            error = {"code": None, "type": type(e).__name__, "message": str(e)[:300] or repr(e)}
        if end is None:
            end = time.perf_counter_ns() - t0
        self.records.append({
            "id": session_num, "rid": rid, "worker": self.id, "start_ns": start_ns, "ack": ack, "end": end,
            "status": status, "streaming": self.streaming, "chunks": chunks, "isl": self.isl[index],
            "error": error, "cancelled": cancelled, "warmup": bool(warmup),
        })
        self.returned.append(session_num)
        loop = asyncio.get_running_loop()
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self.return_credits)
        if len(self.records) >= RECORDS_BATCH:
            self.send_records()
        elif not self.records_scheduled:
            self.records_scheduled = True
            loop.call_later(RECORDS_DELAY_S, self.send_records)

    def return_credits(self) -> None:
        """Once per loop pass: credits go back at once (the next request waits on them)."""
        self.flush_scheduled = False
        if self.returned:
            self.credits.send_multipart(wire.pack(wire.DONE, self.returned))
            self.returned = []

    def send_records(self) -> None:
        """Records wait a little to travel in batches: fewer messages for every role downstream."""
        self.records_scheduled = False
        if self.records:
            self.raw.send_multipart(wire.pack(wire.RECORDS, self.records))
            self.records = []

    def flush(self) -> None:
        self.send_records()
        self.return_credits()


async def serve(host: str, ports: Ports, worker_id: str | None = None) -> dict:
    ctx = zmq.asyncio.Context.instance()
    worker = Worker(host, ports, worker_id or f"worker_{uuid.uuid4().hex[:8]}", ctx)
    try:
        return await worker.run()
    finally:
        # Linger so that the last records and the bye leave before the sockets close.
        worker.raw.close(linger=5000)
        worker.credits.close(linger=5000)
