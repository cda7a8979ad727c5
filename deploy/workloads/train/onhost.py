"""The local executor: a training run as one `python -m runner` subprocess on this machine, with the
chart's semantics (exit 3 fails the run at once; other failures are retried up to backoffLimit, each
attempt resuming from the latest checkpoint in the object store) and the cluster path's records: the
same results.jsonl, values.json and logs/ in runs/train-<run>/, the same object-store keys (KAIML_RUN_ID
is the Job's name). The key pair is written for the runner as files in a private temporary folder,
removed when the run ends; it is passed to no command line and no environment."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import runner
from deploy.console import console, log
from deploy.errors import ToolMissingError
from deploy.workloads.bench.onhost import IN_CLUSTER_ENV
from deploy.workloads.bench.sweep import CONFIG_ERROR_EXIT_CODE
from deploy.workloads.progress import Display
from deploy.workloads.store import ResultStore, result_record, save_values
from deploy.workloads.tracker import DONE, Tracker
from deploy.workloads.train import progress
from deploy.workloads.train.artifacts import KeyPair, write_secret_dir
from deploy.workloads.train.spec import GROUP
from deploy.workloads.train.workload import TRAIN, job_name
from runner.progress import parse_line
from runner.result import find_result

EXECUTOR = "executor.json"


def executor_of(folder: Path) -> dict[str, Any]:
    """How the run was launched: {"executor": "kubernetes" | "local", ...} ({} when unknown)."""
    path = folder / EXECUTOR
    return json.loads(path.read_text()) if path.exists() else {}


def mark(folder: Path, executor: str, **fields: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"executor": executor, "since": datetime.now(UTC).isoformat(timespec="seconds"), **fields}
    (folder / EXECUTOR).write_text(json.dumps(record, sort_keys=True))


def store_env(store: dict[str, Any], run: str, credentials: Path) -> dict[str, str]:
    """What the backend ConfigMap and the pod spec give the runner in the cluster."""
    return {
        "KAIML_OBJECTSTORE_ENDPOINT": store["endpoint"],
        "KAIML_OBJECTSTORE_BUCKET": store["bucket"],
        "KAIML_OBJECTSTORE_REGION": store["region"],
        "KAIML_OBJECTSTORE_PREFIX": store["prefix"],
        "KAIML_RUN_ID": job_name(run),
        "KAIML_OBJECTSTORE_CREDENTIALS_DIR": str(credentials),
        "KAIML_CONFIG_ERROR_EXIT_CODE": str(CONFIG_ERROR_EXIT_CODE),
    }


def run_here(values: dict[str, Any], runs_root: Path, keys: KeyPair) -> int:
    """Run the training here, attempts up to backoffLimit + 1; 0 with a result, 1 failed, 130 on Ctrl-C."""
    name = TRAIN.run_name(values)
    if importlib.util.find_spec("torch") is None:
        raise ToolMissingError(
            f"training run {name} would run here with {sys.executable}, which has no torch: install the runner "
            "extra (`./deploy.sh train submit ... --executor local` does, once), or submit it to a cluster."
        )
    folder = TRAIN.folder(runs_root, name)
    store = ResultStore(folder)
    save_values(folder, values)
    mark(folder, "local", host=socket.gethostname(), pid=os.getpid())
    if 0 in store.recorded:
        log(f"training run {name} has its result already ({store.path}): nothing to run")
        return 0
    config = TRAIN.units(values)[0]
    attempts = int(values["job"]["backoffLimit"]) + 1
    private = Path(tempfile.mkdtemp(prefix="kaiml-train-"))
    try:
        credentials = write_secret_dir(keys, private / "credentials")
        config_file = private / "config.json"
        config_file.write_text(json.dumps({"sweep": name, "kind": "train", "index": 0, "config": config}))
        env = {k: v for k, v in os.environ.items() if k not in IN_CLUSTER_ENV}
        env |= store_env(values["objectStore"], name, credentials)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(runner.__file__).parent.parent),
                                                          env.get("PYTHONPATH")]))  # fmt: skip
        why, display, tracker = "", Display(1, TRAIN.unit), Tracker({GROUP: [0]})
        result: dict[str, Any] | None = None
        with display.live:  # the bars a cluster run shows: the run's, then its steps'
            for attempt in range(1, attempts + 1):
                tracker.pod_phase(0, "Running")
                display.update(tracker)
                output = folder / "logs" / f"local-{attempt}.log"
                command = [sys.executable, "-m", "runner", "--config", str(config_file)]
                code, result = _attempt(command, env, output, display, f"attempt {attempt}")
                if code == 0 and result is not None:
                    store.record(0, result_record(GROUP, f"local-{attempt}", socket.gethostname(), config, result))
                    tracker.done(0)
                    break
                why = (result or {}).get("error") or f"exit {code}"
                if code == CONFIG_ERROR_EXIT_CODE or attempt == attempts:
                    tracker.failed(0, why)
                    break
                log(f"attempt {attempt} failed ({why}): attempt {attempt + 1} of {attempts} resumes from the latest "
                    "checkpoint")  # fmt: skip
            display.update(tracker)
        if result is not None and tracker.state[0] == DONE:
            metrics = result.get("metrics") or {}
            console.print(
                f"training run {name}: done on this machine, final loss {metrics.get('finalLoss')}, held-out "
                f"accuracy {metrics.get('heldoutAccuracy')}; results in {store.path}",
                highlight=False, markup=False,
            )  # fmt: skip
            return 0
        console.print(f"training run {name}: failed: {why} (logs in {folder / 'logs'})", highlight=False, markup=False)
        return 1
    except KeyboardInterrupt:
        console.print(f"training run {name}: interrupted; its checkpoints stay in the object store and "
                      f"`train submit` resumes it", highlight=False, markup=False)  # fmt: skip
        return 130
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _attempt(
    command: list[str], env: dict[str, str], output: Path, display: Display, where: str
) -> tuple[int, dict[str, Any] | None]:
    """One runner process, its output to `output` as it comes, its progress lines to the steps' bar."""
    output.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}
    with output.open("w") as log_file:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   cwd=Path(runner.__file__).parent.parent)  # fmt: skip
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                log_file.flush()
                record = parse_line(line)
                if record is not None:
                    state = progress.fold(state, record)
                    display.step(progress.step(state), where)
            code = process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
    return code, find_result(output.read_text())
