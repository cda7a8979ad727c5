"""Follow a launched sweep: one watch on its pods (resumed from the last resourceVersion when it
expires), each Succeeded pod's log read once, its KAIML_RESULT recorded for config
`indexes[completion index]`. Between watch windows the sweep's Jobs (failedIndexes) and their
FailedCreate events (quota) are read once: a few requests per window, whatever the sweep's size."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploy.bench.indexes import GROUP_LABEL, SWEEP_LABEL, config_index
from deploy.bench.pending import job_reasons, pod_reason
from deploy.bench.store import ResultStore, result_record
from deploy.bench.tracker import Tracker

WINDOW_S = 5


@dataclass
class Sweep:
    name: str
    namespace: str
    groups: dict[str, list[int]]
    configs: dict[int, dict[str, Any]]


def record_of(pod: Any, group: str, result: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return result_record(group, pod.metadata.name, pod.spec.node_name, config, result)


def handle_pod(pod: Any, sweep: Sweep, tracker: Tracker, store: ResultStore, read_log: Callable[[str], str]) -> None:
    from runner.result import find_result

    found = config_index(pod.metadata.labels, pod.metadata.annotations, sweep.groups)
    if found is None:
        return
    group, index = found
    if index in store.recorded:
        tracker.done(index)
        return
    if tracker.finished(index):
        return
    phase = pod.status.phase if pod.status else "Pending"
    if phase == "Succeeded":
        result = find_result(read_log(pod.metadata.name))
        if result is None:
            tracker.failed(index)
            tracker.reasons[index] = f"pod {pod.metadata.name} succeeded without a KAIML_RESULT line"
            return
        store.record(index, record_of(pod, group, result, sweep.configs.get(index, {})))
        tracker.done(index)
        return
    tracker.pod_phase(index, phase or "Pending", pod_reason(pod) if phase == "Pending" else None)


def refresh_jobs(batch: Any, core: Any, sweep: Sweep, tracker: Tracker) -> None:
    jobs = batch.list_namespaced_job(sweep.namespace, label_selector=f"{SWEEP_LABEL}={sweep.name}").items
    names: dict[str, str] = {}
    for job in jobs:
        group = (job.metadata.labels or {}).get(GROUP_LABEL, "")
        names[job.metadata.name] = group
        conds = (job.status and job.status.conditions) or []
        failed = any(c.type == "Failed" and c.status == "True" for c in conds)
        tracker.job_status(group, job.status.failed_indexes if job.status else None, failed)
    events = core.list_namespaced_event(sweep.namespace, field_selector="involvedObject.kind=Job").items
    tracker.group_reasons = job_reasons(events, names)


def follow(
    api_client: Any,
    sweep: Sweep,
    store: ResultStore,
    on_update: Callable[[Tracker], None] = lambda t: None,
    window_s: int = WINDOW_S,
) -> Tracker:
    """Until every config has a result or failed; returns the final state."""
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException

    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    tracker = Tracker(sweep.groups)
    for index in store.recorded:
        if index in tracker.state:
            tracker.done(index)

    def read_log(pod: str) -> str:
        try:
            return core.read_namespaced_pod_log(pod, sweep.namespace, container="runner")
        except ApiException as err:
            if err.status == 404:  # already removed (TTL): its index is retried or failed by the Job
                return ""
            raise

    selector = f"{SWEEP_LABEL}={sweep.name}"
    version: str | None = None
    w = watch.Watch()
    while True:
        refresh_jobs(batch, core, sweep, tracker)
        on_update(tracker)
        if tracker.complete():
            return tracker
        if version is None:  # first window, or the last resourceVersion expired: list once, then watch
            listed = core.list_namespaced_pod(sweep.namespace, label_selector=selector)
            for pod in listed.items:
                handle_pod(pod, sweep, tracker, store, read_log)
            version = listed.metadata.resource_version
            on_update(tracker)
            continue
        try:
            for event in w.stream(
                core.list_namespaced_pod,
                sweep.namespace,
                label_selector=selector,
                resource_version=version,
                timeout_seconds=window_s,
                allow_watch_bookmarks=True,
            ):
                obj = event["object"]
                version = obj.metadata.resource_version or version
                if event["type"] == "BOOKMARK":
                    continue
                if event["type"] == "DELETED":
                    found = config_index(obj.metadata.labels, obj.metadata.annotations, sweep.groups)
                    if found and (obj.status is None or obj.status.phase != "Succeeded"):
                        tracker.pod_phase(found[1], "Deleted")
                        continue
                handle_pod(obj, sweep, tracker, store, read_log)
                on_update(tracker)
                if tracker.complete():
                    w.stop()
                    break
        except ApiException as err:
            if err.status != 410:
                raise
            version = None  # expired: list again from now
