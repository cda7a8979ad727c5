"""The controller: binds every ZMQ endpoint and runs the singleton services in one process.

- timing/credits: a ROUTER that gives each worker its share of the concurrency as credits and
  issues a new credit for each one returned (concurrency), or issues on a schedule (request rate);
- dataset: prompts built once and handed to each worker with its config; a credit names an entry;
- the raw-records proxy (workers PUSH -> record processors PULL) and the event bus (XSUB/XPUB);
- records manager: pulls processed records, writes the per-request JSONL as they come, keeps the
  aggregate, and at the end writes the exports and a ready marker for a results sidecar.

The run ends when the requests are all issued (or the duration is over) and every credit is back;
in-flight requests past the grace period are cancelled and recorded as cancelled. It then waits
until one record per credit has arrived: sent = recorded + errors, or the run fails."""

import asyncio
import logging
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio

from loadgen import dataset, export, wire
from loadgen.config import Ports, RunConfig
from loadgen.errors import LoadgenError
from loadgen.metrics import Aggregate, percentile

log = logging.getLogger("loadgen.controller")

# How long the controller waits for every role to say hello, and for records after the last credit.
STARTUP_TIMEOUT_S = 60.0
RECORDS_TIMEOUT_S = 30.0
BYE_TIMEOUT_S = 15.0
# Past --request-timeout, how long credits may stay out before the run calls a worker lost.
STALL_S = 30.0


@dataclass
class WorkerSlot:
    identity: bytes
    capacity: int
    outstanding: int = 0
    # Credits this worker may hold now: its capacity, or less while the concurrency ramps up.
    allowed: int = 0


@dataclass
class Outcome:
    """What the run accounts for; `ok` only when every credit came back as exactly one record."""

    sent: int
    recorded: int
    errors: int
    duplicates: int
    lost: int
    cpu_s: float
    summary_path: Path
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _proxy(ctx: zmq.Context, front_type: int, front: str, back_type: int, back: str, control: str) -> None:
    """zmq's C proxy in a thread (no GIL in the hot path), stopped by TERMINATE on `control`."""
    fsock = wire.unbounded(ctx.socket(front_type))
    fsock.bind(front)
    bsock = wire.unbounded(ctx.socket(back_type))
    bsock.bind(back)
    csock = ctx.socket(zmq.PAIR)
    csock.connect(control)
    try:
        zmq.proxy_steerable(fsock, bsock, None, csock)
    finally:
        for s in (fsock, bsock, csock):
            s.close(linger=0)


class Proxies:
    """The raw-records proxy and the event bus, each in its own thread."""

    def __init__(self, ctx: zmq.Context, host: str, ports: Ports) -> None:
        self.ctx = ctx
        self.controls = []
        self.threads = []
        specs = [
            (zmq.PULL, ports.raw_in, zmq.PUSH, ports.raw_out),
            (zmq.XSUB, ports.events_in, zmq.XPUB, ports.events_out),
        ]
        for i, (ft, fp, bt, bp) in enumerate(specs):
            address = f"inproc://loadgen-proxy-control-{id(self)}-{i}"
            control = ctx.socket(zmq.PAIR)
            control.bind(address)
            thread = threading.Thread(target=_proxy, daemon=True, name=f"proxy-{i}",
                                      args=(ctx, ft, wire.tcp(host, fp), bt, wire.tcp(host, bp), address))
            thread.start()
            self.controls.append(control)
            self.threads.append(thread)

    def stop(self) -> None:
        for control in self.controls:
            control.send(b"TERMINATE")
        for thread in self.threads:
            thread.join(5)
        for control in self.controls:
            control.close(linger=0)


class Controller:
    def __init__(self, cfg: RunConfig, ports: Ports, bind_host: str, out_dir: Path, *, live_interval: float = 1.0,
                 mode: str = "distributed", child_failure: Callable[[], str | None] | None = None,
                 live_stream=None, startup_timeout: float = STARTUP_TIMEOUT_S) -> None:
        self.cfg = cfg
        self.startup_timeout = startup_timeout
        self.ports = ports
        self.host = bind_host
        self.out_dir = out_dir
        self.live_interval = live_interval
        self.mode = mode
        self.child_failure = child_failure or (lambda: None)
        self.live = live_stream or sys.stderr
        self.dataset = dataset.build(cfg)
        self.workers: dict[bytes, WorkerSlot] = {}
        self.processors: set[str] = set()
        self.byes: list[dict] = []
        self.aggregate = Aggregate()
        self.issued = 0
        self.returned = 0
        self.stop_issuing = False
        self.rng = random.Random(cfg.seed)
        self.window: dict[str, list[float]] = {"ttft": [], "itl": []}
        self.ramped = False

    # -- the run -----------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        ctx = zmq.asyncio.Context.instance()
        sync_ctx = zmq.Context.instance()
        proxies = Proxies(sync_ctx, self.host, self.ports)
        self.router = wire.unbounded(ctx.socket(zmq.ROUTER))
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.bind(wire.tcp(self.host, self.ports.credits))
        self.records = wire.unbounded(ctx.socket(zmq.PULL))
        self.records.bind(wire.tcp(self.host, self.ports.records))
        self.bus = wire.unbounded(ctx.socket(zmq.PUB))
        self.bus.connect(wire.tcp(self.host, self.ports.events_in))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = (self.out_dir / export.JSONL).open("w")
        self.started_at = time.time()
        try:
            await self.wait_for_roles()
            self.cpu_start = wire.cpu_seconds()
            self.t0 = time.monotonic()
            # Warm-up first (its own request limit, no deadline); issue() opens the measured phase.
            self.warmup = self.cfg.warmup > 0
            self.limit = self.cfg.warmup if self.warmup else self.cfg.requests
            self.deadline = None if self.warmup or self.cfg.duration is None else self.t0 + self.cfg.duration
            self.warmup_issued = 0
            listeners = [asyncio.create_task(self.listen_credits()), asyncio.create_task(self.listen_records())]
            issuer = asyncio.create_task(self.issue())
            live = asyncio.create_task(self.live_view()) if self.live_interval > 0 else None
            try:
                await self.finish(issuer)
            finally:
                for task in [*listeners, issuer, *([live] if live else [])]:
                    task.cancel()
                await asyncio.gather(*listeners, issuer, *([live] if live else []), return_exceptions=True)
            self.cpu_self = wire.cpu_seconds() - self.cpu_start
            await self.say_goodbye()
            self.ended_at = time.time()
            return self.write_outcome()
        finally:
            self.jsonl.close()
            self.router.close(linger=1000)
            self.records.close(linger=0)
            self.bus.close(linger=0)
            proxies.stop()

    async def wait_for_roles(self) -> None:
        """Every expected worker and record processor says hello; workers get their config."""
        per_worker = self.shares()
        deadline = time.monotonic() + self.startup_timeout
        poller = zmq.asyncio.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.records, zmq.POLLIN)
        while len(self.workers) < self.cfg.workers or len(self.processors) < self.cfg.record_processors:
            failure = self.child_failure()
            if failure:
                raise LoadgenError(failure)
            if time.monotonic() > deadline:
                raise LoadgenError(
                    f"only {len(self.workers)} of {self.cfg.workers} workers and {len(self.processors)} of "
                    f"{self.cfg.record_processors} record processors connected within {self.startup_timeout:.0f} s")
            ready = dict(await poller.poll(200))
            if self.router in ready:
                identity, *frames = await self.router.recv_multipart()
                kind, body = wire.unpack(frames)
                if kind == wire.HELLO and identity not in self.workers and len(self.workers) < self.cfg.workers:
                    capacity = per_worker[len(self.workers)]
                    self.workers[identity] = WorkerSlot(identity, capacity, allowed=capacity)
                    await self.router.send_multipart([identity, *wire.pack(wire.CONFIG, {
                        "config": self.cfg.to_json(), "url": self.cfg.url, "dataset": self.dataset,
                        "capacity": max(capacity, self.cfg.connections_per_worker)})])
                    log.info("worker %s connected (share %d)", body.get("worker"), capacity)
                elif kind == wire.HELLO:
                    await self.router.send_multipart([identity, *wire.pack(wire.STOP)])
            if self.records in ready:
                kind, body = wire.unpack(await self.records.recv_multipart())
                if kind == wire.HELLO:
                    self.processors.add(body["record_processor"])
                    log.info("record processor %s connected", body["record_processor"])

    def shares(self) -> list[int]:
        """Each worker's part of the concurrency (the first ones take the remainder)."""
        w = self.cfg.workers
        if self.cfg.concurrency is None:
            return [self.cfg.connections_per_worker] * w
        base, extra = divmod(self.cfg.concurrency, w)
        return [base + (1 if i < extra else 0) for i in range(w)]

    # -- credits -----------------------------------------------------------------------------------

    def may_issue(self) -> bool:
        if self.stop_issuing:
            return False
        if self.limit is not None and self.issued >= self.limit:
            return False
        return not (self.deadline is not None and time.monotonic() >= self.deadline)

    def credit(self) -> list[int]:
        entry = self.issued % len(self.dataset)
        credit = [self.issued, entry, 1 if self.warmup else 0]
        self.issued += 1
        return credit

    async def send_credits(self, slot: WorkerSlot, n: int) -> None:
        batch = []
        while len(batch) < n and self.may_issue():
            batch.append(self.credit())
        if batch:
            slot.outstanding += len(batch)
            await self.router.send_multipart([slot.identity, *wire.pack(wire.CREDITS, batch)])

    async def issue(self) -> None:
        """The warm-up phase if any, until all its credits are back; then the measured phase."""
        if self.warmup:
            await self.issue_phase()
            while self.returned < self.issued:
                await asyncio.sleep(0.005)
            log.info("warm-up done: %d requests", self.issued)
            self.warmup = False
            self.warmup_issued = self.issued
            self.limit = self.issued + self.cfg.requests if self.cfg.requests is not None else None
            self.t0 = time.monotonic()
            self.deadline = self.t0 + self.cfg.duration if self.cfg.duration is not None else None
        await self.issue_phase()

    async def issue_phase(self) -> None:
        """Concurrency: fill each worker's share; refills happen as credits come back. Request rate:
        credits on a schedule (constant or Poisson), to the least busy worker, under the cap if any."""
        if self.cfg.request_rate is None:
            if self.cfg.ramp_up > 0 and not self.ramped:
                # The first phase ramps (the warm-up, when there is one); later ones start warm.
                self.ramped = True
                await self.ramp()
            for slot in self.workers.values():
                slot.allowed = slot.capacity
                await self.send_credits(slot, slot.allowed - slot.outstanding)
            return
        cap = self.cfg.concurrency
        # The first credit at once, each next one after a gap from the schedule (not from the last
        # send, so that late wake-ups do not lower the rate).
        at = time.monotonic()
        first = True
        while self.may_issue():
            if not first:
                gap = 1 / self.cfg.request_rate
                at += self.rng.expovariate(self.cfg.request_rate) if self.cfg.arrival == "poisson" else gap
            first = False
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            while cap is not None and self.issued - self.returned >= cap:
                await asyncio.sleep(0.001)
            if not self.may_issue():
                break
            slot = min(self.workers.values(), key=lambda s: s.outstanding)
            await self.send_credits(slot, 1)

    async def ramp(self) -> None:
        """Concurrency grows linearly over --ramp-up: thousands of connects at once overflow the
        target's accept backlog (SYN retries of 1, 3, 7 s) and would show up as TTFT."""
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < self.cfg.ramp_up and self.may_issue():
            for slot in self.workers.values():
                slot.allowed = max(1, math.ceil(slot.capacity * elapsed / self.cfg.ramp_up))
                await self.send_credits(slot, slot.allowed - slot.outstanding)
            await asyncio.sleep(0.02)

    async def listen_credits(self) -> None:
        while True:
            identity, *frames = await self.router.recv_multipart()
            kind, body = wire.unpack(frames)
            slot = self.workers.get(identity)
            if kind == wire.DONE and slot is not None:
                slot.outstanding -= len(body)
                self.returned += len(body)
                if self.cfg.request_rate is None:
                    await self.send_credits(slot, slot.allowed - slot.outstanding)
            elif kind == wire.BYE:
                self.byes.append(body)

    async def listen_records(self) -> None:
        while True:
            kind, body = wire.unpack(await self.records.recv_multipart())
            if kind == wire.RECORDS:
                lines = []
                for record in body:
                    if self.aggregate.add(record) and record[1] == "profiling":
                        lines.append(record[7])
                        self.observe(record)
                if lines:
                    self.jsonl.write("\n".join(lines) + "\n")
            elif kind == wire.BYE:
                self.byes.append(body)
            elif kind == wire.HELLO:
                self.processors.add(body["record_processor"])

    def recorded(self) -> int:
        return self.aggregate.ok + self.aggregate.error_count + self.aggregate.warmup

    async def finish(self, issuer: asyncio.Task) -> None:
        """Until every credit is back (cancelling past the grace period) and every record is in."""
        grace_end = None
        cancelled = False
        progress = (self.returned, time.monotonic())
        while True:
            failure = self.child_failure()
            if failure:
                raise LoadgenError(failure)
            if self.returned != progress[0]:
                progress = (self.returned, time.monotonic())
            elif self.issued > self.returned and time.monotonic() - progress[1] > self.cfg.request_timeout + STALL_S:
                # Every request times out by then: credits that never come back went with a worker.
                raise LoadgenError(f"{self.issued - self.returned} credits not returned for "
                                   f"{time.monotonic() - progress[1]:.0f} s: a worker is gone")
            if issuer.done() and issuer.exception():
                raise issuer.exception()
            done_issuing = issuer.done() and not self.may_issue()
            if done_issuing and self.returned >= self.issued:
                break
            if done_issuing and grace_end is None:
                grace_end = time.monotonic() + (self.cfg.grace if self.cfg.duration is not None else math.inf)
            if grace_end is not None and time.monotonic() > grace_end and not cancelled:
                log.info("grace period over: cancelling %d requests in flight", self.issued - self.returned)
                self.stop_issuing = True
                for slot in self.workers.values():
                    await self.router.send_multipart([slot.identity, *wire.pack(wire.CANCEL)])
                cancelled = True
            await asyncio.sleep(0.02)
        self.stop_issuing = True
        deadline = time.monotonic() + RECORDS_TIMEOUT_S
        while self.recorded() < self.issued and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def say_goodbye(self) -> None:
        """Workers get STOP on their socket; record processors hear SHUTDOWN on the bus, repeated
        because a subscriber that joined late misses a single publication."""
        for slot in self.workers.values():
            await self.router.send_multipart([slot.identity, *wire.pack(wire.STOP)])
        want = len(self.workers) + len(self.processors)
        deadline = time.monotonic() + BYE_TIMEOUT_S
        poller = zmq.asyncio.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.records, zmq.POLLIN)
        while len(self.byes) < want and time.monotonic() < deadline:
            await self.bus.send_multipart([wire.SHUTDOWN, b""])
            ready = dict(await poller.poll(200))
            if self.router in ready:
                _, *frames = await self.router.recv_multipart()
                kind, body = wire.unpack(frames)
                if kind == wire.BYE:
                    self.byes.append(body)
            if self.records in ready:
                kind, body = wire.unpack(await self.records.recv_multipart())
                if kind == wire.BYE:
                    self.byes.append(body)
        if len(self.byes) < want:
            log.warning("only %d of %d roles said bye", len(self.byes), want)

    # -- live view and the end -----------------------------------------------------------------------

    def observe(self, record: list) -> None:
        _, _, error, values, *_ = record
        if error is not None:
            return
        if "time_to_first_token" in values:
            self.window["ttft"].append(values["time_to_first_token"])
        if "inter_token_latency" in values:
            self.window["itl"].append(values["inter_token_latency"])

    async def live_view(self) -> None:
        last_done, last_t = 0, time.monotonic()
        while True:
            await asyncio.sleep(self.live_interval)
            now = time.monotonic()
            done = self.recorded()
            rate = (done - last_done) / (now - last_t)
            last_done, last_t = done, now
            phase = "warm-up " if self.warmup else ""
            parts = [f"[{phase}{now - self.t0:6.1f}s] done {done}", f"{rate:.1f} req/s",
                     f"errors {self.aggregate.error_count}", f"in flight {self.issued - self.returned}"]
            for key, label in (("ttft", "TTFT"), ("itl", "ITL")):
                values = sorted(self.window[key])
                if values:
                    parts.append(f"{label} p50 {percentile(values, 50):.1f} p99 {percentile(values, 99):.1f} ms")
                self.window[key] = []
            print(" | ".join(parts), file=self.live, flush=True)

    def write_outcome(self) -> Outcome:
        agg = self.aggregate
        problems = []
        lost = self.issued - self.recorded()
        if lost:
            problems.append(f"{lost} of {self.issued} requests sent have no record")
        if agg.duplicates:
            problems.append(f"{agg.duplicates} records arrived twice (counted once)")
        # CPU during the run, per process: one figure per pid (all roles share one in single-process mode).
        by_pid: dict[int, float] = {os.getpid(): self.cpu_self}
        for bye in self.byes:
            by_pid[bye["pid"]] = max(by_pid.get(bye["pid"], 0.0), bye["cpu_s"])
        cpu = math.fsum(by_pid.values())
        engine = {
            "mode": self.mode, "workers": len(self.workers), "record_processors": len(self.processors),
            # Warm-up requests cost CPU too: divided by every request sent.
            "cpu_s": cpu, "cpu_ms_per_request": cpu * 1000 / self.issued if self.issued else None,
            "roles": sorted(self.byes, key=lambda b: (b["role"], b["id"])),
        }
        accounting = {"sent": self.issued - self.warmup_issued, "recorded": agg.ok, "errors": agg.error_count,
                      "duplicates": agg.duplicates, "lost": lost,
                      "warmup_sent": self.warmup_issued, "warmup_recorded": agg.warmup}
        summary_path = export.write(self.out_dir, self.cfg, agg, accounting=accounting, engine=engine,
                                    started_at=self.started_at, ended_at=self.ended_at,
                                    was_cancelled=bool(agg.errors and any(k[0] == 499 for k in agg.errors)),
                                    problems=problems)
        return Outcome(sent=accounting["sent"], recorded=agg.ok, errors=agg.error_count, duplicates=agg.duplicates,
                       lost=lost, cpu_s=cpu, summary_path=summary_path, problems=problems)
