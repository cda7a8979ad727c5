"""What the user sees: live progress while releases apply, a summary table at the end (stderr), or
one JSON document on stdout with --output json."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from deploy.console import console, escape
from deploy.platform.apply import FAILED, INSTALLED, NOT_STARTED, UNCHANGED, UPGRADED, OnState, Outcome
from deploy.platform.plan import Plan, Release

STYLE = {INSTALLED: "green", UPGRADED: "green", UNCHANGED: "dim", FAILED: "bold red", NOT_STARTED: "yellow"}
DONE = {INSTALLED, UPGRADED, UNCHANGED, FAILED, NOT_STARTED, "rendered"}


@contextmanager
def progress(plan: Plan, enabled: bool = True) -> Iterator[OnState]:
    """An OnState callback that shows one spinner line per release while it works."""
    if not enabled or not console.is_terminal:
        yield lambda rel, state: None
        return
    # here, not at the top: a no-op run (the common re-run) shows no progress and skips the import
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[release]:<34}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}
    with bar:
        for rel in plan.ordered():
            tasks[rel.name] = bar.add_task("waiting", release=rel.name, total=1, start=False)

        def on_state(rel: Release, state: str) -> None:
            task = tasks.get(rel.name)
            if task is None:
                return
            if state in DONE:
                bar.update(task, description=state, completed=1)
                bar.stop_task(task)
            else:
                bar.start_task(task)
                bar.update(task, description=state)

        yield on_state


def summary_dict(outcomes: list[Outcome], plan: Plan, **extra: Any) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    return {
        "env": plan.env,
        "ok": not any(o.action == FAILED for o in outcomes),
        "counts": counts,
        "releases": [o.as_dict() for o in outcomes],
        "excluded": plan.excluded,
        **extra,
    }


def print_summary(outcomes: list[Outcome], plan: Plan, output: str = "text", **extra: Any) -> None:
    data = summary_dict(outcomes, plan, **extra)
    if output == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    table = Table(title=f"{plan.env}: {', '.join(f'{n} {a}' for a, n in data['counts'].items()) or 'nothing to do'}")
    for col in ("level", "release", "chart", "result", "revision", "time"):
        table.add_column(col, justify="right" if col in ("level", "revision", "time") else "left", no_wrap=True)
    for o in outcomes:
        style = STYLE.get(o.action, "")
        table.add_row(
            str(o.release.level),
            escape(o.release.name),
            escape(o.release.chart),
            f"[{style}]{o.action}[/]" if style else o.action,
            "" if o.revision is None else str(o.revision),
            f"{o.seconds:.1f}s" if o.seconds else "",
        )
    (console if console.is_terminal else Console(stderr=True, width=120)).print(table)
    for alias, why in plan.excluded.items():
        console.print(f"[dim]not in this run: {escape(alias)}: {escape(why)}[/]", highlight=False)
    for o in outcomes:
        if o.detail and o.action != FAILED:
            console.print(f"[dim]{escape(o.release.name)}: {escape(o.detail)}[/]", highlight=False)
    for o in (o for o in outcomes if o.action == FAILED):
        failed = f"[bold red]{escape(o.release.name)} failed[/] (rolled back): {escape(o.detail)}"
        console.print(failed, highlight=False)
        for line in o.events:
            console.print(f"    event {line}", highlight=False, markup=False)
    if all(o.action == UNCHANGED for o in outcomes) and outcomes:
        console.print("[green]nothing changed: no release was applied.[/]")


def failure_paragraph(outcomes: list[Outcome], run_dir: object) -> str:
    def names(action: str) -> str:
        return ", ".join(x.release.name for x in outcomes if x.action == action) or "none"

    applied = ", ".join(x.release.name for x in outcomes if x.action in (INSTALLED, UPGRADED)) or "none"
    return (
        f"the run stopped: {names(FAILED)} failed and was rolled back (events above). Applied in this run: "
        f"{applied}; unchanged: {names(UNCHANGED)}; not started: {names(NOT_STARTED)}. The values and manifests "
        f"of this run are kept in {run_dir}."
    )
