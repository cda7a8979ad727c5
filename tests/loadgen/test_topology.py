"""The whole topology as processes on loopback against loadgen's target: every request accounted for
exactly once, metrics that match the target's configured latencies, the same metrics in one process."""

import os

import pytest
from loadgen_cases import within

# Latencies long enough that a busy 2-core machine's scheduling noise stays well under 5 %: at a load
# average of 12 a first token arrives ~10 ms late (2.5 % of 400 ms), and a last token late by d moves
# the ITL by d / (TOKENS - 1), 5 % only when d reaches 22 ms.
TTFT_MS, ITL_MS, TOKENS = 400.0, 50.0, 10
REQUESTS, WARMUP, CONCURRENCY = 120, 20, 20
LOAD = [
    "--streaming",
    "--concurrency",
    str(CONCURRENCY),
    "--requests",
    str(REQUESTS),
    "--warmup-requests",
    str(WARMUP),
    "--osl",
    str(TOKENS),
]


@pytest.fixture(scope="module")
def endpoint(target):
    return target("--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS), "--output-tokens", str(TOKENS))


@pytest.fixture(scope="module")
def distributed(loadgen, endpoint):
    before = endpoint.stats()["requests"]
    run = loadgen(
        "distributed", "--endpoint", endpoint.url, "--model", "m", *LOAD, "--workers", "2", "--record-processors", "1"
    )
    assert run.proc.returncode == 0, run.proc.stderr
    run.target_requests = endpoint.stats()["requests"] - before
    return run


def test_every_request_is_recorded_exactly_once(distributed):
    s = distributed.summary
    assert s["accounting"] == {
        "sent": REQUESTS,
        "recorded": REQUESTS,
        "errors": 0,
        "duplicates": 0,
        "lost": 0,
        "warmup_sent": WARMUP,
        "warmup_recorded": WARMUP,
    }
    assert s["request_count"]["avg"] == REQUESTS
    records = distributed.records
    assert len(records) == REQUESTS
    assert len({r["metadata"]["session_num"] for r in records}) == REQUESTS
    assert len({r["metadata"]["x_request_id"] for r in records}) == REQUESTS
    # The target saw each request once too: the measured ones and the warm-up.
    assert distributed.target_requests == REQUESTS + WARMUP


def test_roles_ran_as_separate_processes(distributed):
    engine = distributed.summary["engine"]
    assert (engine["mode"], engine["workers"], engine["record_processors"]) == ("distributed", 2, 1)
    pids = {role["pid"] for role in engine["roles"]}
    assert len(pids) == 3 and os.getpid() not in pids
    records = distributed.records
    assert {r["metadata"]["worker_id"] for r in records} == {"worker_0", "worker_1"}
    assert {r["metadata"]["record_processor_id"] for r in records} == {"record_processor_0"}


def test_metrics_match_the_target(distributed):
    s = distributed.summary
    assert within(s["time_to_first_token"]["avg"], TTFT_MS), s["time_to_first_token"]
    assert within(s["inter_token_latency"]["avg"], ITL_MS), s["inter_token_latency"]
    assert within(s["request_latency"]["avg"], TTFT_MS + (TOKENS - 1) * ITL_MS), s["request_latency"]
    assert s["output_sequence_length"]["min"] == s["output_sequence_length"]["max"] == TOKENS
    assert s["total_osl"]["avg"] == REQUESTS * TOKENS


def test_artifacts_use_aiperf_names(distributed):
    out = distributed.out_dir
    for name in (
        "profile_export_aiperf.json",
        "profile_export_aiperf.csv",
        "profile_export.jsonl",
        "READY",
        "logs/loadgen.log",
        "logs/worker_0.log",
        "logs/worker_1.log",
        "logs/record_processor_0.log",
    ):
        assert (out / name).is_file(), name
    csv = (out / "profile_export_aiperf.csv").read_text()
    assert csv.startswith("Metric,avg,min,max,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\n")
    assert "Time to First Token (ms)," in csv and "Request Throughput (requests/sec)," in csv
    table = distributed.proc.stdout
    for row in (
        "Time to First Token (ms)",
        "Inter Token Latency (ms)",
        "Request Latency (ms)",
        "Output Token Throughput (tokens/sec)",
        "Request Throughput (requests/sec)",
    ):
        assert row in table
    assert f"sent {REQUESTS} = recorded {REQUESTS} + errors 0" in table


def test_single_process_gives_the_same_metrics(loadgen, endpoint, distributed):
    run = loadgen(
        "single",
        "--endpoint",
        endpoint.url,
        "--model",
        "m",
        *LOAD,
        "--workers",
        "2",
        "--record-processors",
        "1",
        "--single-process",
    )
    assert run.proc.returncode == 0, run.proc.stderr
    single, multi = run.summary, distributed.summary
    assert single["engine"]["mode"] == "single-process"
    assert len({role["pid"] for role in single["engine"]["roles"]}) == 1
    assert single["accounting"]["recorded"] == REQUESTS
    for tag in ("time_to_first_token", "inter_token_latency", "request_latency"):
        for stat in ("avg", "p50"):
            assert within(single[tag][stat], multi[tag][stat]), (tag, stat, single[tag], multi[tag])
