"""`bench run --here`: a sweep's configs run as `python -m runner` subprocesses on this machine, with
the chart's failure semantics (exit 3 fails a config at once, other failures are retried up to
backoffLimitPerIndex, maxFailedIndexes stops a group) and the cluster path's records: each success
goes once into results.jsonl, each failure into the tracker with the runner's own reason."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import runner
from deploy.console import console, log, warning
from deploy.workloads.bench.device import Device, Placement, choose_devices, require_torch
from deploy.workloads.bench.sweep import CONFIG_ERROR_EXIT_CODE
from deploy.workloads.bench.workload import BENCH
from deploy.workloads.progress import Display, summary
from deploy.workloads.store import ResultStore, failure_record, result_record, save_values
from deploy.workloads.tracker import DONE, FAILED, Tracker

POLL_S = 0.2
STOP_GRACE_S = 5.0
# The record's `pod`: no pod ran it.
LOCAL_POD = "local"
# What a pod's environment sets that a --config run must not see from the calling shell.
IN_CLUSTER_ENV = ("JOB_COMPLETION_INDEX", "KAIML_CONFIG_INDEXES", "KAIML_CONFIG_DIR", "NODE_NAME")
# argparse's exit code: our command line, wrong the same way every time.
USAGE_EXIT_CODE = 2
# judge()'s verdicts: the tracker's DONE and FAILED, or another attempt.
RETRY = "retry"


@dataclass(frozen=True)
class LocalSweep:
    name: str
    kind: str
    groups: dict[str, list[int]]
    configs: dict[int, dict[str, Any]]  # what each runner reads
    devices: dict[int, str]  # KAIML_DEVICE of each config
    retries: int  # backoffLimitPerIndex
    max_failed: int | None = None  # maxFailedIndexes, per group
    deadline_s: int | None = None  # deadlineSeconds: the whole sweep's
    config_deadline_s: int | None = None  # configDeadlineSeconds: one attempt's

    @classmethod
    def of(cls, values: dict[str, Any], placement: Placement) -> "LocalSweep":
        """From charts/benchmark's values (plan_sweep's) and the device placement of their configs."""
        return cls(
            name=values["sweep"]["name"],
            kind=values["sweep"]["kind"],
            groups={g["name"]: list(g["indexes"]) for g in values["groups"]},
            configs=placement.configs,
            devices=placement.devices,
            retries=int(values.get("backoffLimitPerIndex", 0)),
            max_failed=values.get("maxFailedIndexes"),
            deadline_s=values.get("deadlineSeconds"),
            config_deadline_s=values.get("configDeadlineSeconds"),
        )

    def group_of(self, index: int) -> str:
        return next(g for g, indexes in self.groups.items() if index in indexes)


@dataclass
class Attempt:
    index: int
    number: int  # 1 for the first run
    process: subprocess.Popen[bytes]
    output: Path
    started: float
    past_deadline: bool = False  # stopped at configDeadlineSeconds


def judge(code: int, result: dict[str, Any] | None, attempt: int, retries: int) -> tuple[str, str | None]:
    """(DONE, None), (RETRY, why) or (FAILED, why) for one finished runner, as charts/benchmark's
    podFailurePolicy would decide: exit 3 fails the config at once, other failures are retried."""
    error = (result or {}).get("error") or "no result record"
    if code == 0:
        if result is not None and result.get("status") == "ok":
            return DONE, None
        return FAILED, "exit 0 without an ok KAIML_RESULT record"
    if code == CONFIG_ERROR_EXIT_CODE:
        return FAILED, f"exit {code}: {error}"
    if code == USAGE_EXIT_CODE:
        return FAILED, f"exit {code}: the runner refused its command line ({error})"
    why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}: {error}"
    if attempt <= retries:
        return RETRY, why
    return FAILED, f"{why} ({attempt} attempts, backoffLimitPerIndex {retries})"


def cpu_threads(parallel: int) -> int:
    """Each CPU runner's share of this machine's cores when `parallel` run at once: torch's default
    (every core per process) oversubscribes them, and measured 100x slower p50 on 2 cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // parallel)


def runner_env(sweep: LocalSweep, index: int, parallel: int = 1, base: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in IN_CLUSTER_ENV}
    if parallel > 1 and sweep.devices[index] == "cpu":
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads(parallel)))  # the caller's own setting wins
    # The runner package next to this deploy tool, whatever the caller's working directory.
    home = str(Path(runner.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH", "")) if p)
    env.update(
        KAIML_DEVICE=sweep.devices[index],
        KAIML_SWEEP=sweep.name,
        KAIML_GROUP=sweep.group_of(index),
        KAIML_CONFIG_ERROR_EXIT_CODE=str(CONFIG_ERROR_EXIT_CODE),
    )
    return env


def read_result(output: Path) -> dict[str, Any] | None:
    """The runner's --output record (written whole or not at all), None when it wrote none."""
    try:
        return json.loads(output.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class LocalRun:
    """One launch: configs queued, at most `parallel` runners at once, each finished runner judged."""

    def __init__(
        self,
        sweep: LocalSweep,
        store: ResultStore,
        logs: Path,
        tracker: Tracker,
        parallel: int = 1,
        on_update: Callable[[Tracker], None] = lambda t: None,
    ) -> None:
        self.sweep, self.store, self.logs, self.tracker = sweep, store, logs, tracker
        self.parallel, self.on_update = parallel, on_update
        self.queue: deque[tuple[int, int]] = deque((i, 1) for i in sorted(sweep.configs))
        self.running: list[Attempt] = []
        self.host = socket.gethostname()
        self.tmp = Path()

    def log_path(self, index: int) -> Path:
        return self.logs / f"config-{index}.log"

    def run(self) -> Tracker:
        """Until every config is done or failed. On any exit (Ctrl-C included) the running runners are
        terminated; what was recorded stays recorded."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"kaiml-bench-{self.sweep.name}-") as tmp:
            self.tmp = Path(tmp)
            for index, config in self.sweep.configs.items():
                doc = {"sweep": self.sweep.name, "kind": self.sweep.kind, "index": index, "config": config}
                (self.tmp / f"config-{index}.json").write_text(json.dumps(doc))
            began = time.monotonic()
            try:
                while self.queue or self.running:
                    if self.sweep.deadline_s is not None and time.monotonic() - began >= self.sweep.deadline_s:
                        self.expire()
                        break
                    while self.queue and len(self.running) < self.parallel:
                        self.start(*self.queue.popleft())
                    self.on_update(self.tracker)
                    time.sleep(POLL_S)
                    self.stop_past_config_deadline()
                    for attempt in [a for a in self.running if a.process.poll() is not None]:
                        self.running.remove(attempt)
                        self.finish(attempt)
                self.on_update(self.tracker)
            finally:
                stop(self.running)
        return self.tracker

    def start(self, index: int, number: int) -> None:
        output = self.tmp / f"result-{index}.json"
        output.unlink(missing_ok=True)  # a failed attempt's record must not pass for this one's
        config = self.tmp / f"config-{index}.json"
        cmd = [sys.executable, "-m", "runner", "--config", str(config), "--output", str(output)]
        env = runner_env(self.sweep, index, self.parallel)
        with self.log_path(index).open("ab") as log:
            header = f"# attempt {number} of at most {self.sweep.retries + 1}, KAIML_DEVICE={env['KAIML_DEVICE']}\n"
            log.write(header.encode())
            log.flush()
            # Its own session: Ctrl-C reaches this process only, which then stops the runners itself.
            process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.running.append(Attempt(index, number, process, output, time.monotonic()))
        self.tracker.pod_phase(index, "Running")

    def finish(self, attempt: Attempt) -> None:
        index, code = attempt.index, attempt.process.returncode
        result = read_result(attempt.output)
        with self.log_path(index).open("a") as log:
            log.write(f"# exit {code} after {time.monotonic() - attempt.started:.1f} s\n")
        verdict, why = judge(code, result, attempt.number, self.sweep.retries)
        if attempt.past_deadline:  # as the kubelet's activeDeadlineSeconds: a failed attempt, retried
            why = f"deadline exceeded: ran longer than its deadline ({self.sweep.config_deadline_s} s)"
            verdict = RETRY if attempt.number <= self.sweep.retries else FAILED
        if verdict == DONE and result is not None:
            config = self.sweep.configs[index]
            record = result_record(self.sweep.group_of(index), LOCAL_POD, self.host, config, result)
            self.store.record(index, record)
            self.tracker.done(index)
        elif verdict == RETRY:
            self.queue.append((index, attempt.number + 1))
            self.tracker.pod_phase(index, "Failed")
        else:
            self.fail(index, f"{why}; log {self.log_path(index)}")
            self.stop_group_past_limit(self.sweep.group_of(index))

    def stop_past_config_deadline(self) -> None:
        limit = self.sweep.config_deadline_s
        if limit is None:
            return
        late = [a for a in self.running if not a.past_deadline and time.monotonic() - a.started >= limit]
        for attempt in late:
            attempt.past_deadline = True
        stop(late)

    def expire(self) -> None:
        """The sweep's deadline passed: the running runners stop, and every config not finished fails."""
        stop(self.running)
        self.running, self.queue = [], deque()
        for index in self.sweep.configs:
            if not self.tracker.finished(index):
                self.fail(index, f"deadline exceeded: not finished when the sweep's deadline "
                                 f"({self.sweep.deadline_s} s) passed")  # fmt: skip

    def fail(self, index: int, why: str) -> None:
        self.tracker.failed(index, why)
        self.tracker.take_failed()
        self.store.fail(index, failure_record(self.sweep.group_of(index), self.sweep.configs[index], why))

    def stop_group_past_limit(self, group: str) -> None:
        """maxFailedIndexes: past it, the group's Job fails and its other configs with it."""
        limit = self.sweep.max_failed
        indexes = self.sweep.groups[group]
        failed = sum(1 for i in indexes if self.tracker.state[i] == FAILED)
        if limit is None or failed <= limit:
            return
        self.queue = deque((i, n) for i, n in self.queue if i not in indexes)
        ours = [a for a in self.running if a.index in indexes]
        stop(ours)
        self.running = [a for a in self.running if a not in ours]
        for i in indexes:
            if not self.tracker.finished(i):
                self.fail(i, f"not run: group {group} stopped after {failed} failed configs (maxFailedIndexes {limit})")


def stop(attempts: list[Attempt]) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE_S."""
    for a in attempts:
        if a.process.poll() is None:
            a.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for a in attempts:
        try:
            a.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            a.process.kill()
            a.process.wait()


def run_here(values: dict[str, Any], runs_root: Path, device: Device, parallel: int) -> int:
    """Every config of the sweep run here; the exit code (0 all have a result, 1 some failed, 130 Ctrl-C).
    Device refusals happen before anything is written; an earlier launch's results are kept aside."""
    require_torch()
    placement = choose_devices({c["index"]: c["config"] for c in values["configs"]}, device)
    if placement.warning:
        warning(placement.warning)
    sweep = LocalSweep.of(values, placement)
    folder = BENCH.folder(runs_root, sweep.name)
    store = ResultStore(folder)
    kept = store.archive()
    if kept:
        log(f"the earlier launch's results are kept in {kept}")
    save_values(folder, values)
    logs = folder / "logs"
    shutil.rmtree(logs, ignore_errors=True)  # the previous launch's, which would read as this one's
    log(f"running {len(sweep.configs)} configs of sweep {sweep.name} here, {parallel} at a time; runner logs in {logs}")
    tracker = Tracker(sweep.groups)
    display = Display(len(sweep.configs))
    try:
        with display.live:
            LocalRun(sweep, store, logs, tracker, parallel, display.update).run()
    except KeyboardInterrupt:
        summary(tracker, sweep.name, folder)
        console.print("interrupted: the running configs were stopped; the results recorded so far are kept.")
        return 130
    return summary(tracker, sweep.name, folder)
