"""A record processor: pulls raw worker records, parses the responses, counts tokens and computes
each request's metrics (AIPerf's record metrics), pushes the results to the records manager."""

import logging
import os
import uuid

import zmq
import zmq.asyncio

from loadgen import wire
from loadgen.config import Ports
from loadgen.metrics import compact, process

log = logging.getLogger("loadgen.record_processor")


async def serve(host: str, ports: Ports, processor_id: str | None = None) -> dict:
    pid = processor_id or f"record_processor_{uuid.uuid4().hex[:8]}"
    ctx = zmq.asyncio.Context.instance()
    raw = wire.unbounded(ctx.socket(zmq.PULL))
    raw.connect(wire.tcp(host, ports.raw_out))
    out = wire.unbounded(ctx.socket(zmq.PUSH))
    out.connect(wire.tcp(host, ports.records))
    bus = wire.unbounded(ctx.socket(zmq.SUB))
    bus.setsockopt(zmq.SUBSCRIBE, wire.SHUTDOWN)
    bus.connect(wire.tcp(host, ports.events_out))
    await out.send_multipart(wire.pack(wire.HELLO, {"record_processor": pid, "pid": os.getpid()}))
    poller = zmq.asyncio.Poller()
    poller.register(raw, zmq.POLLIN)
    poller.register(bus, zmq.POLLIN)
    cpu_start = wire.cpu_seconds()
    processed = 0
    try:
        while True:
            ready = dict(await poller.poll())
            if raw in ready:
                # Drain what is queued before looking at the bus: no record is left behind at shutdown.
                while True:
                    try:
                        frames = await raw.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    _, batch = wire.unpack(frames)
                    await out.send_multipart(wire.pack(wire.RECORDS, [compact(process(r, pid)) for r in batch]))
                    processed += len(batch)
            if bus in ready:
                await bus.recv_multipart()
                break
        stats = {"role": "record-processor", "id": pid, "pid": os.getpid(),
                 "cpu_s": wire.cpu_seconds() - cpu_start, "processed": processed}
        await out.send_multipart(wire.pack(wire.BYE, stats))
        return stats
    finally:
        out.close(linger=5000)
        raw.close(linger=0)
        bus.close(linger=0)
