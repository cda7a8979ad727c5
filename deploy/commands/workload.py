"""The commands every workload has (`follow`, `status`, `results`, `delete`), made once from its
descriptor; each workload's own module adds only its `run` (whose options are its own) and calls
`launch_on_cluster`. The commands parse and print; deploy/workloads does the work."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploy import tools
from deploy.commands import options as o
from deploy.console import console, escape, log, say
from deploy.kube.helm import Helm
from deploy.platform.request import Request
from deploy.platform.session import connect, ensure_release_namespace
from deploy.platform.values import environment_values
from deploy.workloads import launch, release
from deploy.workloads.kind import Values, Workload
from deploy.workloads.store import RESULTS, read_records

Follow = Annotated[bool, typer.Option("--follow/--no-follow", help="Follow the pods until every unit is done.")]
Restart = Annotated[
    bool,
    typer.Option(
        "--restart",
        help="When the run was launched before with other values: uninstall that launch and start this one "
        "(its results are kept beside the new ones as results-<n>.jsonl). Without it such a launch is refused.",
    ),
]


ReleaseNamespace = Annotated[
    str | None,
    typer.Option(
        "--release-namespace",
        help="Namespace of the run's Helm release records (ConfigMaps). Default: the namespace its pods run in, "
        "so that whoever may launch there needs no rights elsewhere.",
    ),
]


def given(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """The options among `names` that the command line set (defaults do not count), as flags."""
    flags = {p.name: "/".join([p.opts[0], *p.secondary_opts[:1]]) for p in ctx.command.params if p.name}
    source = ctx.get_parameter_source
    return [flags[n] for n in names if getattr(source(n), "name", "") == "COMMANDLINE"]


def check_here(
    ctx: typer.Context,
    here: bool,
    cluster_only: tuple[str, ...],
    here_only: tuple[str, ...] = (),
    what: str = "",
    decides: str = "",
) -> None:
    """--here takes no cluster option (`cluster_only`), and the options of a run here (`here_only`) mean nothing
    on a cluster, where `decides` says what does."""
    if here and (flags := given(ctx, cluster_only)):
        runs = " ".join(filter(None, ("--here runs", what, "on this machine without a cluster")))
        raise typer.BadParameter(f"{runs}, so it takes no {', '.join(flags)}.")
    if not here and (flags := given(ctx, here_only)):
        raise typer.BadParameter(f"{', '.join(flags)}: only with --here (on a cluster, {decides}).")


def environment(req: Request) -> Values:
    """The environment's merged values (files and the umbrella's schema only: no cluster, no run folder),
    without the command's --set (those are the workload chart's)."""
    req.inputs.sets = []
    return environment_values(req.inputs, req.values_dir, req.charts_dir)


def cluster_of(
    req: Request, env_values: Values, workload: Workload, release_namespace: str | None, timeout: str
) -> launch.Cluster:
    """The cluster of the command, with Helm and the run's release namespace (--release-namespace, else the
    namespace its pods run in: release.release_namespace)."""
    tools.tool("helm")
    release_namespace = release.release_namespace(workload, env_values, release_namespace)
    target = connect(req, env_values)
    api_client = target.api_client()
    ensure_release_namespace(api_client, release_namespace)
    helm = Helm(kubeconfig=target.kubeconfig, context=target.context, timeout=timeout)
    return launch.Cluster(api_client, helm, req.charts_dir, release_namespace, timeout, req.runs_root, target.local)


def launch_on_cluster(
    ctx: typer.Context, workload: Workload, values: Values, env_values: Values, do_follow: bool, restart: bool
) -> None:
    """The end of every workload's `run`: its chart values to a release on the cluster, followed."""
    req = o.request_from(ctx)
    cluster = cluster_of(req, env_values, workload, ctx.params["release_namespace"], ctx.params["timeout"])
    raise typer.Exit(launch.start(cluster, workload, values, do_follow=do_follow, restart=restart))


def connected(
    ctx: typer.Context, workload: Workload, release_namespace: str | None, timeout: str = "5m"
) -> tuple[launch.Cluster, Values]:
    """The cluster of the command's --env/--context/--kubeconfig/--local, and the environment's values."""
    req = o.request_from(ctx)
    env_values = environment(req)
    return cluster_of(req, env_values, workload, release_namespace, timeout), env_values


def add_commands(
    app: typer.Typer, workload: Workload, delete_names: tuple[str, ...] = ("delete",), skip: tuple[str, ...] = ()
) -> None:
    """`follow`, `status`, `results` and `delete` of `workload` on `app`, less those in `skip` (a workload that
    makes its own); `delete_names`: the names the delete command goes by (`run stop`, `train stop`), the first
    one listed in --help, the others hidden."""
    run_arg = Annotated[str, typer.Argument(help=f"The {workload.title}'s name (its file's `name`).", metavar="NAME")]
    folder = f"runs/{workload.name}-<name>"

    @app.command("follow")
    def follow_cmd(
        ctx: typer.Context,
        name: run_arg,
        env: o.Env = "dev",
        context: o.Context = None,
        kubeconfig: o.Kubeconfig = None,
        local: o.Local = False,
        release_namespace: ReleaseNamespace = None,
        timeout: o.Timeout = "5m",
    ) -> None:
        cluster, _ = connected(ctx, workload, release_namespace, timeout)
        raise typer.Exit(launch.follow_again(cluster, workload, name))

    follow_cmd.__doc__ = (
        f"Pick up a {workload.title} launched from here (after --no-follow, a crash or a lost connection): "
        f"the results in {folder}/ count, the rest are collected as they arrive. Exit 0 when every "
        f"{workload.unit} has a result, 1 when some failed."
    )

    def status_cmd(
        ctx: typer.Context,
        name: run_arg,
        env: o.Env = "dev",
        context: o.Context = None,
        kubeconfig: o.Kubeconfig = None,
        local: o.Local = False,
        release_namespace: ReleaseNamespace = None,
        output: o.OutputOpt = o.Output.text,
    ) -> None:
        cluster, env_values = connected(ctx, workload, release_namespace)
        namespace, rows = launch.status(cluster, workload, name, env_values)
        if output == o.Output.json:
            typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
            return
        print_status(workload, name, namespace, rows)

    status_cmd.__doc__ = (
        f"Per group (Job): completions, succeeded, failed, active, results collected, why {workload.unit}s are "
        "pending and why failed ones failed."
    )
    if "status" not in skip:
        app.command("status")(status_cmd)

    @app.command("results")
    def results_cmd(
        name: run_arg,
        fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
        plot: Annotated[Path | None, typer.Option("--plot", help="Also write a PNG of the results.")] = None,
    ) -> None:
        if fmt not in ("table", "json", "csv"):
            raise typer.BadParameter(f"--format {fmt!r}: expected table, json or csv.")
        path = workload.folder(o.request(env="dev").runs_root, name) / RESULTS
        records = list(read_records(path))
        if not records:
            say(f"{workload.title} {name}: no results in {path}.")
            raise typer.Exit(1)
        show(workload, name, records, fmt, plot)

    results_cmd.__doc__ = f"The {workload.title}'s results ({folder}/{RESULTS})."

    def delete_cmd(
        ctx: typer.Context,
        name: run_arg,
        env: o.Env = "dev",
        context: o.Context = None,
        kubeconfig: o.Kubeconfig = None,
        local: o.Local = False,
        release_namespace: ReleaseNamespace = None,
        timeout: o.Timeout = "5m",
    ) -> None:
        cluster, _ = connected(ctx, workload, release_namespace, timeout)
        folder_of = workload.folder(cluster.runs_root, name)
        if launch.delete(cluster, workload, name):
            log(f"uninstalled {workload.release(name)}; results kept in {folder_of}")
        else:
            log(f"no release {workload.release(name)} in namespace {cluster.release_namespace}")

    delete_cmd.__doc__ = f"Uninstall the {workload.title}'s release (its Jobs and pods go); {folder}/ is kept" + (
        ", with the pods' logs in its logs/." if workload.keep_logs else "."
    )
    if "delete" not in skip:
        for n, delete_name in enumerate(delete_names):
            app.command(delete_name, hidden=n > 0)(delete_cmd)


def print_status(workload: Workload, name: str, namespace: str, rows: list[Any]) -> None:
    """The status table: per group (Job) its counts and pending reasons, then why failed units failed."""
    if not rows:
        say(f"{workload.title} {name}: no Jobs in {namespace}.")
        return
    table = Table(title=f"{workload.title} {name} ({namespace})")
    for col in ("group", "completions", "succeeded", "failed", "active", "results", "pending"):
        table.add_column(col)
    for r in rows:
        pending = escape("\n".join(f"{n}: {why}" for why, n in r.pending.items()))
        counts = (r.completions, r.succeeded, r.failed, r.active, r.results)
        table.add_row(r.group, *(str(v) for v in counts), pending)
    console.print(table)
    for r in rows:
        for index, why in sorted(r.failures.items()):
            console.print(f"  {workload.unit} {index} failed: {why}", highlight=False, soft_wrap=True, markup=False)


def show(workload: Workload, name: str, records: list[dict[str, Any]], fmt: str, plot: Path | None) -> None:
    report = workload.report
    table = report.rows(records)
    if fmt == "json":
        typer.echo(report.as_json(records))
    elif fmt == "csv":
        typer.echo(report.as_csv(table), nl=False)
    else:
        t = Table(title=f"{workload.title} {name}: {len(records)} results")
        for col in report.COLUMNS:
            t.add_column(col)
        for row in table:
            t.add_row(*("" if row[c] is None else escape(str(row[c])) for c in report.COLUMNS))
        console.print(t)
    if plot is not None:
        report.plot(table, plot, f"{workload.title} {name}")
        log(f"wrote {plot}")
