"""The load workload's parts without a cluster: sizing, the controller's arguments (read back by the
engine's own parser), the deadline, the quota after --set, names, the result line, the report, and a
run that never started failing with its Job's reason and why it waited."""

import json
from pathlib import Path

import pytest

from deploy.errors import PlanError
from deploy.paths import REPO
from deploy.platform.values import load_environment
from deploy.workloads.load import results
from deploy.workloads.load.onhost import engine_args
from deploy.workloads.load.plan import chart_values, controller_args, deadline, with_quota
from deploy.workloads.load.spec import NAME, LoadSpec, check
from deploy.workloads.release import with_sets
from deploy.workloads.tracker import FAILED, Tracker
from loadgen import cli as engine_cli
from loadgen import export

SVC = "http://llm.inference.svc:8000"


def spec(**options) -> LoadSpec:
    base = {"endpoint": SVC, "model": "m", "concurrency": 1000, "duration": 60.0}
    return check(LoadSpec(**{**base, **options}), in_cluster=True, reach=False)


@pytest.mark.parametrize(
    ("options", "workers", "processors"),
    [
        ({"concurrency": 100_000}, 200, 50),
        ({"concurrency": 500}, 1, 1),
        ({"concurrency": 501}, 2, 1),
        ({"concurrency": 4001}, 9, 3),
        ({"concurrency": 10_000, "connections_per_worker": 1000}, 10, 3),
        ({"concurrency": 1000, "workers": 5, "record_processors": 2}, 5, 2),
        ({"concurrency": None, "request_rate": 100.0}, 1, 1),
    ],
)
def test_sizing_from_the_concurrency(options: dict, workers: int, processors: int) -> None:
    sized = spec(**options)
    assert (sized.workers, sized.record_processors) == (workers, processors)


def test_the_controller_arguments_are_the_engine_s_own_knobs() -> None:
    """What the pod runs, parsed by `python -m loadgen controller`'s parser, is the run asked for."""
    s = spec(concurrency=3000, streaming=True, isl=64, osl=16, warmup_requests=10, ramp_up=2.5)
    parsed = engine_cli.parser().parse_args(["controller", *controller_args(s)])
    cfg = engine_cli.run_config(parsed)
    assert (cfg.concurrency, cfg.workers, cfg.record_processors) == (3000, 6, 2)
    assert (cfg.streaming, cfg.isl, cfg.osl, cfg.warmup, cfg.ramp_up, cfg.duration) == (True, 64, 16, 10, 2.5, 60)
    assert parsed.result_line and parsed.startup_timeout == 300 and str(parsed.artifacts) == "/tmp"


def test_here_runs_the_engine_with_the_same_knobs(tmp_path: Path) -> None:
    s = spec(concurrency=20, endpoint="http://127.0.0.1:9")  # not reached: check() is given the spec here
    args = engine_args(s, tmp_path)
    assert args[1:4] == ["-m", "loadgen", "run"]
    parsed = engine_cli.parser().parse_args(args[3:])
    assert parsed.role == "run" and parsed.artifacts == tmp_path and parsed.name == "artifacts"
    assert engine_cli.run_config(parsed).concurrency == 20


def test_the_example_dataset_travels_in_the_values() -> None:
    dataset = REPO / "examples" / "load" / "prompts.jsonl"
    s = spec(dataset=dataset)
    values = chart_values(s, load_environment("dev"), run="d", namespace="mine", node_pool="cpu-optimized",
                          dataset_text=dataset.read_text())  # fmt: skip
    assert values["dataset"] == dataset.read_text() and values["global"]["namespaces"]["load"] == "mine"
    args = values["controller"]["args"]
    assert args[args.index("--dataset") + 1] == "/etc/loadgen/dataset.jsonl"


def test_the_deadline_covers_start_up_the_run_and_its_grace() -> None:
    assert deadline(spec(duration=60.0, grace=30.0)) == 300 + 60 + 30 + 120
    assert deadline(spec(duration=None, requests=100)) == 300 + 3600 + 120


def test_the_quota_follows_resources_set_on_the_command_line() -> None:
    values = chart_values(spec(concurrency=1000), load_environment("dev"), run="q", namespace=None,
                          node_pool="cpu-optimized")  # fmt: skip
    values = with_quota(with_sets(values, ["worker.resources.requests.cpu=3"]))
    hard = values["namespace"]["quota"]
    # controller 500m + 2 workers x 3 + 1 record processor 250m
    assert hard["pods"] == "4" and hard["requests.cpu"] == "6750m"
    assert values["global"]["namespaces"]["load"] == "load-q"


def test_names_and_credentials() -> None:
    generated = spec(model="Meta/Llama-3.1-70B-Instruct", concurrency=100_000).run_name()
    assert NAME.match(generated) and len(generated) <= 30, generated
    with pytest.raises(PlanError, match="--name 'Big_Run'"):
        spec(name="Big_Run")
    with pytest.raises(PlanError, match="credentials in the URL") as refused:
        spec(endpoint="http://user:s3cret@llm.inference.svc:8000")
    assert "s3cret" not in str(refused.value)


def test_the_result_line_round_trips(tmp_path: Path) -> None:
    summary = {"request_count": {"unit": "requests", "avg": 3}, "accounting": {"sent": 3}}
    path = tmp_path / export.SUMMARY_JSON
    path.write_text(json.dumps(summary))
    log = f"live line\n{export.result_line(path)}\nloadgen: error: 1 of 3 requests sent have no record\n"
    assert export.find_result(log) == summary
    assert export.find_result("LOADGEN_RESULT {not json") is None
    assert export.find_result("KAIML_RESULT {}") is None


def test_the_report_shows_aiperf_metrics() -> None:
    stats = {"avg": 10.0, "min": 5.0, "max": 20.0, "p50": 9.0, "p90": 15.0, "p99": 19.5, "unit": "ms"}
    summary = {"time_to_first_token": stats, "request_throughput": {"unit": "requests/sec", "avg": 99.123}}
    rows = results.rows([{"config": 0, "result": summary}])
    assert rows[0] == {"metric": "Time to First Token", "unit": "ms", **{k: v for k, v in stats.items() if k != "unit"}}
    assert rows[1]["metric"] == "Request Throughput" and rows[1]["avg"] == 99.12 and rows[1]["p99"] is None
    assert results.as_csv(rows).splitlines()[0] == "metric,unit,avg,min,max,p50,p90,p99"


def test_a_unit_whose_job_failed_before_it_ran_says_why() -> None:
    """It was never scheduled, then its Job hit activeDeadlineSeconds: both in its reason."""
    tracker = Tracker({"controller": [0], "worker": [-1, -1]})
    tracker.pod_phase(0, "Pending", "0/3 nodes are available: 3 Insufficient cpu")
    tracker.pod_phase(0, "Deleted")  # the Job deletes its pods before it says it failed
    tracker.job_status("controller", None, True, "Job t-controller failed: DeadlineExceeded Job was active longer")
    assert tracker.state == {0: FAILED}
    assert tracker.reasons[0] == (
        "Job t-controller failed: DeadlineExceeded Job was active longer; it was pending: "
        "0/3 nodes are available: 3 Insufficient cpu"
    )


def _records_file(folder: Path, count: int) -> Path:
    """A per-request JSONL with `count` lines of irregular floats (compresses as real records do)."""
    import random

    rng = random.Random(7)
    path = folder / export.JSONL
    lines = [json.dumps({"metadata": {"session_num": i}, "metrics": {"inter_chunk_latency": {
        "value": [rng.uniform(1, 40) for _ in range(31)], "unit": "ms"}}, "error": None}) for i in range(count)]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _controller_log(folder: Path, summary: dict, records: list[str]) -> str:
    path = folder / export.SUMMARY_JSON
    path.write_text(json.dumps(summary))
    # The runtime merges stdout and stderr line by line: a stderr line may fall between the parts.
    return "\n".join(["[   1.0s] done 3 | 3.0 req/s", export.result_line(path), *records[:2],
                      "2026-11-30 controller INFO all roles said bye", *records[2:]]) + "\n"  # fmt: skip


SUMMARY = {"request_count": {"unit": "requests", "avg": 3}, "accounting": {"sent": 3}, "problems": []}


def test_the_records_travel_whole_in_the_controller_s_log(tmp_path: Path) -> None:
    jsonl = _records_file(tmp_path, 400)
    records = list(export.records_lines(jsonl))
    assert len(records) > 4 and max(len(line) for line in records) < 16 * 1024  # under the runtime's line split
    log = _controller_log(tmp_path, SUMMARY, records)
    assert export.find_records(log) == jsonl.read_bytes()
    assert export.find_result(log) == SUMMARY

    folder = tmp_path / "load-r"
    results.save_artifacts(log, folder)
    home = folder / "artifacts"
    assert (home / export.JSONL).read_bytes() == jsonl.read_bytes()
    assert json.loads((home / export.SUMMARY_JSON).read_text()) == SUMMARY
    assert (home / export.SUMMARY_CSV).read_text().startswith("Metric,")
    assert json.loads((home / export.READY).read_text())["ok"] is True
    kept = (home / "logs" / "loadgen.log").read_text()
    assert "all roles said bye" in kept and export.RECORDS_PART not in kept


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda lines: lines[:2] + lines[3:], "of .* parts"),  # a part lost
        (lambda lines: lines[:-1], "cut short"),  # the end line missing
        (lambda lines: [*lines[:1], lines[1][:-8] + "AAAAAAAA", *lines[2:]], "checksum|do not decode"),
    ],
)
def test_records_that_did_not_come_whole_are_refused(tmp_path: Path, damage, why: str, capsys) -> None:
    records = damage(list(export.records_lines(_records_file(tmp_path, 400))))
    log = _controller_log(tmp_path, SUMMARY, records)
    with pytest.raises(export.RecordsMissing, match=why):
        export.find_records(log)
    # Brought home without them: the summary, and a warning that says why.
    results.save_artifacts(log, tmp_path / "load-r")
    home = tmp_path / "load-r" / "artifacts"
    assert (home / export.SUMMARY_JSON).exists() and not (home / export.JSONL).exists()
    assert not list(home.glob("*.part"))
    assert "were not brought home" in capsys.readouterr().err


def test_records_over_the_log_limit_are_left_out_with_a_reason(tmp_path: Path) -> None:
    [line] = export.records_lines(_records_file(tmp_path, 400), limit=10_000)
    header = json.loads(line.split(" ", 1)[1])
    assert header["lines"] == 400 and "above the controller log's limit" in header["skipped"]
    with pytest.raises(export.RecordsMissing, match="not written to the log: the 400 records take over"):
        export.find_records(line + "\n")
