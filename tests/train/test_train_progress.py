"""Where a run stands, from the runner's own progress lines (as a pod's log or a local log holds them)."""

from deploy.workloads.train import progress
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
