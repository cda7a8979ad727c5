"""`./deploy.sh bench run|status|results|delete`: benchmark sweeps as charts/benchmark releases."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploy import tools
from deploy.commands import bench_local
from deploy.commands import options as o
from deploy.console import console, escape, log, say
from deploy.kube.helm import Helm
from deploy.platform.deployer import Request, connect, ensure_release_namespace
from deploy.platform.prepare import prepare
from deploy.workloads.bench import results as report
from deploy.workloads.bench.device import Device
from deploy.workloads.bench.sweep import plan_sweep
from deploy.workloads.follow import Sweep, follow
from deploy.workloads.progress import Display, summary
from deploy.workloads.release import benchmarks_namespace, install, release_name, uninstall, with_rerun, with_sets
from deploy.workloads.status import sweep_status
from deploy.workloads.store import ResultStore, bench_dir, new_launch, read_records

app = typer.Typer(help="Benchmark sweeps: launch, follow, report, delete.", no_args_is_help=True)

SweepName = Annotated[str, typer.Argument(help="The sweep's name (its file's `name`).")]
Follow = Annotated[bool, typer.Option("--follow/--no-follow", help="Follow the pods until every config is done.")]


def _environment(req: Request, helm: bool = True) -> dict[str, Any]:
    """The environment's merged values: files and schemas only, no cluster (helm is checked for
    early only where the command goes on to use it)."""
    if helm:
        tools.tool("helm")
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir)
    prep.run.remove()
    return prep.merged.values


def _helm(req: Request, target: Any) -> Helm:
    return Helm(kubeconfig=target.kubeconfig, context=target.context, timeout=req.apply.timeout)


def _env_only(req: Request) -> Request:
    """The environment's values without the command's --set (those are the chart's)."""
    req.inputs.sets = []
    return req


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    sweep_file: Annotated[Path, typer.Argument(help="The sweep file (YAML).", exists=True, dir_okay=False)],
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: bench_local.RunLocal = False,
    local_cluster: o.LocalCluster = False,
    values_files: o.ValuesFiles = None,
    registry: o.Registry = None,
    tag: o.Tag = None,
    device: bench_local.DeviceOpt = Device.auto,
    runners: bench_local.Parallel = 1,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key.path=value on charts/benchmark's values; repeatable.")
    ] = None,
    release_namespace: o.ReleaseNamespace = "default",
    timeout: o.Timeout = "5m",
    do_follow: Follow = True,
) -> None:
    """Install the sweep's release (bench-<sweep>) without waiting for its Jobs, then follow its pods,
    Jobs and their events with watches and append each config's result to runs/bench-<sweep>/results.jsonl
    as it arrives; a config whose result was lost with its pod (or node) runs again.
    With --local: run each config here as a runner subprocess instead (no cluster), into the same file.
    Exit 0 when every config has a result, 1 when some failed (130 on Ctrl-C with --local)."""
    bench_local.check_options(ctx, local)
    # The platform's own values files, registry and tag: the runner image comes from the same place.
    req = _env_only(o.request_from(ctx, local=local_cluster, values=values_files))
    env_values = _environment(req, helm=not local)
    values = with_sets(plan_sweep(sweep_file, env_values), list(sets or []))
    if local:
        raise typer.Exit(bench_local.run(values, req.runs_root, device, runners))
    name = values["sweep"]["name"]
    target = connect(req, env_values)
    api_client = target.api_client()
    ensure_release_namespace(api_client, release_namespace)
    namespace = benchmarks_namespace(values, release_namespace)
    store = new_launch(req.runs_root, values)
    helm, chart = _helm(req, target), req.charts_dir / "benchmark"
    install(helm, chart, values, release_namespace, timeout)
    log(f"installed {release_name(name)}: {len(values['configs'])} configs in {len(values['groups'])} Jobs, "
        f"namespace {namespace}")  # fmt: skip
    if not do_follow:
        return
    sweep = Sweep(
        name=name,
        namespace=namespace,
        groups={g["name"]: list(g["indexes"]) for g in values["groups"]},
        configs={c["index"]: c["config"] for c in values["configs"]},
    )

    def rerun(lost: list[int]) -> dict[str, list[int]]:
        """Configs whose results were lost (their pods' logs gone or unreadable): the release gets a Job that
        runs them again."""
        nonlocal values
        values, added = with_rerun(values, lost)
        install(helm, chart, values, release_namespace, timeout)
        (store.path.parent / "values.json").write_text(json.dumps(values, indent=2))
        log(f"{len(lost)} results lost (their pods' logs gone or unreadable): running configs "
            f"{', '.join(map(str, sorted(lost)))} again as {', '.join(added)}")  # fmt: skip
        return added

    display = Display(len(sweep.configs))
    with display.live:
        tracker = follow(api_client, sweep, store, display.update, rerun, values["backoffLimitPerIndex"])
    code = summary(tracker, name, store.path.parent)
    if target.local and any(why.startswith("log unavailable") for why in tracker.reasons.values()):
        console.print(
            "note: the local control plane's nodes are kwok's fake nodes: their pods run no container and leave no "
            "log, so no result (`bench run --local` runs the configs on this machine).",
            highlight=False,
        )
    raise typer.Exit(code)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    sweep: SweepName,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local_cluster: o.LocalCluster = False,
    release_namespace: o.ReleaseNamespace = "default",
    output: o.OutputOpt = o.Output.text,
) -> None:
    """Per group: completions, succeeded, failed, active, why configs are pending, results collected."""
    req = o.request_from(ctx, local=local_cluster)
    env_values = _environment(req)
    target = connect(req, env_values)
    namespace = benchmarks_namespace(env_values, release_namespace)
    recorded = ResultStore(bench_dir(req.runs_root, sweep)).recorded
    rows = sweep_status(target.api_client(), namespace, sweep, recorded)
    if output == o.Output.json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        say(f"sweep {sweep}: no Jobs in {namespace} ({len(recorded)} results collected).")
        return
    table = Table(title=f"sweep {sweep} ({namespace})")
    for col in ("group", "completions", "succeeded", "failed", "active", "results", "pending"):
        table.add_column(col)
    for r in rows:
        pending = escape("\n".join(f"{n}: {why}" for why, n in r.pending.items()))
        table.add_row(r.group, *(str(v) for v in (r.completions, r.succeeded, r.failed, r.active, r.results)), pending)
    console.print(table)
    for r in rows:
        for index, why in sorted(r.failures.items()):
            console.print(f"  config {index} failed: {why}", highlight=False, soft_wrap=True)


@app.command("results")
def results_cmd(
    sweep: SweepName,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write a PNG of p50 latency per config.")] = None,
) -> None:
    """The sweep's results (runs/bench-<sweep>/results.jsonl)."""
    if fmt not in ("table", "json", "csv"):
        raise typer.BadParameter(f"--format {fmt!r}: expected table, json or csv.")
    folder = bench_dir(o.request(env="dev").runs_root, sweep)
    records = list(read_records(folder / "results.jsonl"))
    if not records:
        say(f"sweep {sweep}: no results in {folder / 'results.jsonl'}.")
        raise typer.Exit(1)
    table = report.rows(records)
    if fmt == "json":
        typer.echo(report.as_json(records))
    elif fmt == "csv":
        typer.echo(report.as_csv(table), nl=False)
    else:
        t = Table(title=f"sweep {sweep}: {len(records)} results")
        for col in report.COLUMNS:
            t.add_column(col)
        for row in table:
            t.add_row(*("" if row[c] is None else escape(str(row[c])) for c in report.COLUMNS))
        console.print(t)
    if plot is not None:
        report.plot(table, plot, f"sweep {sweep}: latency p50")
        log(f"wrote {plot}")


@app.command("delete")
def delete_cmd(
    ctx: typer.Context,
    sweep: SweepName,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local_cluster: o.LocalCluster = False,
    release_namespace: o.ReleaseNamespace = "default",
    timeout: o.Timeout = "5m",
) -> None:
    """Uninstall the sweep's release (its Jobs and pods go); results.jsonl is kept."""
    req = o.request_from(ctx, local=local_cluster)
    env_values = _environment(req)
    target = connect(req, env_values)
    if uninstall(_helm(req, target), sweep, release_namespace, timeout):
        log(f"uninstalled {release_name(sweep)}; results kept in {bench_dir(req.runs_root, sweep)}")
    else:
        log(f"no release {release_name(sweep)} in {release_namespace}")
