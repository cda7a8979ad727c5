"""Fixtures of the load generator's tests: loadgen's own target on loopback, runs as subprocesses
(the real topology: controller, worker and record-processor processes), small request counts."""

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Every run is bounded: the few hundred requests of a test take seconds, startup included.
RUN_TIMEOUT_S = 60


class Target:
    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as r:
            return json.load(r)


@pytest.fixture(scope="module")
def target() -> Iterator[Callable[..., Target]]:
    """Starts `python -m loadgen target` on a free loopback port; stopped (by pid) at the module's end."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> Target:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen", "target", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("loadgen-target listening on "), line
        return Target(proc, line.split()[3])

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, out_dir: Path) -> None:
        self.proc = proc
        self.out_dir = out_dir

    @property
    def summary(self) -> dict:
        return json.loads((self.out_dir / "profile_export_aiperf.json").read_text())

    @property
    def records(self) -> list[dict]:
        return [json.loads(line) for line in (self.out_dir / "profile_export.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Run]:
    """`python -m loadgen run ...` into a fresh artifacts folder; the run is named `name`."""
    artifacts = tmp_path_factory.mktemp("artifacts")

    def run(name: str, *args: str) -> Run:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen",
                "run",
                "--name",
                name,
                "--artifacts",
                str(artifacts),
                "--live-interval",
                "0",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env={**os.environ, "LOADGEN_ROLE": ""},
        )
        return Run(proc, artifacts / name)

    return run
