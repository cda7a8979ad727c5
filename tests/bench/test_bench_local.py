"""`bench run --local`: the real runner (`python -m runner`) as subprocesses on this machine's CPU, no
cluster and no Helm; tiny models, warmup 1, iterations 5."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deploy.errors import DeviceError
from deploy.paths import REPO
from deploy.workloads.bench.device import Device, choose_devices
from deploy.workloads.bench.onhost import RETRY, LocalRun, LocalSweep, judge
from deploy.workloads.store import ResultStore, read_records
from deploy.workloads.tracker import DONE, FAILED, Tracker

SWEEP = REPO / "tests" / "fixtures" / "bench-sweep.yaml"  # 6 GPU configs, 2 groups
TINY = {"model": "mlp", "inputShape": [32], "modelArgs": {"hidden": 32, "layers": 2}, "warmup": 1, "iterations": 5}


def cli(runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=REPO,
        env={**os.environ, "KAIML_RUNS_DIR": str(runs), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def cpu_sweep(tmp_path: Path, name: str, matrix: dict[str, Any]) -> Path:
    """A sweep of CPU-pool configs (no GPUs asked, so every --device runs it here)."""
    doc = {"kind": "model-latency", "name": name, "base": {**TINY, "nodePool": "cpu-optimized"}, "matrix": matrix}
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(doc))
    return path


def test_six_configs_run_here_and_report_once(tmp_path: Path) -> None:
    done = cli(tmp_path, "bench", "run", str(SWEEP), "--here", "--device", "cpu", "--parallel", "2")
    assert done.returncode == 0, done.stderr
    assert "6 of 6 configs have a result, 0 failed" in done.stderr
    assert done.stderr.count("runs them on this machine's CPU") == 1

    listed = cli(tmp_path, "bench", "results", "bench-test", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["config"] for r in rows] == list(range(6))
    by_config = {r["config"]: r for r in rows}
    # The cluster path's record shape; gpuType kept although the runner ran on the CPU without gpuCount.
    assert {by_config[i]["gpuType"] for i in (0, 1, 2)} == {"nvidia-t4"}
    assert {by_config[i]["group"] for i in (3, 4, 5)} == {"a100"}
    for r in rows:
        assert (r["pod"], r["node"]) == ("local", socket.gethostname())
        assert "gpuCount" not in r["values"]
        assert r["result"]["status"] == "ok" and r["result"]["index"] == r["config"]
        assert r["result"]["device"]["type"] == "cpu"
    logs = tmp_path / "bench-bench-test" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [f"config-{i}.log" for i in range(6)]


def test_a_config_error_fails_its_config_once_and_the_others_run(tmp_path: Path) -> None:
    # The third config is an include of its own, with a model the runner does not know: exit 3.
    sweep = cpu_sweep(tmp_path, "with-bad", {"batchSize": [1, 2], "include": [{"batchSize": 3, "model": "no-such"}]})
    done = cli(tmp_path, "bench", "run", str(sweep), "--here", "--parallel", "2")
    assert done.returncode == 1, done.stderr
    assert "2 of 3 configs have a result, 1 failed (configs 2)" in done.stderr
    assert "config 2: exit 3: bad config: model: unknown model 'no-such'" in done.stderr
    folder = tmp_path / "bench-with-bad"
    records = list(read_records(folder / "results.jsonl"))
    assert sorted(r["config"] for r in records if "result" in r) == [0, 1]
    # The failure is stored too, with its reason: `bench results` lists it.
    [failed] = [r for r in records if "failure" in r]
    assert failed["config"] == 2 and failed["failure"].startswith("exit 3: bad config: model: unknown model")
    listed = cli(tmp_path, "bench", "results", "with-bad", "--format", "csv")
    assert "exit 3: bad config" in listed.stdout.splitlines()[3]
    assert (folder / "logs" / "config-2.log").read_text().count("# attempt") == 1  # not retried


def test_exit_1_is_retried_up_to_backoff_limit_per_index(tmp_path: Path) -> None:
    """KAIML_DEVICE=cuda where torch sees no CUDA: the runner's exit 1, retried, then failed."""
    if _has_cuda():
        pytest.skip("this machine has CUDA: the runner would not fail")
    sweep = LocalSweep("retried", "model-latency", {"g": [0]}, {0: {**TINY, "batchSize": 1}}, {0: "cuda"}, retries=1)
    store = ResultStore(tmp_path / "bench-retried")
    tracker = LocalRun(sweep, store, tmp_path / "logs", Tracker(sweep.groups)).run()
    assert tracker.state[0] == FAILED and not store.recorded
    assert "exit 1: RunnerError" in tracker.reasons[0] and "2 attempts" in tracker.reasons[0]
    assert (tmp_path / "logs" / "config-0.log").read_text().count("# attempt") == 2


def test_max_failed_indexes_stops_the_group(tmp_path: Path) -> None:
    bad = {**TINY, "batchSize": 1, "model": "no-such"}
    configs = {0: bad, 1: {**TINY, "batchSize": 1}, 2: {**TINY, "batchSize": 2}}
    groups = {"a": [0, 1], "b": [2]}
    sweep = LocalSweep("capped", "model-latency", groups, configs, dict.fromkeys(configs, "cpu"), 2, max_failed=0)
    store = ResultStore(tmp_path / "bench-capped")
    tracker = LocalRun(sweep, store, tmp_path / "logs", Tracker(groups)).run()
    assert tracker.state == {0: FAILED, 1: FAILED, 2: DONE} and store.recorded == {2}
    assert tracker.reasons[1] == "not run: group a stopped after 1 failed configs (maxFailedIndexes 0)"
    assert not (tmp_path / "logs" / "config-1.log").exists()


def test_deadlines_stop_an_attempt_and_the_sweep(tmp_path: Path) -> None:
    """configDeadlineSeconds: a runner past it is stopped and the attempt fails (retried, as the
    kubelet's activeDeadlineSeconds); deadlineSeconds: past it every unfinished config fails."""
    slow = {**TINY, "batchSize": 1, "iterations": 10_000_000}
    configs = {0: slow, 1: {**TINY, "batchSize": 2}}
    sweep = LocalSweep("late", "model-latency", {"g": [0, 1]}, configs, dict.fromkeys(configs, "cpu"), retries=1,
                       config_deadline_s=15)  # fmt: skip
    store = ResultStore(tmp_path / "bench-late")
    tracker = LocalRun(sweep, store, tmp_path / "logs", Tracker(sweep.groups)).run()
    assert tracker.state == {0: FAILED, 1: DONE}, tracker.reasons
    assert tracker.reasons[0].startswith("deadline exceeded: ran longer than its deadline (15 s); log ")
    assert (tmp_path / "logs" / "config-0.log").read_text().count("# attempt") == 2
    assert store.failed == {0: tracker.reasons[0]}

    whole = LocalSweep("later", "model-latency", {"g": [0, 1]}, configs, dict.fromkeys(configs, "cpu"), retries=0,
                       deadline_s=3)  # fmt: skip
    started = time.monotonic()
    tracker = LocalRun(whole, ResultStore(tmp_path / "bench-later"), tmp_path / "logs2", Tracker(whole.groups)).run()
    assert time.monotonic() - started < 3 + 10
    assert tracker.state == {0: FAILED, 1: FAILED}
    assert all(why.startswith("deadline exceeded: not finished when the sweep") for why in tracker.reasons.values())


def test_ctrl_c_stops_the_runners_and_keeps_the_results(tmp_path: Path) -> None:
    sweep = cpu_sweep(tmp_path, "long", {"batchSize": [1], "iterations": [5, 5_000_000]})
    env = {**os.environ, "KAIML_RUNS_DIR": str(tmp_path), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "deploy", "bench", "run", str(sweep), "--here"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = tmp_path / "bench-long" / "results.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not (results.exists() and results.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # config 1 is running by now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "1 of 2 configs have a result" in err and "interrupted" in err
    assert [r["config"] for r in read_records(results)] == [0]
    assert not _runners_of("long"), "a runner outlived bench run"


def test_local_takes_no_cluster_option(tmp_path: Path) -> None:
    for extra in (["--kubeconfig", "x"], ["--local"], ["--context", "ctx"]):
        done = cli(tmp_path, "bench", "run", str(SWEEP), "--here", "--device", "cpu", *extra)
        assert done.returncode == 64, done.stderr  # usage error (EX_USAGE)
        assert f"takes no {extra[0]}" in done.stderr
    done = cli(tmp_path, "bench", "run", str(SWEEP), "--parallel", "2")
    assert done.returncode == 64 and "only with --here" in done.stderr
    assert not list(tmp_path.iterdir())


def test_device_auto_refuses_gpu_configs_without_cuda_before_running(tmp_path: Path) -> None:
    if _has_cuda():
        pytest.skip("this machine has CUDA: auto runs the GPU configs on it")
    kept = tmp_path / "bench-bench-test" / "results.jsonl"
    kept.parent.mkdir()
    kept.write_text('{"config": 0}\n')
    done = cli(tmp_path, "bench", "run", str(SWEEP), "--here")
    assert done.returncode == 64, done.stderr  # DeviceError: a usage error
    assert "torch sees no CUDA device" in done.stderr and "--device cpu" in done.stderr
    assert kept.read_text() == '{"config": 0}\n'  # the previous launch's results are untouched
    assert sorted(p.name for p in kept.parent.iterdir()) == ["results.jsonl"]


def test_judge_follows_the_chart_failure_policy() -> None:
    ok = {"status": "ok"}
    assert judge(0, ok, 1, 2) == (DONE, None)
    assert judge(0, None, 1, 2)[0] == FAILED
    assert judge(3, {"error": "bad config: model: x"}, 1, 2) == (FAILED, "exit 3: bad config: model: x")
    assert judge(1, {"error": "E"}, 2, 2) == (RETRY, "exit 1: E")
    assert judge(1, {"error": "E"}, 3, 2) == (FAILED, "exit 1: E (3 attempts, backoffLimitPerIndex 2)")
    assert judge(-9, None, 1, 0)[1] == "killed by SIGKILL (1 attempts, backoffLimitPerIndex 0)"


def test_place_devices() -> None:
    configs = {0: {"gpuType": "nvidia-t4", "gpuCount": 1}, 1: {"gpuType": "", "gpuCount": 0}}
    cpu = choose_devices(configs, Device.cpu)
    assert cpu.devices == {0: "cpu", 1: "cpu"} and cpu.configs[0] == {"gpuType": "nvidia-t4"}
    assert cpu.warning and "1 of 2 configs ask for GPUs (gpuType nvidia-t4)" in cpu.warning
    assert choose_devices(configs, Device.auto, cuda=1).devices == {0: "cuda", 1: "cpu"}
    assert choose_devices({1: configs[1]}, Device.auto, cuda=0).devices == {1: "cpu"}
    with pytest.raises(DeviceError, match="--device cpu"):
        choose_devices(configs, Device.auto, cuda=0)
    with pytest.raises(DeviceError, match="--device cuda, but"):
        choose_devices(configs, Device.cuda, cuda=0)


def _has_cuda() -> bool:
    from deploy.workloads.bench.device import cuda_devices

    return cuda_devices() > 0


def _runners_of(sweep: str) -> list[str]:
    """Command lines of live runner processes of this sweep (their config files' temp folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "-m runner" in text and f"kaiml-bench-{sweep}-" in text:
            found.append(text)
    return found
