"""Follow a launched run of a workload (bench: a sweep) with watches, not polling: one on its pods, one
on its Jobs, one on the Jobs' FailedCreate events (quota). Each runs in a thread
(deploy/kube/streams.py `Watches`: a list, then watches from its resourceVersion, stopped and joined
when following ends); all of them feed one queue, and only the
main thread changes the tracker and the results file, so neither needs a lock.

A Succeeded pod's log is read once, by a small pool of threads (the API server relays each read to
the node, so reads overlap), and its result (the workload's parser) is recorded for unit `indexes[completion index]`:
a config's result is written once however many pods it took (retries, preemption, deleted nodes).
Objects stay JSON dicts (deploy/kube/watch.py) and the tracker holds one entry per config, so memory
does not grow with the number of events."""

import contextlib
import queue
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from deploy.errors import ClusterError
from deploy.kube import watch as kube
from deploy.kube.streams import ATTEMPTS, Watches, backoff, refusal
from deploy.workloads.indexes import config_index
from deploy.workloads.kind import Workload
from deploy.workloads.pending import event_time, failure_reason, job_failure, job_reasons, pod_reason
from deploy.workloads.store import ResultStore, failure_record, result_record
from deploy.workloads.tracker import Tracker

WATCH_S = 60
REFRESH_S = 0.25
LOG_READERS = 8


@dataclass
class Followed:
    """One launched run of a workload: its name, namespace, groups (Jobs) and units."""

    workload: Workload
    name: str
    namespace: str
    groups: dict[str, list[int]]
    configs: dict[int, dict[str, Any]]

    @classmethod
    def of(cls, workload: Workload, values: dict[str, Any], namespace: str) -> "Followed":
        return cls(workload, workload.run_name(values), namespace, workload.groups(values), workload.units(values))


def record_of(pod: dict[str, Any], group: str, result: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return result_record(group, kube.get(pod, "metadata", "name"), kube.get(pod, "spec", "nodeName"), config, result)


class Follower:
    """The state machine behind `follow`: feed it pods, Jobs, events and log texts."""

    def __init__(self, run: Followed, store: ResultStore, max_reruns: int = 2) -> None:
        self.run = run
        self.store = store
        self.tracker = Tracker(run.groups)
        self.reading: set[int] = set()  # configs whose log read is under way
        self.lost: list[int] = []  # configs whose result went with its pod: to run again
        self.reruns: Counter[int] = Counter()
        self.spent: set[str] = set()  # Succeeded pods whose log was gone: their later events change nothing
        self.max_reruns = max_reruns
        self.job_groups: dict[str, str] = {}  # Job name -> group
        self.failed_create: dict[str, dict[str, Any]] = {}  # Job name -> its newest FailedCreate event
        for index in store.recorded:
            if index in self.tracker.state:
                self.tracker.done(index)
        for index, why in store.failed.items():
            if index in self.tracker.state:
                self.tracker.failed(index, why)
        self.tracker.take_failed()  # stored already

    def pod(self, kind: str, pod: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """A pod event; returns (config index, pod) when its log should be read now."""
        meta = pod.get("metadata") or {}
        labels, annotations = meta.get("labels"), meta.get("annotations")
        found = config_index(labels, annotations, self.run.groups, self.run.workload.group_label)
        if found is None:
            return None
        index = found[1]
        if self.tracker.finished(index) or index in self.reading or meta.get("name") in self.spent:
            return None
        phase = kube.get(pod, "status", "phase", default="Pending")
        if kind == "DELETED" and phase != "Succeeded":
            self.tracker.pod_phase(index, "Deleted")  # the Job makes another pod, or fails the index
            return None
        if phase == "Succeeded":
            self.reading.add(index)
            return index, pod
        reason = pod_reason(pod) if phase == "Pending" else failure_reason(pod) if phase == "Failed" else None
        self.tracker.pod_phase(index, phase, reason)
        return None

    def log(self, index: int, pod: dict[str, Any], text: str | None, why: str | None = None) -> None:
        """The log of config `index`'s Succeeded pod; text None: it could not be read (`why`; None: the pod
        was gone before it was read). Either way the Job counts the index done and the result is lost:
        the config runs again, up to max_reruns times, then fails with the reason."""
        self.reading.discard(index)
        group = kube.get(pod, "metadata", "labels", self.run.workload.group_label, default="")
        name = kube.get(pod, "metadata", "name")
        if text is None:
            self.spent.add(name)
            if self.reruns[index] >= self.max_reruns:
                times = f" ({self.reruns[index] + 1} times)" if self.reruns[index] else ""
                self.tracker.failed(
                    index,
                    f"log unavailable: {why}{'' if name in why else f' (pod {name})'}{times}"
                    if why
                    else f"pod {name} was gone with its result before its log was read{times}",
                )
                return
            self.reruns[index] += 1
            self.lost.append(index)
            lost = f"log unavailable ({why})" if why else "result lost with its pod (or node) before it was read"
            self.tracker.pod_phase(index, "Pending", f"{lost}: re-run")
            return
        result = self.run.workload.parse(text)
        if result is None:
            self.tracker.failed(index, f"pod {name} succeeded without a result in its log")
            return
        if self.run.workload.save_files is not None:
            self.run.workload.save_files(text, self.store.path.parent)
        self.store.record(index, record_of(pod, group, result, self.run.configs.get(index, {})))
        self.tracker.done(index)

    def add_groups(self, groups: dict[str, list[int]]) -> None:
        """Re-run groups now in the release: their pods count for their configs."""
        self.run.groups.update(groups)
        self.tracker.groups.update(groups)

    def take_lost(self) -> list[int]:
        lost, self.lost = self.lost, []
        return lost

    def job(self, kind: str, job: dict[str, Any]) -> None:
        name = kube.get(job, "metadata", "name")
        group = kube.get(job, "metadata", "labels", self.run.workload.group_label, default="")
        if kind == "DELETED" or group not in self.run.groups:
            return
        self.job_groups[name] = group
        why = job_failure(job)
        self.tracker.job_status(group, kube.get(job, "status", "failedIndexes"), why is not None, why)

    def event(self, kind: str, event: dict[str, Any]) -> None:
        """A FailedCreate event of one of the run's Jobs: why its group's pods do not exist."""
        name = kube.get(event, "involvedObject", "name")
        group = self.job_groups.get(name) or _group_of_job(name, self.run)
        if kind == "DELETED" or group is None or event.get("reason") != "FailedCreate":
            return
        self.job_groups[name] = group
        known = self.failed_create.get(name)
        if known is None or event_time(event) >= event_time(known):
            self.failed_create[name] = event
        self.tracker.group_reasons = job_reasons(list(self.failed_create.values()), self.job_groups)

    def settle(self, look_up: Callable[[list[int]], dict[int, str]] | None = None) -> None:
        """Store each config that failed since the last call, with its reason. `look_up(indexes)`: the
        reasons of failed configs that have none yet, from their pods as they are now (a Job's failed index
        can arrive before its pod's Failed event: they come by separate watches)."""
        failed = self.tracker.take_failed()
        unknown = [i for i in failed if i not in self.tracker.reasons]
        found = look_up(unknown) if unknown and look_up else {}
        for index in failed:
            group = next((g for g, indexes in self.run.groups.items() if index in indexes), "")
            if index in found:
                self.tracker.reasons[index] = found[index]  # the summary says it too
            why = self.tracker.reasons.get(index, "failed (no reason known)")
            self.store.fail(index, failure_record(group, self.run.configs.get(index, {}), why))

    def expire(self, deadline_s: float) -> None:
        """The caller's deadline passed: what is not finished fails, and following ends."""
        self.reading.clear()
        self.tracker.expire(f"deadline exceeded: not finished when the deadline ({deadline_s:.0f} s) passed")

    def complete(self) -> bool:
        return not self.reading and self.tracker.complete()


def _group_of_job(job_name: str | None, run: Followed) -> str | None:
    """The chart names each Job `<run>-<group>`."""
    prefix = f"{run.name}-"
    if job_name and job_name.startswith(prefix) and job_name[len(prefix) :] in run.groups:
        return job_name[len(prefix) :]
    return None


Rerun = Callable[[list[int]], dict[str, list[int]]]


def follow(
    api_client: Any,
    run: Followed,
    store: ResultStore,
    on_update: Callable[[Tracker], None] = lambda t: None,
    rerun: Rerun | None = None,
    max_reruns: int = 2,
    deadline_s: float | None = None,
) -> Tracker:
    """Until every config has a result or failed, or `deadline_s` seconds from now have passed (then
    the unfinished configs fail with "deadline exceeded"); returns the final state. `rerun(indexes)`
    puts configs whose results were lost back into the release (new groups, returned); without it they
    fail. Each failure is stored with its reason as it happens."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    follower = Follower(run, store, max_reruns if rerun else 0)
    selector = f"{run.workload.run_label}={run.name}"
    watches = Watches(
        run.namespace,
        WATCH_S,
        ("jobs", batch.list_namespaced_job, {"label_selector": selector}),
        ("events", core.list_namespaced_event, {"field_selector": "involvedObject.kind=Job,reason=FailedCreate"}),
        ("pods", core.list_namespaced_pod, {"label_selector": selector}),
    )
    events, stop = watches.events, watches.stop

    def read_log(index: int, pod: dict[str, Any]) -> None:
        """The pod's log to the queue, or None and why it could not be read: a refusal (4xx: the pod is
        gone, or has no log, as on kwok's fake nodes that run no container) at once, a connection or
        server failure after ATTEMPTS tries."""
        name = kube.get(pod, "metadata", "name")
        text: str | None = None
        why: str | None = None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                text = core.read_namespaced_pod_log(name, run.namespace, container=run.workload.container)
                break
            except Exception as err:
                status = err.status if isinstance(err, ApiException) else None
                if status == 404:  # removed already (TTL, or its node went)
                    break
                if (status is not None and 400 <= status < 500 and status != 429) or attempt == ATTEMPTS:
                    why = refusal(err)
                    break
                backoff(stop, attempt)
        events.put(("log", str(index), (pod, text, why)))

    def reasons_now(indexes: list[int]) -> dict[int, str]:
        wanted, out = set(indexes), {}
        with contextlib.suppress(Exception):  # the API server away: the reason stays unknown, as before
            pods, _ = kube.list_all(core.list_namespaced_pod, run.namespace, label_selector=selector)
            for pod in pods:
                meta = pod.get("metadata") or {}
                found = config_index(meta.get("labels"), meta.get("annotations"), run.groups, run.workload.group_label)
                why = failure_reason(pod) if kube.get(pod, "status", "phase") == "Failed" else None
                if found is not None and found[1] in wanted and why:
                    out[found[1]] = why
        return out

    if follower.complete():  # picked up again with every result stored: nothing to watch
        on_update(follower.tracker)
        return follower.tracker
    readers = ThreadPoolExecutor(LOG_READERS, thread_name_prefix="pod-log")
    ends = None if deadline_s is None else time.monotonic() + deadline_s
    with watches:
        try:
            on_update(follower.tracker)
            while not follower.complete():
                if ends is not None and time.monotonic() >= ends:
                    follower.expire(deadline_s or 0)
                    break
                wait = REFRESH_S if ends is None else max(0.0, min(REFRESH_S, ends - time.monotonic()))
                try:
                    item = events.get(timeout=wait)
                except queue.Empty:
                    on_update(follower.tracker)
                    continue
                while item is not None:  # a burst of events, then one display update
                    _dispatch(follower, item, lambda i, p: readers.submit(read_log, i, p))
                    item = events.get_nowait() if not events.empty() else None
                if rerun is not None and follower.lost:
                    follower.add_groups(rerun(follower.take_lost()))
                follower.settle(reasons_now)
                on_update(follower.tracker)
            follower.settle(reasons_now)
            on_update(follower.tracker)
            return follower.tracker
        finally:
            readers.shutdown(wait=False, cancel_futures=True)


def _dispatch(follower: Follower, item: tuple[str, str, Any], read: Callable[[int, dict[str, Any]], Any]) -> None:
    topic, kind, obj = item
    run = follower.run
    if topic == "error":
        raise ClusterError(
            f"the API server failed the {run.workload.title}'s {kind} watch {ATTEMPTS} times in a row "
            f"({refusal(obj)}): stopped following. The release stays installed and the results so far are kept; "
            f"`{run.workload.name} follow {run.name}` picks it up again, `{run.workload.name} status {run.name}` "
            "shows where it is."
        ) from obj
    if topic == "pods":
        wanted = follower.pod(kind, obj)
        if wanted:
            read(*wanted)
    elif topic == "log":
        pod, text, why = obj
        follower.log(int(kind), pod, text, why)
    elif topic == "jobs":
        follower.job(kind, obj)
    elif topic == "events":
        follower.event(kind, obj)
