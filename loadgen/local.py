"""`run` on one machine: the controller in this process, workers and record processors as child
processes on loopback (the same roles and wire as in a cluster), or every role in one process."""

import asyncio
import json
import logging
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from loadgen import export, record_processor, worker
from loadgen.config import Ports, RunConfig, check_reachable
from loadgen.controller import Controller, Outcome
from loadgen.errors import ConfigError
from loadgen.limits import check_files, raise_files

log = logging.getLogger("loadgen")


def event_loop_runner() -> asyncio.Runner:
    """uvloop where installed: the engine's CPU per request depends on it."""
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        return asyncio.Runner()


def free_ports() -> Ports:
    """Six free loopback ports (held open together so that they differ)."""
    socks = []
    try:
        for _ in range(6):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return Ports(*(s.getsockname()[1] for s in socks))
    finally:
        for s in socks:
            s.close()


def preflight(cfg: RunConfig, out_dir: Path) -> None:
    """What must hold before anything starts: endpoint reachable, open files enough, a new folder."""
    check_reachable(cfg.url)
    if cfg.concurrency is not None:
        check_files(-(-cfg.concurrency // cfg.workers), "--concurrency per worker")
    if out_dir.exists():
        raise ConfigError(f"--name {cfg.name}: {out_dir} exists already; choose another name")


def log_to(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("loadgen")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run(cfg: RunConfig, artifacts: Path, *, single_process: bool, live_interval: float) -> Outcome:
    out_dir = artifacts / cfg.name
    preflight(cfg, out_dir)
    ports = free_ports()
    logs = out_dir / "logs"
    logs.mkdir(parents=True)
    log_to(logs / "loadgen.log")
    log.info("run %s: %s", cfg.name, json.dumps(cfg.public()))
    raise_files(cfg.concurrency or cfg.connections_per_worker)
    mode = "single-process" if single_process else "distributed"
    with event_loop_runner() as runner:
        if single_process:
            return runner.run(_single(cfg, ports, out_dir, live_interval))
        with ExitStack() as stack:
            children = _spawn(cfg, ports, logs, stack)

            def child_failure() -> str | None:
                for name, proc in children:
                    if proc.poll() is not None:
                        return f"{name} exited early with code {proc.returncode}; see {logs / (name + '.log')}"
                return None

            controller = Controller(cfg, ports, "127.0.0.1", out_dir, live_interval=live_interval, mode=mode,
                                    child_failure=child_failure)
            outcome = runner.run(controller.run())
            # After a clean end every role has said bye and exits by itself; on failure the
            # ExitStack kills what is left at once.
            for _, proc in children:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    proc.wait(5)
            return outcome


def _spawn(cfg: RunConfig, ports: Ports, logs: Path, stack: ExitStack) -> list[tuple[str, subprocess.Popen]]:
    children = []
    roles = [("worker", i) for i in range(cfg.workers)]
    roles += [("record-processor", i) for i in range(cfg.record_processors)]
    for role, i in roles:
        name = f"{role.replace('-', '_')}_{i}"
        out = stack.enter_context((logs / f"{name}.log").open("w"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen", role, "--controller-host", "127.0.0.1", "--ports", ports.as_arg(),
             "--id", name],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        stack.callback(_reap, proc)
        children.append((name, proc))
    return children


def _reap(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def _single(cfg: RunConfig, ports: Ports, out_dir: Path, live_interval: float) -> Outcome:
    """Every role as a task of one event loop, over the same TCP loopback wire."""
    controller = Controller(cfg, ports, "127.0.0.1", out_dir, live_interval=live_interval, mode="single-process")
    control = asyncio.create_task(controller.run())
    roles = [asyncio.create_task(worker.serve("127.0.0.1", ports, f"worker_{i}")) for i in range(cfg.workers)]
    roles += [asyncio.create_task(record_processor.serve("127.0.0.1", ports, f"record_processor_{i}"))
              for i in range(cfg.record_processors)]
    try:
        outcome = await control
    finally:
        for task in roles:
            if not task.done():
                task.cancel()
        await asyncio.gather(*roles, return_exceptions=True)
    return outcome


def report(outcome: Outcome) -> str:
    summary = json.loads(outcome.summary_path.read_text())
    return export.table(summary) + f"\nartifacts: {outcome.summary_path.parent}"
