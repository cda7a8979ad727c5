"""`./deploy.sh run start|follow|status|results|stop`: coordinated and distributed runs pinned to named
nodes, as charts/run releases (or, with `start --here`, as rank processes on this machine)."""

from pathlib import Path
from typing import Annotated

import typer

from deploy.commands import options as o
from deploy.commands import workload as w
from deploy.console import log
from deploy.workloads import launch
from deploy.workloads.release import with_sets
from deploy.workloads.runs.placement import resolve_nodes
from deploy.workloads.runs.spec import chart_values, load
from deploy.workloads.runs.workload import RUNS
from deploy.workloads.store import RESULTS, read_records

app = typer.Typer(help="Multi-rank runs on named nodes: start, follow, report, stop.", no_args_is_help=True)

Here = Annotated[
    bool,
    typer.Option(
        "--here",
        help="Run the ranks on this machine as `python -m runner` processes (loopback rendezvous, the same "
        "start barrier and process group): no cluster, the same results.jsonl (rank logs in runs/run-<name>/ranks/; "
        "an earlier launch's results are kept as results-<n>.jsonl). Not with --context, --kubeconfig or --local.",
    ),
]
Ranks = Annotated[
    int | None, typer.Option("--ranks", min=1, help="With --here: the number of ranks (default: the spec's `ranks`).")
]
HereTimeout = Annotated[
    float, typer.Option("--here-timeout", min=1, help="With --here: stop the ranks after this many seconds.")
]
CLUSTER_ONLY = ("context", "kubeconfig", "local", "release_namespace", "timeout", "do_follow", "restart", "sets")
HERE_ONLY = ("ranks", "here_timeout")


@app.command("start")
def start_cmd(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="The run spec (YAML).", exists=True, dir_okay=False)],
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    here: Here = False,
    ranks: Ranks = None,
    here_timeout: HereTimeout = 600.0,
    values_files: o.ValuesFiles = None,
    registry: o.Registry = None,
    tag: o.Tag = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key.path=value on charts/run's values; repeatable.")
    ] = None,
    release_namespace: w.ReleaseNamespace = None,
    timeout: o.Timeout = "5m",
    do_follow: w.Follow = True,
    restart: w.Restart = False,
) -> None:
    """Check the named nodes, or choose nodeCount nodes of the spec's nodePool or gpuType (each must be
    Ready, untainted against the run and have the free GPUs its ranks need: otherwise refused, nothing
    applied), install the run's release (run-<name>), wait until every rank has started (within the spec's
    startTimeoutSeconds, else the whole run is released and the waiting ranks are named with their
    reasons), then follow the ranks and store each one's record in runs/run-<name>/results.jsonl. With
    --here: the ranks as processes on this machine instead.
    Exit 0 when every rank has a result, 1 when some failed or the run could not start."""
    w.check_here(ctx, here, CLUSTER_ONLY, HERE_ONLY, "the ranks", "the spec's nodes and ranksPerNode decide")
    if here:
        from deploy.commands.workload import show
        from deploy.workloads.runs.onhost import run_here

        runs_root = o.request(env=env).runs_root
        name, stored = run_here(spec_file, ranks, runs_root, here_timeout)
        records = list(read_records(RUNS.folder(runs_root, name) / RESULTS))
        show(RUNS, name, records, "table", None)
        log(f"run {name}: {stored} rank records in {RUNS.folder(runs_root, name) / RESULTS}")
        failed = [r for r in RUNS.report.rows(records) if not str(r["status"]).startswith("ok")]
        raise typer.Exit(1 if failed else 0)
    env_values = w.environment(o.request_from(ctx, values=values_files))
    spec = load(spec_file)
    # Every check that needs no cluster before connecting (a nodeCount's nodes stand in by placeholder names).
    stand_in = {"nodes": [f"node-{i}" for i in range(spec["nodeCount"])]} if "nodeCount" in spec else {}
    values = with_sets(chart_values({**spec, **stand_in}, env_values, str(spec_file)), list(sets or []))
    cluster = w.cluster_of(o.request_from(ctx), env_values, RUNS, release_namespace, timeout)
    if stand_in:
        placed = resolve_nodes(cluster, spec, env_values)
        spec = {**spec, "nodes": list(placed)}
        values = with_sets(chart_values(spec, env_values, str(spec_file), placed), list(sets or []))
    raise typer.Exit(launch.start(cluster, RUNS, values, do_follow=do_follow, restart=restart))


w.add_commands(app, RUNS, delete_names=("stop", "delete"))
