"""`bench status`: per group, the Job's counts, why its configs wait, and the results collected."""

from dataclasses import dataclass, field
from typing import Any

from deploy.bench.indexes import GROUP_LABEL, SWEEP_LABEL, config_index, job_indexes
from deploy.bench.pending import PENDING_GRACE_S, explain, job_reasons, pod_reason


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

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def sweep_status(api_client: Any, namespace: str, sweep: str, recorded: set[int]) -> list[GroupStatus]:
    from datetime import UTC, datetime

    from kubernetes import client

    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    selector = f"{SWEEP_LABEL}={sweep}"
    jobs = batch.list_namespaced_job(namespace, label_selector=selector).items
    groups = {(j.metadata.labels or {}).get(GROUP_LABEL, ""): job_indexes(j) for j in jobs}
    rows = {}
    for job in jobs:
        group = (job.metadata.labels or {}).get(GROUP_LABEL, "")
        st = job.status
        rows[group] = GroupStatus(
            group=group,
            job=job.metadata.name,
            completions=job.spec.completions or 0,
            succeeded=(st.succeeded or 0) if st else 0,
            failed=(st.failed or 0) if st else 0,
            active=(st.active or 0) if st else 0,
            results=sum(1 for i in groups[group] if i in recorded),
        )
    now = datetime.now(UTC)
    scheduling = {
        e.involved_object.name: explain(e.message or "")
        for e in core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=Pod,reason=FailedScheduling"
        ).items
    }
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        found = config_index(pod.metadata.labels, pod.metadata.annotations, groups)
        if found is None or (pod.status and pod.status.phase) != "Pending":
            continue
        created = pod.metadata.creation_timestamp
        if created and (now - created).total_seconds() < PENDING_GRACE_S:
            continue
        reason = pod_reason(pod) or scheduling.get(pod.metadata.name)
        if reason:
            pending = rows[found[0]].pending
            pending[reason] = pending.get(reason, 0) + 1
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.kind=Job").items
    for group, reason in job_reasons(events, {j.metadata.name: g for g, j in zip(groups, jobs, strict=True)}).items():
        rows[group].pending[reason] = rows[group].pending.get(reason, 0) + 1
    return list(rows.values())
