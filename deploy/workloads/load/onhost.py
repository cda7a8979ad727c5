"""`load run --here`: the whole topology on this machine, as the engine runs it (`python -m loadgen run`:
the controller, and the workers and record processors as processes on loopback), into the same run
folder as a run on a cluster: runs/load-<run>/artifacts/ (every export, the per-request JSONL and the
roles' logs) and the run's record in results.jsonl."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from deploy.console import log
from deploy.workloads.load.plan import controller_args
from deploy.workloads.load.spec import LoadSpec
from deploy.workloads.store import ResultStore, result_record
from loadgen import export


def engine_args(spec: LoadSpec, folder: Path) -> list[str]:
    """`python -m loadgen run` with the controller's knobs, the artifacts in the run folder."""
    args = controller_args(spec)
    # The pod's own settings: its dataset path, artifacts under /tmp, the start-up wait and the result line.
    for flag in ("--name", "--artifacts", "--startup-timeout", "--dataset"):
        if flag in args:
            at = args.index(flag)
            del args[at : at + 2]
    args.remove("--result-line")
    if spec.dataset:
        args += ["--dataset", str(spec.dataset)]
    return [sys.executable, "-m", "loadgen", "run", *args, "--name", "artifacts", "--artifacts", str(folder)]


def run_here(spec: LoadSpec, run: str, runs_root: Path) -> int:
    """Run it; record the summary as the run's result. The engine's exit code (0: every request accounted
    for; 1: some were not; 2: refused before anything started)."""
    folder = runs_root / f"load-{run}"
    folder.mkdir(parents=True, exist_ok=True)
    log(f"load run {run} here: {spec.workers} workers and {spec.record_processors} record processors on loopback")
    code = subprocess.run(engine_args(spec, folder), check=False).returncode
    summary_path = folder / "artifacts" / export.SUMMARY_JSON
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        record = result_record("here", "", socket.gethostname(), spec.config(), summary)
        ResultStore(folder).record(0, record)
        log(f"artifacts in {summary_path.parent}; `load results {run}` shows the metrics again")
    return code
