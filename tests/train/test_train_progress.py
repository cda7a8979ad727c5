"""Where a run stands, from the runner's own progress lines (as a pod's log or a local log holds them)."""

import io

from rich.console import Console

from deploy.workloads.progress import Display
from deploy.workloads.train import progress
from deploy.workloads.train.workload import TRAIN
from runner.progress import line


def test_progress_of_a_log_folds_its_lines_and_a_restart_begins_afresh() -> None:
    log = "\n".join([
        "2026-11-30T10:00:00Z stdout F runner: starting",
        line("start", step=0, epoch=0, totalSteps=40, resumedFrom=None),
        line("step", epoch=0, step=10, loss=1.5, samplesPerSec=320.5),
        line("checkpoint", step=10, key="training/r-train/checkpoints/step-000000010.pt"),
        line("step", epoch=1, step=20, loss=0.75, samplesPerSec=300.0),
    ])  # fmt: skip
    state = progress.of_log(log)
    assert (state["epoch"], state["step"], state["loss"], state["totalSteps"]) == (1, 20, 0.75, 40)
    assert state["checkpoint"].endswith("step-000000010.pt")
    assert progress.line(state) == "epoch 1, step 20/40, loss 0.75, 300.0 samples/s"
    resumed = log + "\n" + line("start", step=10, epoch=0, totalSteps=40, resumedFrom="x/step-000000010.pt")
    state = progress.of_log(resumed)
    assert state["step"] == 10 and "loss" not in state
    assert progress.line(state) == "epoch 0, step 10/40, resumed from step-000000010.pt"
    assert progress.line({}) == "no progress yet"


def test_the_follower_shows_a_bar_of_the_steps_from_the_last_lines_of_a_pod_log() -> None:
    """The follower reads a running pod's last lines (no `start` line among them): the step lines carry the
    total, so the bar is of steps done of all, with the epoch, step and loss beside it."""
    tail = "\n".join([
        line("step", epoch=1, step=19, totalSteps=40, loss=0.8, samplesPerSec=310.0),
        line("step", epoch=1, step=20, totalSteps=40, loss=0.75, samplesPerSec=300.0),
    ])  # fmt: skip
    assert TRAIN.progress is not None and TRAIN.progress("runner: starting\n") is None
    step = TRAIN.progress(tail)
    assert step is not None and (step.done, step.total) == (20, 40)
    display = Display(1, TRAIN.unit)
    display.step(step, "r-train-0-abcde")
    out = Console(file=io.StringIO(), width=160, color_system=None)
    out.print(display.progress)
    steps = [row for row in out.file.getvalue().splitlines() if row.startswith("steps")]  # type: ignore[attr-defined]
    assert len(steps) == 1 and "epoch 1, step 20/40, loss 0.75, 300.0 samples/s (r-train-0-abcde)" in steps[0]
    bar = steps[0].split()[1]
    assert set(bar) <= {"━", "╸", "╺"} and len(bar) > 10, steps[0]
