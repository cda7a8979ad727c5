"""Shared by the loadgen benchmarks: start loadgen's target, read processes' CPU, run loadgen."""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes so far (from /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class Target:
    """`python -m loadgen target` on a free loopback port, stopped by pid."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen", "target", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("loadgen-target listening on "):
            raise SystemExit(f"target did not start: {line}")
        self.url = line.split()[3]
        time.sleep(0.5)  # its serving processes come up after the ready line
        self.pids = [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as r:
            return json.load(r)

    def cpu(self) -> float:
        return cpu_seconds(self.pids)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_loadgen(url: str, *args: str, ends: list[int] | None = None) -> tuple[dict, float]:
    """One `loadgen run` (live view off); its summary and wall time. `ends`, when given, gets the end time (ns) of
    each profiling request that succeeded, from the per-request records."""
    with tempfile.TemporaryDirectory() as artifacts:
        start = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen",
                "run",
                "--endpoint",
                url,
                "--model",
                "bench",
                "--artifacts",
                artifacts,
                "--name",
                "bench",
                "--live-interval",
                "0",
                *args,
            ],
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"loadgen failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        folder = Path(artifacts) / "bench"
        if ends is not None:
            for line in (folder / "profile_export.jsonl").read_text().splitlines():
                record = json.loads(line)
                meta = record["metadata"]
                if meta["benchmark_phase"] == "profiling" and record["error"] is None:
                    ends.append(meta["request_end_ns"])
        return json.loads((folder / "profile_export_aiperf.json").read_text()), wall


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
