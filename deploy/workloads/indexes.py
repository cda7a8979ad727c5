"""Which unit (bench: config) a pod ran: its group's `indexes[completion index]`, never the log's content."""

from typing import Any

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEXES_ENV = "KAIML_CONFIG_INDEXES"


def parse_ranges(text: str | None) -> set[int]:
    """A Job's `failedIndexes` / `completedIndexes` (`1,3-5`) as a set."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


def parse_indexes(value: str) -> list[int]:
    """KAIML_CONFIG_INDEXES (`0,2,4`): completion index i runs config list[i]."""
    return [int(v) for v in value.split(",") if v.strip()]


def config_index(
    labels: dict[str, str] | None, annotations: dict[str, str] | None, groups: dict[str, list[int]], group_label: str
) -> tuple[str, int] | None:
    """(group, unit index) of a pod, or None when it is not one of these groups' or its completion index
    reports no result of its own (a negative entry)."""
    group = (labels or {}).get(group_label)
    raw = (annotations or {}).get(COMPLETION_INDEX)
    if group not in groups or raw is None or not raw.isdigit():
        return None
    completion = int(raw)
    indexes = groups[group]
    if completion >= len(indexes):
        return None
    return (group, indexes[completion]) if indexes[completion] >= 0 else None


def job_indexes(job: dict[str, Any]) -> list[int]:
    """A group's config indexes, from its Job's (JSON) runner env (so `status` needs no sweep file)."""
    for container in ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == INDEXES_ENV:
                return parse_indexes(env.get("value") or "")
    return []
