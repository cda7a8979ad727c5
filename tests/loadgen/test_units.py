"""Sizing, metric definitions, the SSE parser, statistics, ports, roles and open-file limits."""

import json
import resource
import statistics
import subprocess
import sys

import pytest

from loadgen import cli, config, metrics
from loadgen.config import Ports
from loadgen.errors import ConfigError


@pytest.mark.parametrize(
    ("concurrency", "per_worker", "workers", "processors"),
    [
        (1, 500, 1, 1),
        (500, 500, 1, 1),
        (501, 500, 2, 1),
        (5000, 500, 10, 3),
        (100_000, 500, 200, 50),
        (10_000, 2500, 4, 1),
    ],
)
def test_sizing_from_concurrency(concurrency, per_worker, workers, processors):
    assert config.sized_workers(concurrency, per_worker) == workers
    assert config.sized_record_processors(workers) == processors


def _raw(chunks, *, streaming=True, error=None):
    return {
        "id": 7,
        "rid": "r",
        "worker": "worker_0",
        "start_ns": 10**18,
        "ack": 1_000_000,
        "end": chunks[-1][0],
        "status": 200,
        "streaming": streaming,
        "chunks": chunks,
        "isl": 4,
        "error": error,
        "cancelled": False,
    }


def _event(text):
    return ("data: " + json.dumps({"choices": [{"delta": {"content": text}}]}) + "\n\n").encode()


def test_streaming_record_metrics_follow_aiperf():
    # First token at 50 ms, then one every 20 ms; [DONE] with the last one.
    chunks = [[50_000_000 + i * 20_000_000, _event(f" w{i}")] for i in range(4)]
    chunks[-1][1] += b"data: [DONE]\n\n"
    record = metrics.process(_raw(chunks), "record_processor_0")
    m = {k: v["value"] for k, v in record["metrics"].items()}
    assert record["error"] is None
    assert m["time_to_first_token"] == pytest.approx(50)
    assert m["request_latency"] == pytest.approx(110)
    assert m["output_sequence_length"] == 4
    assert m["inter_token_latency"] == pytest.approx((110 - 50) / 3)
    assert m["inter_chunk_latency"] == pytest.approx([20, 20, 20])
    assert m["output_token_throughput_per_user"] == pytest.approx(1000 / 20)
    assert record["metadata"]["request_end_ns"] == 10**18 + 110_000_000


def test_sse_events_split_across_reads_and_crlf():
    text = _event(" a") + _event(" b").replace(b"\n\n", b"\r\n\r\n") + b"data: [DONE]\n\n"
    chunks = [[i + 1, text[i : i + 7]] for i in range(0, len(text), 7)]
    events = metrics.sse_events(chunks)
    assert [data for _, data in events][-1] == "[DONE]"
    assert len(events) == 3
    # An event arrives with the read that completed it.
    assert events[0][0] == chunks[(len(_event(" a")) - 1) // 7][0]


def test_error_event_in_a_stream_is_an_error():
    chunks = [[5, ("data: " + json.dumps({"error": {"message": "overloaded"}}) + "\n\n").encode()]]
    record = metrics.process(_raw(chunks), "rp")
    assert record["error"]["type"] == "ResponseError" and "overloaded" in record["error"]["message"]
    assert record["metrics"] == {"error_isl": {"value": 4, "unit": "tokens"}}


def test_non_streaming_body():
    body = json.dumps({"choices": [{"message": {"content": "one two, three"}}]}).encode()
    record = metrics.process(_raw([[30_000_000, body]], streaming=False), "rp")
    assert record["metrics"]["output_sequence_length"]["value"] == 4
    assert "time_to_first_token" not in record["metrics"]


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.5]])
def test_distribution_percentiles_are_numpy_linear(values):
    d = metrics.distribution(values)
    if len(values) > 1:
        expected = statistics.quantiles(values, n=100, method="inclusive")
        for p in metrics.PERCENTILES:
            assert d[f"p{p}"] == pytest.approx(expected[p - 1])
    assert d["avg"] == pytest.approx(statistics.fmean(values))
    assert d["std"] == pytest.approx(statistics.pstdev(values))
    assert (d["min"], d["max"]) == (min(values), max(values))


def test_aggregate_counts_a_session_once():
    record = metrics.compact(metrics.process(_raw([[50_000_000, _event(" w") + b"data: [DONE]\n\n"]]), "rp"))
    agg = metrics.Aggregate()
    assert agg.add(record) and not agg.add(record)
    assert (agg.ok, agg.duplicates) == (1, 1)


def test_ports_round_trip_and_refusal():
    ports = Ports(1, 2, 3, 4, 5, 6)
    assert Ports.parse(ports.as_arg()) == ports
    with pytest.raises(ConfigError, match="want 6 port numbers"):
        Ports.parse("1,2,3")


def test_role_from_environment(monkeypatch):
    monkeypatch.setenv("LOADGEN_ROLE", "worker")
    assert cli._role_argv(["--controller-host", "ctl"]) == ["worker", "--controller-host", "ctl"]
    assert cli._role_argv(["run", "--x"]) == ["run", "--x"]
    monkeypatch.delenv("LOADGEN_ROLE")
    assert cli._role_argv(["--controller-host", "ctl"]) == ["--controller-host", "ctl"]


def test_open_file_limit_is_raised_to_what_connections_need():
    # A child starts with a low soft limit (as a default container may) and raises it itself.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4000)
    code = (
        "import resource; from loadgen.limits import raise_files, HEADROOM;"
        f"print(raise_files({want} - HEADROOM), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
    ).stdout.split()
    assert out == [str(want), str(want)]


def test_both_sse_parsers_agree_on_events_split_across_reads():
    text = b": keep-alive\n\n" + _event(" a") + b"event: x\ndata: {}\n\n" + _event(" b") + b"data: [DONE]\n\n"
    chunks = [[i + 1, text[i : i + 5]] for i in range(0, len(text), 5)]
    fast = [(at, bytes(p) if isinstance(p, bytes) else p.encode()) for at, p in metrics.sse_events(chunks)]
    general = [(at, p.encode()) for at, p in metrics._sse_events_crlf(chunks)]
    assert fast == general
    assert [p for _, p in fast][-2:] == [json.dumps({"choices": [{"delta": {"content": " b"}}]}).encode(), b"[DONE]"]


def test_image_and_pyproject_pin_the_same_packages():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["loadgen"]
    lines = (root / "loadgen" / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert all("==" in pin for pin in pins)
    assert set(extra) <= set(pins)
    dockerfile = (root / "loadgen" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "loadgen"]' in dockerfile and "USER 65532:65532" in dockerfile


def test_the_fast_and_general_stream_paths_give_the_same_record():
    """One event per read takes the fast path (whole events, one JSON parse of them all); the same bytes
    split every 7 bytes take sse_events: the same content and token count."""
    events = [_event(f" w{i}") for i in range(5)]
    whole = [[10_000_000 * (i + 1), e] for i, e in enumerate(events)]
    text = b"".join(events)
    split = [[1_000_000 * (i + 1), text[i : i + 7]] for i in range(0, len(text), 7)]
    assert metrics._whole_events(whole) is not None and metrics._whole_events(split) is None
    assert [t for _, t in metrics.responses(_raw(whole))] == [t for _, t in metrics.responses(_raw(split))]
    one = metrics.process(_raw(whole), "rp")
    assert one["error"] is None and one["metrics"]["output_sequence_length"]["value"] == 5
    assert one["metrics"]["inter_chunk_latency"]["value"] == pytest.approx([10, 10, 10, 10])


def test_stream_events_that_are_not_one_object_each_are_errors():
    # Two events that would parse together as one array element each, but are not JSON objects alone.
    for bad in ([b'data: {"a":1},{"b":2}\n\n', _event(" x")], [b"data: 5\n\n"], [b"data: {nope\n\n"]):
        record = metrics.process(_raw([[5 + i, e] for i, e in enumerate(bad)]), "rp")
        assert record["error"]["type"] == "ResponseError", bad
