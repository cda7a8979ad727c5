"""`./deploy.sh`: the operator's entry point. Business logic lives in plain modules; this file
only assembles the command groups, parses root options and maps errors to exit codes."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from deploy.commands import bench, cluster, diff, images, nodes, plan, releases
from deploy.commands import options as o
from deploy.console import console
from deploy.errors import DeployError, ReleaseFailedError

EXIT_CODES = (
    "Exit codes: 0 success; 1 a release or check failed; 2 usage error (for `diff`: changes pending); "
    "3 a required tool is missing; 4 the cluster could not be reached or started; "
    "5 an environment or values file is invalid."
)

app = typer.Typer(
    help=f"Deploy the KAI ML platform to Kubernetes and run benchmark fleets on it.\n\n{EXIT_CODES}",
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(cluster.app, name="cluster")
app.add_typer(bench.app, name="bench")
app.add_typer(images.app, name="images")
app.command("plan")(plan.plan)
app.command("diff")(diff.diff)
app.command("status")(releases.status)
app.command("rollback")(releases.rollback)
app.command("destroy")(releases.destroy)
app.command("nodes")(nodes.nodes)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    registry: o.Registry = None,
    tag: o.Tag = None,
    values: o.ValuesFiles = None,
    sets: o.Sets = None,
    only: o.Only = None,
    with_deps: o.WithDeps = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render and validate every release; touch no cluster.")
    ] = False,
    release_namespace: o.ReleaseNamespace = "default",
    parallel: o.Parallel = 8,
    timeout: o.Timeout = "5m",
    missing_pools: Annotated[
        o.MissingPools, typer.Option("--missing-pools", help="Node pools without nodes: warn or fail.")
    ] = o.MissingPools.warn,
    force: Annotated[bool, typer.Option("--force", help="Upgrade releases even when nothing changed.")] = False,
    keep_run: Annotated[
        bool, typer.Option("--keep-run", help="Keep the run folder (runs/<time>-<env>/) after a success too.")
    ] = False,
    output: o.OutputOpt = o.Output.text,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """With no command: deploy ENV (to the local control plane when no --context is given).

    Values, later wins: charts/platform/values.yaml, values/ENV.yaml[.j2], each -f file, --registry/--tag,
    each --set. Files ending .j2 are jinja2 templates (StrictUndefined) with env, context, registry, tag,
    namespace and local. The final values of each release are written to runs/<time>-ENV/, kept when
    something fails. Releases apply level by level (cluster, policy, components in parallel, workflows);
    a release whose chart and values did not change is skipped."""
    if ctx.invoked_subcommand is not None:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ctx.params
            if name != "debug" and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
        ]
        if given:
            raise typer.BadParameter(
                f"{', '.join(given)} must come after the command: ./deploy.sh {ctx.invoked_subcommand} {given[0]} ..."
            )
        return
    from deploy.deployer import deploy
    from deploy.report import failure_paragraph, print_summary, progress

    req = o.request_from(ctx)
    result = deploy(req, progress=lambda plan: progress(plan, enabled=output != o.Output.json))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    extra = {"dry_run": dry_run, "seconds": round(result.seconds, 2), "run_folder": _str(result.kept_run)}
    print_summary(result.outcomes, result.prepared.plan, output.value, **extra)
    if dry_run and output != o.Output.json:
        console.print(f"dry run: the values and manifests of each release are in {result.kept_run}", highlight=False)
    if not result.ok:
        raise ReleaseFailedError(failure_paragraph(result.outcomes, result.kept_run))


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def main() -> None:
    try:
        app()
    except DeployError as err:
        if "--debug" in sys.argv:
            raise
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(err.exit_code)
