"""`./deploy.sh bench run|follow|status|results|delete`: benchmark sweeps as charts/benchmark releases
(or, with `run --here`, as runner processes on this machine)."""

from pathlib import Path
from typing import Annotated

import typer

from deploy.commands import options as o
from deploy.commands import workload as w
from deploy.workloads.bench.device import Device
from deploy.workloads.bench.workload import BENCH
from deploy.workloads.release import with_sets

app = typer.Typer(help="Benchmark sweeps: launch, follow, report, delete.", no_args_is_help=True)

Here = Annotated[
    bool,
    typer.Option(
        "--here",
        help="Run the configs on this machine as `python -m runner` processes: no cluster, no Helm release, the "
        "same results.jsonl (runner output in runs/bench-<sweep>/logs/; an earlier launch's results are kept as "
        "results-<n>.jsonl). The sweep is still checked against --env. Not with --context, --kubeconfig or --local.",
    ),
]
DeviceOpt = Annotated[
    Device,
    typer.Option(
        "--device",
        help="With --here. auto: GPU configs on CUDA (refused when torch sees none), CPU-pool configs on the CPU; "
        "cpu: every config on the CPU, GPU configs too (their gpuType is kept in the records); cuda: every config "
        "on CUDA.",
    ),
]
Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        help="With --here: configs run at once. Default 1: benchmarks on one machine compete for its cores, "
        "memory bandwidth and GPU, so their figures are only comparable when they run one at a time. Above 1, "
        "each CPU runner gets its share of the cores (OMP_NUM_THREADS, unless set).",
    ),
]
# Options of the cluster path that a run here has no use for, and the reverse.
CLUSTER_ONLY = ("context", "kubeconfig", "local", "release_namespace", "timeout", "do_follow", "restart")
HERE_ONLY = ("device", "runners")  # (`runners` is --parallel: `parallel` would reach the Request as the deploy's)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    sweep_file: Annotated[Path, typer.Argument(help="The sweep file (YAML).", exists=True, dir_okay=False)],
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    here: Here = False,
    values_files: o.ValuesFiles = None,
    registry: o.Registry = None,
    tag: o.Tag = None,
    device: DeviceOpt = Device.auto,
    runners: Parallel = 1,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key.path=value on charts/benchmark's values; repeatable.")
    ] = None,
    release_namespace: w.ReleaseNamespace = None,
    timeout: o.Timeout = "5m",
    do_follow: w.Follow = True,
    restart: w.Restart = False,
) -> None:
    """Install the sweep's release (bench-<sweep>) without waiting for its Jobs, then follow its pods,
    Jobs and their events with watches and append each config's result to runs/bench-<sweep>/results.jsonl
    as it arrives; a config whose result was lost with its pod (or node) runs again. A sweep launched
    before with the same values is picked up, not restarted (see --restart).
    With --here: run each config on this machine as a runner process instead (no cluster), into the same file.
    Exit 0 when every config has a result, 1 when some failed (130 on Ctrl-C with --here)."""
    w.check_here(ctx, here, CLUSTER_ONLY, HERE_ONLY, "the sweep", "the sweep's parallelism and its pods' GPUs decide")
    # The platform's own values files, registry and tag: the runner image comes from the same place.
    env_values = w.environment(o.request_from(ctx, values=values_files))
    values = with_sets(BENCH.plan(sweep_file, env_values), list(sets or []))
    if here:
        from deploy.workloads.bench.onhost import run_here

        raise typer.Exit(run_here(values, o.request(env=env).runs_root, device, runners))
    w.launch_on_cluster(ctx, BENCH, values, env_values, do_follow, restart)


w.add_commands(app, BENCH)
