"""Pure pieces of `bench`: index mapping, dedup, pending reasons, the tracker, reports."""

import json
from pathlib import Path

from deploy.workloads.bench import results as report
from deploy.workloads.bench.workload import GROUP_LABEL
from deploy.workloads.indexes import COMPLETION_INDEX, config_index, parse_ranges
from deploy.workloads.pending import explain, failure_reason, job_reasons, pod_reason
from deploy.workloads.store import ResultStore, read_records
from deploy.workloads.tracker import DONE, FAILED, PENDING, RUNNING, Tracker

GROUPS = {"t4": [0, 2, 4], "a100": [1, 3, 5]}


def test_config_index_maps_completion_index_through_the_group() -> None:
    assert config_index({GROUP_LABEL: "a100"}, {COMPLETION_INDEX: "2"}, GROUPS, GROUP_LABEL) == ("a100", 5)
    assert config_index({GROUP_LABEL: "t4"}, {COMPLETION_INDEX: "1"}, GROUPS, GROUP_LABEL) == ("t4", 2)
    assert config_index({GROUP_LABEL: "t4"}, {COMPLETION_INDEX: "3"}, GROUPS, GROUP_LABEL) is None
    assert config_index({GROUP_LABEL: "other"}, {COMPLETION_INDEX: "0"}, GROUPS, GROUP_LABEL) is None
    assert config_index({GROUP_LABEL: "t4"}, {}, GROUPS, GROUP_LABEL) is None


def test_parse_ranges() -> None:
    assert parse_ranges("1,3-5,9") == {1, 3, 4, 5, 9}
    assert parse_ranges(None) == set()


def test_store_records_each_config_once(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "bench-x")
    assert store.record(3, {"result": {"index": 0}})
    assert not store.record(3, {"result": {"index": 0}})
    assert ResultStore(tmp_path / "bench-x").recorded == {3}
    assert [r["config"] for r in read_records(store.path)] == [3]


def test_tracker_never_reopens_a_finished_config() -> None:
    t = Tracker(GROUPS)
    t.pod_phase(0, "Running")
    assert t.state[0] == RUNNING
    t.done(0)
    t.pod_phase(0, "Pending")  # a restarted pod of a recorded config
    assert t.state[0] == DONE
    t.job_status("a100", "0,2", job_failed=False)
    assert t.state[1] == FAILED and t.state[5] == FAILED and t.state[3] == PENDING
    t.job_status("t4", None, job_failed=True)
    assert t.state[0] == DONE and t.state[2] == FAILED
    assert not t.complete()


def test_tracker_waiting_reasons_after_grace() -> None:
    t = Tracker(GROUPS)
    t.pod_phase(1, "Pending", "insufficient nvidia.com/gpu", now=0.0)
    assert t.waiting(3.0, now=1.0) == {}
    assert t.waiting(3.0, now=5.0) == {"insufficient nvidia.com/gpu": 1}
    t.group_reasons["t4"] = "quota exceeded"
    assert t.waiting(3.0, now=5.0)["t4: quota exceeded"] == 3


def test_explain_scheduler_and_quota_messages() -> None:
    msg = (
        "0/7 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
        "{node-type: gpu-high-end}, 5 node(s) didn't match Pod's node affinity/selector. preemption: ..."
    )
    why = explain(msg)
    assert "insufficient nvidia.com/gpu" in why
    assert "taint not tolerated {node-type: gpu-high-end}" in why
    assert "no node matching the selector" in why
    busy = (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not "
        "helpful for scheduling."
    )
    assert (
        explain(busy)
        == "insufficient nvidia.com/gpu; no node matching the selector; lower priority: nothing it may preempt"
    )
    never = "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    assert "its priority class never preempts" in explain(never)
    quota = 'Error creating: pods "x" is forbidden: exceeded quota: benchmarks, requested: requests.nvidia.com/gpu=1'
    assert explain(quota).startswith("quota exceeded benchmarks")


def test_pod_and_job_reasons() -> None:
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
    }
    assert pod_reason({"status": {"conditions": [cond]}}) == "insufficient nvidia.com/gpu"
    assert pod_reason({"status": {"conditions": None}}) is None
    old, new = (
        {
            "involvedObject": {"kind": "Job", "name": "s-t4"},
            "reason": "FailedCreate",
            "message": f"forbidden: exceeded quota: q, requested: {what}=1",
            "lastTimestamp": when,
        }
        for what, when in (("cpu", "2026-11-28T10:00:00Z"), ("pods", "2026-11-28T10:00:05Z"))
    )
    assert job_reasons([new, old], {"s-t4": "t4"}) == {"t4": "quota exceeded q pods=1"}
    assert job_reasons([new], {"other": "t4"}) == {}


def test_report_rows_csv_json_and_plot(tmp_path: Path) -> None:
    records = [
        {
            "config": i,
            "gpuType": g,
            "values": {"batchSize": b, "precision": "fp32"},
            "result": {"latency_ms": {"p50": p}},
        }
        for i, (g, b, p) in enumerate([("nvidia-t4", 1, 1.0), ("nvidia-a100", 1, 0.5), ("nvidia-t4", 2, 1.5)])
    ]
    rows = report.rows(records)
    assert [r["p50_ms"] for r in rows] == [1.0, 0.5, 1.5]
    assert report.as_csv(rows).splitlines()[0].startswith("config,gpuType")
    assert len(json.loads(report.as_json(records))) == 3
    png = tmp_path / "p50.png"
    report.plot(rows, png, "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_pods_exit_code_and_runner_message_become_the_configs_reason() -> None:
    # The termination message as the kubelet writes it (FallbackToLogsOnError: the end of the log).
    error = "modelPath: /models/x.pt does not exist or is not a file"
    record = {"schema": "kaiml.result/v1", "status": "config-error", "error": error}
    message = "some log line\nKAIML_RESULT " + json.dumps(record) + "\n"
    failed_pod = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 3, "reason": "Error", "message": message}}}],
        }
    }
    why = f"exit 3: {error}"
    assert failure_reason(failed_pod) == why
    # Without a record (a crash), the log's last line.
    crash = {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 137, "message": "a\nKilled\n"}}}]}}
    assert failure_reason(crash) == "exit 137: Killed"
    assert failure_reason({"status": {"phase": "Running"}}) is None

    tracker = Tracker({"g": [0]})
    tracker.pod_phase(0, "Failed", why)
    tracker.job_status("g", "0", False)  # the Job gives up on the index: the pod's reason stays
    assert tracker.state[0] == FAILED and tracker.reasons[0] == why


def test_the_deadline_left_counts_from_the_launch_also_when_followed_later(tmp_path: Path) -> None:
    import time

    from deploy.workloads.launch import deadline_left
    from deploy.workloads.store import LAUNCHED, mark_launched

    assert deadline_left({"deadlineSeconds": 60}, tmp_path) is None  # never launched from here
    mark_launched(tmp_path)
    assert 59 <= deadline_left({"deadlineSeconds": 60}, tmp_path) <= 60  # type: ignore[operator]
    assert deadline_left({"deadlineSeconds": None}, tmp_path) is None
    an_hour_ago = time.time() - 3600
    (tmp_path / LAUNCHED).write_text(f"{an_hour_ago}\n")
    assert deadline_left({"deadlineSeconds": 60}, tmp_path) < -3000  # type: ignore[operator]
