"""The follower's state machine, fed the JSON the API server sends: every config's result is
recorded once, whatever pods, retries, deletions and repeated events it took."""

import json
from pathlib import Path
from typing import Any

from deploy.workloads.bench.workload import BENCH, GROUP_LABEL
from deploy.workloads.follow import Followed, Follower
from deploy.workloads.indexes import COMPLETION_INDEX
from deploy.workloads.release import with_rerun
from deploy.workloads.store import ResultStore, read_records
from deploy.workloads.tracker import DONE, FAILED, PENDING, RUNNING
from runner.result import MARKER, SCHEMA

SWEEP = Followed(
    BENCH,
    name="s",
    namespace="ns",
    groups={"t4": [0, 2], "a100": [1, 3]},
    configs={i: {"batchSize": i} for i in range(4)},
)


def pod(name: str, group: str, completion: int, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {GROUP_LABEL: group}, "annotations": {COMPLETION_INDEX: str(completion)}},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": phase, **status},
    }


def log_of(index_in_log: int) -> str:
    return f"2026-11-28T10:00:00Z stdout F {MARKER} " + json.dumps({"schema": SCHEMA, "index": index_in_log})


def test_each_config_recorded_once_from_its_completion_index(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    assert f.pod("ADDED", pod("p-a", "t4", 1, "Pending")) is None
    assert f.tracker.state[2] == PENDING
    f.pod("MODIFIED", pod("p-a", "t4", 1, "Running"))
    assert f.tracker.state[2] == RUNNING
    wanted = f.pod("MODIFIED", pod("p-a", "t4", 1, "Succeeded"))
    assert wanted is not None and wanted[0] == 2
    # Further events of the same pod while its log is read start no second read.
    assert f.pod("MODIFIED", pod("p-a", "t4", 1, "Succeeded")) is None
    assert not f.complete()
    f.log(2, wanted[1], log_of(99))  # the log's own index is not trusted
    assert f.tracker.state[2] == DONE
    # A late duplicate (another pod of the same index) changes nothing.
    assert f.pod("ADDED", pod("p-b", "t4", 1, "Succeeded")) is None
    records = list(read_records(tmp_path / "results.jsonl"))
    assert [(r["config"], r["group"], r["pod"], r["values"]) for r in records] == [(2, "t4", "p-a", {"batchSize": 2})]


def test_deleted_pod_goes_back_to_pending_and_its_replacement_reports(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    f.pod("ADDED", pod("p-1", "a100", 0, "Running"))
    f.pod("DELETED", pod("p-1", "a100", 0, "Running"))  # its node went, or it was preempted
    assert f.tracker.state[1] == PENDING
    wanted = f.pod("ADDED", pod("p-2", "a100", 0, "Succeeded"))
    assert wanted is not None
    f.log(1, wanted[1], log_of(1))
    assert f.tracker.state[1] == DONE


def test_a_result_lost_with_its_pod_is_run_again_in_a_new_group(tmp_path: Path) -> None:
    sweep = Followed(BENCH, name="s", namespace="ns", groups={"t4": [0, 2]}, configs={0: {}, 2: {}})
    f = Follower(sweep, ResultStore(tmp_path), max_reruns=1)
    wanted = f.pod("ADDED", pod("p-0", "t4", 0, "Succeeded"))
    assert wanted is not None
    f.log(0, wanted[1], None)  # its node went before the log was read: the Job counts it done
    assert f.tracker.state[0] == PENDING and not f.complete()
    assert f.take_lost() == [0] and f.take_lost() == []
    assert f.pod("MODIFIED", pod("p-0", "t4", 0, "Succeeded")) is None  # that pod is spent
    f.add_groups({"t4-r1": [0]})
    wanted = f.pod("ADDED", pod("p-r", "t4-r1", 0, "Succeeded"))
    assert wanted is not None and wanted[0] == 0
    f.log(0, wanted[1], None)  # lost again, past max_reruns: failed, with the reason
    assert f.tracker.state[0] == FAILED
    assert "gone with its result" in f.tracker.reasons[0]


def test_a_log_that_cannot_be_read_is_a_lost_result_then_a_failure_with_the_server_s_reason(tmp_path: Path) -> None:
    sweep = Followed(BENCH, name="s", namespace="ns", groups={"t4": [0]}, configs={0: {}})
    f = Follower(sweep, ResultStore(tmp_path), max_reruns=1)
    why = "400 no logs found for container runner"
    wanted = f.pod("ADDED", pod("p-0", "t4", 0, "Succeeded"))
    assert wanted is not None
    f.log(0, wanted[1], None, why)
    assert f.tracker.state[0] == PENDING and f.take_lost() == [0]
    assert f.tracker.waiting(grace_s=0) == {f"log unavailable ({why}): re-run": 1}
    f.add_groups({"t4-r1": [0]})
    wanted = f.pod("ADDED", pod("p-r", "t4-r1", 0, "Succeeded"))
    assert wanted is not None
    f.log(0, wanted[1], None, why)
    assert f.tracker.state[0] == FAILED and f.complete()
    assert f.tracker.reasons[0] == f"log unavailable: {why} (pod p-r) (2 times)"


def test_a_pod_without_a_record_fails_its_config(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    wanted = f.pod("ADDED", pod("p-2", "t4", 1, "Succeeded"))
    assert wanted is not None
    f.log(2, wanted[1], "runner: crashed\n")
    assert f.tracker.state[2] == FAILED
    assert "without a result in its log" in f.tracker.reasons[2]


def test_with_rerun_adds_one_group_per_origin_with_the_same_pod_shape() -> None:
    values = {
        "groups": [
            {"name": "t4", "nodePool": "gpu", "gpuCount": 1, "resources": {}, "indexes": [0, 1, 2]},
            {"name": "a100", "nodePool": "hi", "gpuCount": 1, "resources": {}, "indexes": [3, 4]},
        ]
    }
    once, added = with_rerun(values, [4, 0, 2])
    assert added == {"t4-r1": [0, 2], "a100-r1": [4]}
    assert values["groups"][-1]["name"] == "a100"  # the caller's values are not changed
    rerun = once["groups"][2]
    assert rerun == {**values["groups"][0], "name": "t4-r1", "rerunOf": "t4", "indexes": [0, 2]}
    twice, added = with_rerun(once, [2])  # lost again: a second re-run of the same origin
    assert added == {"t4-r2": [2]} and twice["groups"][-1]["rerunOf"] == "t4"


def test_failed_indexes_of_a_job_and_its_failed_create_events(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    f.job("ADDED", {"metadata": {"name": "s-a100", "labels": {GROUP_LABEL: "a100"}}, "status": {"failedIndexes": "1"}})
    assert f.tracker.state[3] == FAILED and f.tracker.state[1] == PENDING
    event = {
        "involvedObject": {"kind": "Job", "name": "s-t4"},
        "reason": "FailedCreate",
        "message": 'pods "x" is forbidden: exceeded quota: benchmarks, requested: requests.nvidia.com/gpu=1',
        "lastTimestamp": "2026-11-28T10:00:00Z",
    }
    f.event("ADDED", event)  # before the Job itself was seen: the Job's name says its group
    assert f.tracker.waiting(grace_s=0) == {"t4: quota exceeded benchmarks requests.nvidia.com/gpu=1": 2}


def test_a_failed_index_seen_before_its_pod_s_failure_gets_the_pod_s_reason(tmp_path: Path) -> None:
    """The Job's failedIndexes and the pod's Failed event come by separate watches, in either order: a config
    failed by its Job with no reason yet takes it from its pod as it is now (seen in CI on a busy machine)."""
    f = Follower(SWEEP, ResultStore(tmp_path))
    meta = {"name": "s-a100", "labels": {GROUP_LABEL: "a100"}}
    f.job("ADDED", {"metadata": meta, "status": {"failedIndexes": "0"}})
    asked: list[list[int]] = []

    def look_up(indexes: list[int]) -> dict[int, str]:
        asked.append(indexes)
        return {1: "exit 3: modelPath /models/missing.pt does not exist"}

    f.settle(look_up)
    assert asked == [[1]]
    assert ResultStore(tmp_path).failed == {1: "exit 3: modelPath /models/missing.pt does not exist"}
    assert f.tracker.reasons[1] == "exit 3: modelPath /models/missing.pt does not exist"  # for the summary
    # A reason known from the pod's own event is not looked up again.
    f.pod("MODIFIED", pod("p-3", "a100", 1, "Failed", reason="DeadlineExceeded"))
    f.job("MODIFIED", {"metadata": meta, "status": {"failedIndexes": "0,1"}})
    f.settle(look_up)
    assert asked == [[1]] and "deadline exceeded" in ResultStore(tmp_path).failed[3]


def test_results_already_recorded_count_as_done(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.record(0, {"result": {}})
    f = Follower(SWEEP, ResultStore(tmp_path))
    assert f.tracker.state[0] == DONE
    assert f.pod("ADDED", pod("p", "t4", 0, "Succeeded")) is None


def test_a_job_past_its_deadline_fails_its_unfinished_configs_and_the_failures_are_stored(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    wanted = f.pod("ADDED", pod("p-0", "t4", 0, "Succeeded"))
    assert wanted is not None
    f.log(0, wanted[1], log_of(0))
    condition = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer"}
    f.job("MODIFIED", {"metadata": {"name": "s-t4", "labels": {GROUP_LABEL: "t4"}},
                       "spec": {"activeDeadlineSeconds": 60}, "status": {"conditions": [condition]}})  # fmt: skip
    assert f.tracker.state[0] == DONE and f.tracker.state[2] == FAILED
    assert f.tracker.reasons[2].startswith("deadline exceeded: its Job's deadline (60 s")
    f.settle()
    [failure] = [r for r in read_records(tmp_path / "results.jsonl") if "failure" in r]
    assert failure["config"] == 2 and failure["group"] == "t4" and failure["failure"] == f.tracker.reasons[2]
    f.settle()  # stored once
    assert len(list(read_records(tmp_path / "results.jsonl"))) == 2
    # Followed again (a resumed follow): the stored failure stands, with its reason, and is not stored twice.
    again = Follower(SWEEP, ResultStore(tmp_path))
    assert again.tracker.state[2] == FAILED and again.tracker.reasons[2] == failure["failure"]
    again.settle()
    assert len(list(read_records(tmp_path / "results.jsonl"))) == 2


def test_a_pod_killed_at_its_deadline_says_so(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    killed = pod("p-1", "a100", 0, "Failed", reason="DeadlineExceeded")
    killed["spec"]["activeDeadlineSeconds"] = 300
    f.pod("MODIFIED", killed)
    f.job("MODIFIED", {"metadata": {"name": "s-a100", "labels": {GROUP_LABEL: "a100"}},
                       "status": {"failedIndexes": "0"}})  # fmt: skip
    assert f.tracker.state[1] == FAILED
    assert f.tracker.reasons[1] == "deadline exceeded: ran longer than its deadline (300 s) on node node-1"


def test_the_follower_s_own_deadline_fails_what_is_unfinished(tmp_path: Path) -> None:
    f = Follower(SWEEP, ResultStore(tmp_path))
    f.pod("ADDED", pod("p-0", "t4", 0, "Running"))
    f.expire(30)
    assert f.complete() and set(f.tracker.state.values()) == {FAILED}
    assert f.tracker.reasons[0] == "deadline exceeded: not finished when the deadline (30 s) passed"
