"""The state of a followed sweep, one entry per config (never per event): pending, running,
done or failed, plus why pending ones wait. Pure: the watch loop feeds it pods and Jobs."""

import time
from collections import Counter
from dataclasses import dataclass, field

from deploy.workloads.indexes import parse_ranges

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass
class Tracker:
    groups: dict[str, list[int]]
    state: dict[int, str] = field(default_factory=dict)
    pending_since: dict[int, float] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    group_reasons: dict[str, str] = field(default_factory=dict)
    # Why the last pod of a config failed (exit code, the runner's message): the reason of a config
    # the Job then gives up on.
    failures: dict[int, str] = field(default_factory=dict)
    # The last reason a config's pod waited for, kept when that pod is deleted (a Job past its deadline
    # deletes its pods before it says it failed): the reason of a config that never ran.
    waited: dict[int, str] = field(default_factory=dict)
    # Configs failed since the last take_failed(), for the caller to store.
    newly_failed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        for indexes in self.groups.values():
            for i in indexes:
                if i >= 0:  # a negative entry reports no result (deploy/workloads/kind.py)
                    self.state.setdefault(i, PENDING)

    def finished(self, index: int) -> bool:
        return self.state.get(index) in (DONE, FAILED)

    def done(self, index: int) -> None:
        self.state[index] = DONE
        self._clear(index)

    def failed(self, index: int, why: str | None = None) -> None:
        """Config `index` failed for good: `why`, else its last pod's failure (a done config stays done)."""
        if self.state.get(index) == DONE:
            return
        if self.state.get(index) != FAILED:
            self.newly_failed.append(index)
        self.state[index] = FAILED
        self._clear(index)
        if why or index in self.failures:
            self.reasons[index] = why or self.failures[index]

    def take_failed(self) -> list[int]:
        taken, self.newly_failed = self.newly_failed, []
        return taken

    def expire(self, why: str) -> None:
        """A deadline passed: every config not finished fails with `why`."""
        for index in self.state:
            if not self.finished(index):
                self.failed(index, why)

    def _clear(self, index: int) -> None:
        self.pending_since.pop(index, None)
        self.reasons.pop(index, None)

    def pod_phase(self, index: int, phase: str, reason: str | None = None, now: float | None = None) -> None:
        """A pod of config `index` is in `phase` (Pending/Running/Failed/deleted). A finished config
        never goes back (a retried or restarted pod of a recorded config changes nothing)."""
        if self.finished(index):
            return
        if phase == "Running":
            self.state[index] = RUNNING
            self._clear(index)
            self.waited.pop(index, None)
            return
        self.state[index] = PENDING
        if phase == "Pending":
            self.pending_since.setdefault(index, time.monotonic() if now is None else now)
            if reason:
                self.reasons[index] = reason
                self.waited[index] = reason
        else:  # Failed or deleted: the Job makes a new pod (or fails the index, see job_status)
            self._clear(index)
            if phase == "Failed" and reason:
                self.failures[index] = reason

    def job_status(self, group: str, failed_indexes: str | None, job_failed: bool, why: str | None = None) -> None:
        """Failed completion indexes fail their configs; a failed Job fails what it has not finished
        (`why`: the Job's own reason, e.g. its deadline; for a config that never ran, with why it waited)."""
        indexes = self.groups.get(group, [])
        for completion in parse_ranges(failed_indexes):
            if completion < len(indexes) and indexes[completion] >= 0:
                self.failed(indexes[completion])
        if job_failed:
            for i in indexes:
                if i >= 0 and not self.finished(i):
                    waited = self.waited.get(i) or self.group_reasons.get(group)
                    never_ran = why and waited and i not in self.failures
                    self.failed(i, f"{why}; it was pending: {waited}" if never_ran else why)

    def counts(self) -> Counter[str]:
        return Counter(self.state.values())

    def complete(self) -> bool:
        return all(s in (DONE, FAILED) for s in self.state.values())

    def waiting(self, grace_s: float, now: float | None = None) -> dict[str, int]:
        """Reason -> configs pending longer than `grace_s` for it (groups' Job reasons included)."""
        now = time.monotonic() if now is None else now
        out: Counter[str] = Counter()
        for index, since in self.pending_since.items():
            if now - since >= grace_s and index in self.reasons:
                out[self.reasons[index]] += 1
        for group, reason in self.group_reasons.items():
            stuck = sum(1 for i in self.groups[group] if self.state.get(i) == PENDING)
            if stuck:
                out[f"{group}: {reason}"] += stuck
        return dict(out)
