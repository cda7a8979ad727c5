"""`bench run --local`: the sweep's configs run here as runner subprocesses, no cluster, no Helm."""

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from deploy.console import console, log, warning
from deploy.workloads.bench.device import Device, place, require_torch
from deploy.workloads.bench.onhost import LocalRun, LocalSweep
from deploy.workloads.progress import Display, summary
from deploy.workloads.store import new_launch
from deploy.workloads.tracker import Tracker

RunLocal = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Run the configs on this machine as `python -m runner` subprocesses: no cluster, no Helm release, "
        "the same results.jsonl (runner output in runs/bench-<sweep>/logs/). The sweep is still checked against "
        "--env. Not with --context, --kubeconfig or --local-cluster.",
    ),
]
DeviceOpt = Annotated[
    Device,
    typer.Option(
        "--device",
        help="With --local. auto: GPU configs on CUDA (refused when torch sees none), CPU-pool configs on the CPU; "
        "cpu: every config on the CPU, GPU configs too (their gpuType is kept in the records); cuda: every config "
        "on CUDA.",
    ),
]
Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        help="With --local: configs run at once. Default 1: benchmarks on one machine compete for its cores, "
        "memory bandwidth and GPU, so their figures are only comparable when they run one at a time. Above 1, "
        "each CPU runner gets its share of the cores (OMP_NUM_THREADS, unless set).",
    ),
]
# Options of the cluster path that a local run has no use for.
CLUSTER_ONLY = (
    *("context", "kubeconfig", "local_cluster", "release_namespace", "timeout", "do_follow"),
    *("registry", "tag"),  # the runner image: a local run uses this machine's Python
)
# (`runners` is --parallel: `parallel` would reach the Request as the deploy's own --parallel)
LOCAL_ONLY = ("device", "runners")


def _given(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """The options among `names` that the command line set (defaults do not count)."""
    flags = {p.name: "/".join([p.opts[0], *p.secondary_opts[:1]]) for p in ctx.command.params if p.name}
    source = ctx.get_parameter_source
    return [flags[n] for n in names if getattr(source(n), "name", "") == "COMMANDLINE"]


def check_options(ctx: typer.Context, local: bool) -> None:
    """--local takes no cluster option, and --device/--parallel mean nothing without it."""
    if local and (given := _given(ctx, CLUSTER_ONLY)):
        raise typer.BadParameter(
            f"--local runs the sweep on this machine without a cluster, so it takes no {', '.join(given)} "
            "(for the project's local control plane, use --local-cluster instead of --local)."
        )
    if not local and (given := _given(ctx, LOCAL_ONLY)):
        raise typer.BadParameter(
            f"{', '.join(given)}: only with --local (on a cluster, the sweep's parallelism and its pods' GPUs decide)."
        )


def run(values: dict[str, Any], runs_root: Path, device: Device, parallel: int) -> int:
    """Every config of the sweep run here; the exit code (0 all have a result, 1 some failed, 130 Ctrl-C).
    Device refusals happen before the previous results are replaced."""
    require_torch()
    placement = place({c["index"]: c["config"] for c in values["configs"]}, device)
    if placement.warning:
        warning(placement.warning)
    sweep = LocalSweep.of(values, placement)
    store = new_launch(runs_root, values)
    folder = store.path.parent
    logs = folder / "logs"
    shutil.rmtree(logs, ignore_errors=True)  # the previous launch's, which would read as this one's
    log(f"running {len(sweep.configs)} configs of sweep {sweep.name} here, {parallel} at a time; runner logs in {logs}")
    tracker = Tracker(sweep.groups)
    display = Display(len(sweep.configs))
    try:
        with display.live:
            LocalRun(sweep, store, logs, tracker, parallel, display.update).run()
    except KeyboardInterrupt:
        summary(tracker, sweep.name, folder)
        console.print("interrupted: the running configs were stopped; the results recorded so far are kept.")
        return 130
    return summary(tracker, sweep.name, folder)
