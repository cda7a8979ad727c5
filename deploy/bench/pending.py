"""Why a config is not running: the scheduler's PodScheduled message, the Job controller's
FailedCreate events (exceeded quota), each summarised as the causes an operator can act on."""

import re
from typing import Any

PENDING_GRACE_S = 3.0
_CAUSES = (
    (re.compile(r"exceeded quota: ([\w.-]+)(?:, requested: ([^,]+))?"), "quota exceeded"),
    (re.compile(r"untolerated taint\(?s?\)? ?(\{[^}]*\})?"), "taint not tolerated"),
    (re.compile(r"Insufficient ([\w/-]+(?:\.[\w/-]+)*)"), "insufficient"),
    (re.compile(r"didn't match Pod's node affinity/selector"), "no node matching the selector"),
    (re.compile(r"were unschedulable"), "nodes unschedulable (cordoned)"),
    (re.compile(r"no nodes available"), "no nodes"),
    (re.compile(r"forbidden: .*PriorityClass|no PriorityClass"), "unknown priority class"),
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


def pod_reason(pod: Any) -> str | None:
    """The PodScheduled=False message of a Pending pod, explained; None when it has none."""
    for cond in (pod.status and pod.status.conditions) or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.message:
            return explain(cond.message)
    return None


def job_reasons(events: list[Any], jobs: dict[str, str]) -> dict[str, str]:
    """group -> explained message of the newest FailedCreate event of its Job (`jobs`: Job name -> group)."""
    newest: dict[str, tuple[Any, str]] = {}
    for ev in events:
        obj = ev.involved_object
        if obj is None or obj.kind != "Job" or obj.name not in jobs or ev.reason != "FailedCreate":
            continue
        when = ev.last_timestamp or ev.event_time or ev.metadata.creation_timestamp
        group = jobs[obj.name]
        if group not in newest or (when and newest[group][0] and when > newest[group][0]):
            newest[group] = (when, explain(ev.message or ""))
    return {g: msg for g, (_, msg) in newest.items()}
