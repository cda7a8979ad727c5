"""`<workload> status`: per group, the Job's counts, why its configs wait, and the results collected."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deploy.kube import watch as kube
from deploy.workloads.indexes import config_index, job_indexes, parse_ranges
from deploy.workloads.kind import Workload
from deploy.workloads.pending import PENDING_GRACE_S, explain, failure_reason, job_failure, job_reasons, pod_reason


@dataclass
class GroupStatus:
    group: str
    job: str
    completions: int
    succeeded: int
    failed: int
    active: int
    results: int
    pending: dict[str, int] = field(default_factory=dict)
    # config index -> why it failed: its last failed pod (exit code, the runner's message, its
    # deadline), its Job (the sweep's deadline), or, once the pods are gone, the stored failure
    failures: dict[int, str] = field(default_factory=dict)
    # why the group's Job failed ("deadline exceeded: ..."); empty while it has not
    job_failed: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _age_s(obj: dict[str, Any], now: datetime) -> float:
    created = kube.get(obj, "metadata", "creationTimestamp")
    if not created:
        return float("inf")
    return (now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()


def run_status(
    api_client: Any,
    workload: Workload,
    namespace: str,
    run: str,
    recorded: set[int],
    known: dict[str, list[int]],
    stored: dict[int, str] | None = None,
) -> list[GroupStatus]:
    """`known`: the run's groups from the values it was launched with (a group missing there, e.g. launched
    from another machine, is read from its Job's KAIML_CONFIG_INDEXES); `recorded`: units with a stored
    result; `stored`: stored failures (unit -> why), shown where the pods no longer say it."""
    from kubernetes import client

    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    selector = f"{workload.run_label}={run}"
    jobs, _ = kube.list_all(batch.list_namespaced_job, namespace, label_selector=selector)
    label = workload.group_label
    job_groups = {kube.get(j, "metadata", "name"): kube.get(j, "metadata", "labels", label, default="") for j in jobs}
    groups = {g: known.get(g) or job_indexes(j) for j in jobs if (g := job_groups[kube.get(j, "metadata", "name")])}
    rows = {}
    for job in jobs:
        group = job_groups[kube.get(job, "metadata", "name")]
        rows[group] = GroupStatus(
            group=group,
            job=kube.get(job, "metadata", "name"),
            completions=kube.get(job, "spec", "completions", default=0),
            succeeded=kube.get(job, "status", "succeeded", default=0),
            failed=kube.get(job, "status", "failed", default=0),
            active=kube.get(job, "status", "active", default=0),
            results=sum(1 for i in groups[group] if i >= 0 and i in recorded),
            job_failed=job_failure(job) or "",
        )
    now = datetime.now(UTC)
    events, _ = kube.list_all(
        core.list_namespaced_event, namespace, field_selector="involvedObject.kind=Pod,reason=FailedScheduling"
    )
    scheduling = {kube.get(e, "involvedObject", "name"): explain(e.get("message") or "") for e in events}
    for page, _ in kube.list_pages(core.list_namespaced_pod, namespace, label_selector=selector):
        for pod in page:
            meta = pod.get("metadata") or {}
            found = config_index(meta.get("labels"), meta.get("annotations"), groups, workload.group_label)
            failure = failure_reason(pod) if kube.get(pod, "status", "phase") == "Failed" else None
            if found is not None and failure:
                rows[found[0]].failures[found[1]] = failure
            if found is None or kube.get(pod, "status", "phase") != "Pending" or _age_s(pod, now) < PENDING_GRACE_S:
                continue
            reason = pod_reason(pod) or scheduling.get(meta.get("name"))
            if reason:
                pending = rows[found[0]].pending
                pending[reason] = pending.get(reason, 0) + 1
    events, _ = kube.list_all(
        core.list_namespaced_event, namespace, field_selector="involvedObject.kind=Job,reason=FailedCreate"
    )
    for group, reason in job_reasons(events, job_groups).items():
        rows[group].pending[reason] = rows[group].pending.get(reason, 0) + 1
    for job in jobs:
        row = rows[job_groups[kube.get(job, "metadata", "name")]]
        if row.job_failed:  # what its Job had not finished failed with it (its deadline, say)
            completed = parse_ranges(kube.get(job, "status", "completedIndexes"))
            for completion, index in enumerate(groups.get(row.group, [])):
                if index >= 0 and completion not in completed and index not in recorded:
                    row.failures.setdefault(index, row.job_failed)
    for index, why in (stored or {}).items():
        owners = [r for r in rows.values() if index in groups.get(r.group, [])]
        if owners and not any(index in r.failures for r in owners):
            owners[-1].failures[index] = why  # a re-run group comes after the group it repeats
    return list(rows.values())
