"""Where a training run stands, from the runner's KAIML_PROGRESS lines (runner/progress.py): epoch, step
of total, loss, samples/s, the last checkpoint, and whether it resumed."""

from typing import Any

from deploy.workloads.progress import Step
from runner.progress import parse_line

# What a step, epoch or done line updates (a step line carries the total: a log's last lines have it too).
STEP_FIELDS = ("epoch", "step", "totalSteps", "loss", "samplesPerSec", "accuracy")


def fold(state: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The state after one progress record (a `start` begins an attempt afresh)."""
    event = record.get("event")
    if event == "start":
        state = {k: record.get(k) for k in ("totalSteps", "resumedFrom", "step", "epoch")}
    elif event in ("step", "epoch", "done"):
        state = {**state, **{k: record[k] for k in STEP_FIELDS if k in record}}
    elif event == "checkpoint":
        state = {**state, "checkpoint": record.get("key"), "step": record.get("step", state.get("step"))}
    return {**state, "event": event}


def of_log(text: str) -> dict[str, Any]:
    """The run's progress so far: the newest value of each field over the log's progress lines."""
    state: dict[str, Any] = {}
    for line_ in text.splitlines():
        record = parse_line(line_)
        if record is not None:
            state = fold(state, record)
    return state


def line(state: dict[str, Any]) -> str:
    """`epoch 2, step 120/300, loss 0.512, 840.2 samples/s`: one line for a person."""
    if not state:
        return "no progress yet"
    parts = []
    if state.get("epoch") is not None:
        parts.append(f"epoch {state['epoch']}")
    if state.get("step") is not None:
        parts.append(f"step {state['step']}" + (f"/{state['totalSteps']}" if state.get("totalSteps") else ""))
    if state.get("loss") is not None:
        parts.append(f"loss {state['loss']:.4g}")
    if state.get("samplesPerSec") is not None:
        parts.append(f"{state['samplesPerSec']} samples/s")
    if state.get("resumedFrom"):
        parts.append(f"resumed from {state['resumedFrom'].rsplit('/', 1)[-1]}")
    return ", ".join(parts)


def step(state: dict[str, Any]) -> Step:
    """The bar of a run (on a cluster or here): its step of the total, and its line."""
    return Step(state.get("step") or 0, state.get("totalSteps"), line(state))


def step_of_log(text: str) -> Step | None:
    """The bar of a run from (the last lines of) its log; None before its first progress line."""
    state = of_log(text)
    return step(state) if state else None
