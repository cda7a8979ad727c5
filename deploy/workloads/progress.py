"""What a run shows while it runs (on a cluster or on this machine) and the line it ends with."""

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from deploy.console import console
from deploy.workloads.pending import PENDING_GRACE_S
from deploy.workloads.tracker import DONE, FAILED, PENDING, RUNNING, Tracker

# Failed configs named (and explained) in the summary; the rest are counted.
SHOWN = 20


@dataclass(frozen=True)
class Step:
    """Where one long unit is, from its log (Workload.progress): `done` of `total` steps (None: not known yet)
    and what to show beside the bar (a training run's epoch, step, loss and samples/s)."""

    done: float
    total: float | None
    text: str


class Display:
    """A progress bar of configs done / running / pending / failed, with pending reasons under it, and for
    a workload with few long units the bar of the running unit's own steps (`step`)."""

    def __init__(self, total: int, unit: str = "config") -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(), console=console,
        )  # fmt: skip
        self.task = self.progress.add_task(f"{unit}s", total=total, counts="")
        self.steps: TaskID | None = None
        self.reasons = Text()
        self.live = Live(Group(self.progress, self.reasons), console=console, refresh_per_second=4)

    def step(self, step: Step, where: str = "") -> None:
        """The running unit's steps as a second bar (added on the first call), `where` (its pod) after them."""
        text = f"{step.text} ({where})" if where else step.text
        if self.steps is None:
            self.steps = self.progress.add_task("steps", total=step.total, counts=text)
        self.progress.update(self.steps, total=step.total, completed=step.done, counts=text)

    def update(self, tracker: Tracker) -> None:
        c = tracker.counts()
        counts = f"{c[DONE]} done, {c[RUNNING]} running, {c[PENDING]} pending, {c[FAILED]} failed"
        self.progress.update(self.task, completed=c[DONE] + c[FAILED], counts=counts)
        waiting = tracker.waiting(PENDING_GRACE_S)
        self.reasons.plain = "\n".join(f"  pending ({n}): {why}" for why, n in sorted(waiting.items()))


def summary(tracker: Tracker, run: str, folder: Path, title: str = "sweep", unit: str = "config") -> int:
    """One line of counts, then why each failed unit failed (where known); the exit code."""
    c = tracker.counts()
    failed = sorted(i for i, s in tracker.state.items() if s == FAILED)
    console.print(
        f"{title} {run}: {c[DONE]} of {len(tracker.state)} {unit}s have a result, {c[FAILED]} failed"
        + (f" ({unit}s {', '.join(map(str, failed[:SHOWN]))}{' ...' if len(failed) > SHOWN else ''})" if failed else "")
        + f"; results in {folder / 'results.jsonl'}",
        highlight=False,
        markup=False,
    )
    for index in failed[:SHOWN]:
        if index in tracker.reasons:
            console.print(f"  {unit} {index}: {tracker.reasons[index]}", highlight=False, soft_wrap=True, markup=False)
    return 0 if not failed and c[DONE] == len(tracker.state) else 1
