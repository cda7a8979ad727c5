"""Why a config is not running: the scheduler's PodScheduled message, the Job controller's
FailedCreate events (exceeded quota), each summarised as the causes an operator can act on."""

import re
from typing import Any

from deploy.kube.watch import get

PENDING_GRACE_S = 3.0
# The reason Kubernetes gives a pod or a Job that ran past its activeDeadlineSeconds.
DEADLINE_EXCEEDED = "DeadlineExceeded"
_CAUSES = (
    (re.compile(r"exceeded quota: ([\w.-]+)(?:, requested: ([^,]+))?"), "quota exceeded"),
    (re.compile(r"untolerated taint\(?s?\)? ?(\{[^}]*\})?"), "taint not tolerated"),
    (re.compile(r"Insufficient ([\w/-]+(?:\.[\w/-]+)*)"), "insufficient"),
    (re.compile(r"didn't match Pod's node affinity/selector"), "no node matching the selector"),
    (re.compile(r"were unschedulable"), "nodes unschedulable (cordoned)"),
    (re.compile(r"no nodes available"), "no nodes"),
    (re.compile(r'persistentvolumeclaim "([^"]+)" not found'), "volume claim not found:"),
    (re.compile(r"forbidden: .*PriorityClass|no PriorityClass"), "unknown priority class"),
    # The scheduler's preemption verdicts: what holds the resources runs at equal or higher priority.
    (re.compile(r"No preemption victims found"), "lower priority: nothing it may preempt"),
    (re.compile(r"not eligible due to preemptionPolicy=Never"), "lower priority: its priority class never preempts"),
)


def explain(message: str) -> str:
    """`taint not tolerated {node-type: gpu-optimized}; insufficient nvidia.com/gpu` from a raw
    scheduler or admission message; the message itself (trimmed) when no cause is known."""
    causes: list[str] = []
    for pattern, cause in _CAUSES:
        for m in pattern.finditer(message):
            detail = " ".join(g for g in m.groups() if g) if m.groups() else ""
            text = f"{cause} {detail}".strip() if cause != "insufficient" else f"insufficient {m.group(1)}"
            if text not in causes:
                causes.append(text)
    return "; ".join(causes) if causes else " ".join(message.split())[:200]


def pod_reason(pod: dict[str, Any]) -> str | None:
    """The PodScheduled=False message of a Pending pod (JSON), explained; None when it has none."""
    for cond in get(pod, "status", "conditions", default=[]):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("message"):
            return explain(cond["message"])
    return None


def failure_reason(pod: dict[str, Any]) -> str | None:
    """Why a Failed runner pod failed: its deadline, else its exit code and the runner's message. The
    chart sets terminationMessagePolicy FallbackToLogsOnError, so the container's termination message
    holds the end of its log: the failure record (its `error`), else the log's last line."""
    from runner.result import find_result

    if get(pod, "status", "reason") == DEADLINE_EXCEEDED:  # the kubelet killed it at activeDeadlineSeconds
        limit = get(pod, "spec", "activeDeadlineSeconds")
        return f"deadline exceeded: ran longer than its deadline ({limit} s) on node {get(pod, 'spec', 'nodeName')}"

    for status in get(pod, "status", "containerStatuses", default=[]) or []:
        terminated = get(status, "state", "terminated") or get(status, "lastState", "terminated")
        if not terminated:
            continue
        message = terminated.get("message") or ""
        record = find_result(message)
        lines = [line for line in message.splitlines() if line.strip()]
        why = (record or {}).get("error") or (lines[-1].strip() if lines else terminated.get("reason") or "no message")
        return f"exit {terminated.get('exitCode')}: {why}"
    return None


def job_failure(job: dict[str, Any]) -> str | None:
    """Why a Job failed (its Failed condition), in words; None while it has not. Its deadline is
    "deadline exceeded"; other reasons (BackoffLimitExceeded, MaxFailedIndexesExceeded...) as the Job
    controller words them."""
    for cond in get(job, "status", "conditions", default=[]) or []:
        if cond.get("type") != "Failed" or cond.get("status") != "True":
            continue
        if cond.get("reason") == DEADLINE_EXCEEDED:
            limit = get(job, "spec", "activeDeadlineSeconds")
            return f"deadline exceeded: its Job's deadline ({limit} s from the Job's start) passed before it finished"
        return f"{cond.get('reason') or 'Failed'}: {cond.get('message') or 'the Job failed'}"
    return None


def event_time(event: dict[str, Any]) -> str:
    """RFC 3339 text, which sorts as time does."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or get(event, "metadata", "creationTimestamp"))


def job_reasons(events: list[dict[str, Any]], jobs: dict[str, str]) -> dict[str, str]:
    """group -> explained message of the newest FailedCreate event of its Job (`jobs`: Job name -> group)."""
    newest: dict[str, tuple[str, str]] = {}
    for ev in events:
        name = get(ev, "involvedObject", "name")
        if get(ev, "involvedObject", "kind") != "Job" or name not in jobs or ev.get("reason") != "FailedCreate":
            continue
        when, group = event_time(ev), jobs[name]
        if group not in newest or when >= newest[group][0]:
            newest[group] = (when, explain(ev.get("message") or ""))
    return {g: msg for g, (_, msg) in newest.items()}
