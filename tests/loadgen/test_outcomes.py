"""Errors, cancellation, request rate and a dataset file: each request still accounted for once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loadgen_cases import within


def test_server_errors_are_counted_once(loadgen, target):
    endpoint = target("--ttft-ms", "10", "--itl-ms", "5", "--output-tokens", "4", "--error-every", "4")
    run = loadgen(
        "errors", "--endpoint", endpoint.url, "--model", "m", "--concurrency", "8", "--requests", "100", "--osl", "4"
    )
    assert run.proc.returncode == 0, run.proc.stderr
    s = run.summary
    assert s["accounting"]["sent"] == 100
    assert s["accounting"]["errors"] == 25 and s["accounting"]["recorded"] == 75
    assert s["error_summary"][0]["count"] == 25 and s["error_summary"][0]["error_details"]["code"] == 500
    failed = [r for r in run.records if r["error"]]
    assert len(failed) == 25 and all(r["metrics"] == {"error_isl": {"value": 128, "unit": "tokens"}} for r in failed)
    # Not streaming: a latency for each request, no TTFT.
    assert "time_to_first_token" not in s and s["request_latency"]["min"] > 10


def test_requests_past_the_grace_period_are_cancelled_and_recorded(loadgen, target):
    # 5 s per request, a 1 s run and 0.5 s of grace: what is in flight at the end is cancelled.
    endpoint = target("--ttft-ms", "100", "--itl-ms", "100", "--output-tokens", "50")
    run = loadgen(
        "cancelled",
        "--endpoint",
        endpoint.url,
        "--model",
        "m",
        "--streaming",
        "--concurrency",
        "4",
        "--duration",
        "1",
        "--grace",
        "0.5",
    )
    assert run.proc.returncode == 0, run.proc.stderr
    s = run.summary
    assert s["accounting"]["sent"] == 4 and s["accounting"]["errors"] == 4 and s["accounting"]["lost"] == 0
    assert s["was_cancelled"] is True
    assert all(r["metadata"]["was_cancelled"] and r["error"]["code"] == 499 for r in run.records)


def test_request_rate_is_not_exceeded(loadgen, target):
    endpoint = target("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "2")
    run = loadgen(
        "rate",
        "--endpoint",
        endpoint.url,
        "--model",
        "m",
        "--streaming",
        "--request-rate",
        "40",
        "--requests",
        "40",
        "--osl",
        "2",
    )
    assert run.proc.returncode == 0, run.proc.stderr
    s = run.summary
    assert s["accounting"]["recorded"] == 40
    starts = sorted(r["metadata"]["request_start_ns"] for r in run.records)
    # 40 requests at 40/s: the last starts 39/40 s after the first (a late first one shortens that a little;
    # without the schedule all 40 would start within milliseconds).
    assert (starts[-1] - starts[0]) / 1e9 >= 39 / 40 - 0.05


def test_dataset_file_sets_prompts_and_output_lengths(loadgen, target, tmp_path):
    endpoint = target("--ttft-ms", "5", "--itl-ms", "1", "--honor-max-tokens")
    data = tmp_path / "prompts.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"text": "one two three", "output_length": 3},
                {"text": "a longer prompt, with a comma", "output_length": 5},
            ]
        )
        + "\n"
    )
    run = loadgen(
        "dataset",
        "--endpoint",
        endpoint.url,
        "--model",
        "m",
        "--streaming",
        "--concurrency",
        "2",
        "--requests",
        "4",
        "--dataset",
        str(data),
        "--single-process",
    )
    assert run.proc.returncode == 0, run.proc.stderr
    by_session = {r["metadata"]["session_num"]: r["metrics"] for r in run.records}
    # Credits walk the dataset in order: sessions 0 and 2 use the first entry, 1 and 3 the second.
    for session, (isl, osl) in {0: (3, 3), 1: (7, 5), 2: (3, 3), 3: (7, 5)}.items():
        assert by_session[session]["input_sequence_length"]["value"] == isl
        assert by_session[session]["output_sequence_length"]["value"] == osl
    assert within(run.summary["output_sequence_length"]["avg"], 4, 0)
    assert run.summary["tokenizer"].startswith("loadgen-words")


def test_a_worker_killed_mid_run_fails_the_run_in_one_line(target, tmp_path):
    endpoint = target("--ttft-ms", "100", "--itl-ms", "100", "--output-tokens", "50")
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgen",
            "run",
            "--endpoint",
            endpoint.url,
            "--model",
            "m",
            "--streaming",
            "--concurrency",
            "4",
            "--requests",
            "8",
            "--workers",
            "2",
            "--record-processors",
            "1",
            "--artifacts",
            str(tmp_path),
            "--name",
            "killed",
            "--live-interval",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        log = tmp_path / "killed" / "logs" / "loadgen.log"
        deadline = time.monotonic() + 60
        while "worker_0 connected" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and run.poll() is None, "the run did not start"
            time.sleep(0.1)
        children = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
        worker = next(
            int(pid) for pid in children if b"worker_0" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        )
        os.kill(worker, signal.SIGKILL)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1
    assert err.strip().splitlines()[-1] == (
        f"loadgen: error: worker_0 exited early with code -9; see {tmp_path / 'killed' / 'logs' / 'worker_0.log'}"
    )
