"""`./deploy.sh load run|follow|status|results|delete`: distributed LLM load generation, loadgen's roles
as charts/loadgen's Jobs in a namespace of the run's own (or, with `run --here`, as processes here)."""

from pathlib import Path
from typing import Annotated

import typer

from deploy.commands import options as o
from deploy.commands import workload as w
from deploy.console import say
from deploy.errors import PlanError
from deploy.workloads import launch
from deploy.workloads.load import results
from deploy.workloads.load.live import LiveView
from deploy.workloads.load.plan import chart_values, with_quota
from deploy.workloads.load.spec import LoadSpec, check
from deploy.workloads.load.workload import LOAD
from deploy.workloads.release import with_sets
from deploy.workloads.store import RESULTS, read_records

app = typer.Typer(help="LLM load runs: launch, follow, report, delete.", no_args_is_help=True)

Here = Annotated[
    bool,
    typer.Option(
        "--here",
        help="Run the whole topology on this machine (controller, workers and record processors as processes on "
        "loopback, `python -m loadgen run`): no cluster; the same run folder. Not with --context, --kubeconfig, "
        "--local, --namespace.",
    ),
]
CLUSTER_ONLY = ("context", "kubeconfig", "local", "namespace", "node_pool", "deadline", "release_namespace",
                "timeout", "do_follow", "restart", "registry", "tag", "sets")  # fmt: skip
DEFAULT_POOL = "cpu-optimized"


def _opt(flag: str, text: str, **kw: object) -> object:
    return typer.Option(flag, help=text, **kw)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    endpoint: Annotated[str, _opt("--endpoint", "The target: an OpenAI-compatible base URL (http://host:port).")],
    model: Annotated[str, _opt("--model", "The model name sent in each request.")],
    streaming: Annotated[bool, _opt("--streaming", "Ask for streamed responses (TTFT and ITL per token).")] = False,
    concurrency: Annotated[int | None, _opt("--concurrency", "Requests in flight (a cap with --request-rate).")] = None,
    request_rate: Annotated[float | None, _opt("--request-rate", "Requests per second.")] = None,
    duration: Annotated[float | None, _opt("--duration", "Seconds of load (or --requests).")] = None,
    requests: Annotated[int | None, _opt("--requests", "Requests to send (or --duration).")] = None,
    isl: Annotated[int, _opt("--isl", "Synthetic prompt length, tokens.")] = 128,
    osl: Annotated[int, _opt("--osl", "max_tokens asked for.")] = 32,
    dataset: Annotated[
        Path | None,
        _opt(
            "--dataset",
            'JSONL of {"text": ..., "output_length": N?} instead of --isl/--osl.',
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    endpoint_type: Annotated[str, _opt("--endpoint-type", "chat or completions.")] = "chat",
    workers: Annotated[
        int | None, _opt("--workers", "Worker pods. Default: concurrency / --connections-per-worker.")
    ] = None,
    record_processors: Annotated[
        int | None, _opt("--record-processors", "Record processor pods. Default: 1 per 4 workers.")
    ] = None,
    connections_per_worker: Annotated[int, _opt("--connections-per-worker", "Connections per worker (sizing).")] = 500,
    warmup_requests: Annotated[int, _opt("--warmup-requests", "Requests before the measured phase.")] = 0,
    ramp_up: Annotated[float, _opt("--ramp-up", "Seconds over which the concurrency grows.")] = 0.0,
    grace: Annotated[float, _opt("--grace", "Seconds requests may finish after --duration.")] = 30.0,
    name: Annotated[str | None, _opt("--name", "The run's name (default: model, load and time).")] = None,
    namespace: Annotated[
        str | None,
        _opt(
            "--namespace",
            "The run's namespace (default load-<run>): created for the run and deleted after it; one "
            "that exists and is not the run's own is refused.",
        ),
    ] = None,
    node_pool: Annotated[str, _opt("--node-pool", "The run pods' node pool (global.nodePools).")] = DEFAULT_POOL,
    deadline: Annotated[
        int | None,
        _opt(
            "--deadline",
            "Seconds after which the run's Jobs are stopped (default: start-up + duration + grace + "
            "2 min; 1 h with --requests).",
            min=1,
        ),
    ] = None,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    here: Here = False,
    values_files: o.ValuesFiles = None,
    registry: o.Registry = None,
    tag: o.Tag = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key.path=value on charts/loadgen's values; repeatable.")
    ] = None,
    release_namespace: w.ReleaseNamespace = None,
    timeout: o.Timeout = "5m",
    do_follow: w.Follow = True,
    restart: w.Restart = False,
) -> None:
    """Check the options (the endpoint is connected to once from here, unless its name is a cluster Service's),
    size the run from the concurrency, install its release (load-<run>: a namespace of its own, the controller,
    workers and record processors as Indexed Jobs), follow it, bring the controller's summary home into
    runs/load-<run>/ and remove the release and its namespace. With --here: the same topology as processes on
    this machine. Exit 0 when every request is accounted for, 1 when not, 64 for bad input (nothing applied)."""
    w.check_here(ctx, here, CLUSTER_ONLY)
    spec = LoadSpec(endpoint=endpoint, model=model, name=name or "", endpoint_type=endpoint_type, streaming=streaming,
                    concurrency=concurrency, request_rate=request_rate, duration=duration, requests=requests,
                    grace=grace, warmup_requests=warmup_requests, ramp_up=ramp_up, isl=isl, osl=osl, dataset=dataset,
                    workers=workers, record_processors=record_processors,
                    connections_per_worker=connections_per_worker)  # fmt: skip
    spec = check(spec, in_cluster=not here)
    run = spec.run_name()
    runs_root = o.request(env=env).runs_root
    if here:
        from deploy.workloads.load.onhost import run_here

        raise typer.Exit(run_here(spec, run, runs_root))  # the engine prints the table itself
    env_values = w.environment(o.request_from(ctx, values=values_files))
    pools = (env_values.get("global") or {}).get("nodePools") or {}
    if node_pool not in pools:
        raise PlanError(f"--node-pool {node_pool}: not a pool of global.nodePools (known: {', '.join(sorted(pools))}).")
    values = chart_values(spec, env_values, run=run, namespace=namespace, node_pool=node_pool,
                          dataset_text=dataset.read_text() if dataset else "")  # fmt: skip
    if deadline is not None:
        values["activeDeadlineSeconds"] = deadline
    values = with_quota(with_sets(values, list(sets or [])))
    cluster = w.cluster_of(o.request_from(ctx), env_values, LOAD, release_namespace, timeout)
    view = LiveView(cluster.api_client, values["global"]["namespaces"]["load"], run) if do_follow else None
    try:
        code = launch.start(cluster, LOAD, values, do_follow=do_follow, restart=restart)
    finally:
        if view is not None:
            view.stop()
    if do_follow:
        _show(run, runs_root)
    raise typer.Exit(code)


def _show(run: str, runs_root: Path) -> None:
    """The metrics table and the accounting line; where the exports are."""
    folder = LOAD.folder(runs_root, run)
    records = list(read_records(folder / RESULTS))
    if not records:
        return
    w.show(LOAD, run, records, "table", None)
    say(results.accounting(records[-1]))
    say(f"artifacts: {folder / results.ARTIFACTS}")


w.add_commands(app, LOAD)
