"""`./deploy.sh status|rollback|destroy`: the releases of an environment as Helm records them (the
work is deploy.platform.releases'; this module parses and prints)."""

import json
from typing import Annotated

import typer
from rich.table import Table

from deploy import tools
from deploy.commands import options as o
from deploy.console import console, log
from deploy.platform import releases
from deploy.platform.prepare import Prepared, prepare
from deploy.platform.request import Request
from deploy.platform.session import Session, open_session


def _session(req: Request) -> tuple[Prepared, Session]:
    tools.tool("helm")
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir)
    prep.run.remove()
    return prep, open_session(req, prep.merged.values)


def status(
    ctx: typer.Context,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    registry: o.Registry = None,
    tag: o.Tag = None,
    values: o.ValuesFiles = None,
    sets: o.Sets = None,
    release_namespace: o.ReleaseNamespace = "default",
    output: o.OutputOpt = o.Output.text,
) -> None:
    """Each planned release: revision, Helm status, and whether it matches the values and charts given
    (pass the same --registry/--tag/-f/--set as the deploy)."""
    prep, session = _session(o.request_from(ctx))
    rows = releases.release_status(prep, session)
    if output == o.Output.json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    table = Table(title=f"{env} releases ({session.target.describe()})")
    for col in ("release", "revision", "status", "chart", "up to date"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.release, str(r.revision or ""), r.status, r.chart, "yes" if r.current else "no")
    console.print(table)


def rollback(
    ctx: typer.Context,
    component: Annotated[str, typer.Argument(help="Component, chart or release name.")],
    revision: Annotated[int | None, typer.Argument(help="Revision to go back to (default: the previous one).")] = None,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    release_namespace: o.ReleaseNamespace = "default",
    timeout: o.Timeout = "5m",
    lock_wait: o.LockWait = 300.0,
) -> None:
    """Roll one release back (and wait for it). The next deploy re-applies the current values."""
    req = o.request_from(ctx)
    prep, session = _session(req)
    name = releases.rollback(
        prep, session, component, revision, charts_dir=req.charts_dir, timeout=timeout, lock_wait=lock_wait, log=log
    )
    log(f"{name} rolled back to {'revision ' + str(revision) if revision else 'its previous revision'}")


def destroy(
    ctx: typer.Context,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    only: o.Only = None,
    release_namespace: o.ReleaseNamespace = "default",
    timeout: o.Timeout = "5m",
    lock_wait: o.LockWait = 300.0,
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without it: say what would be uninstalled).")] = False,
) -> None:
    """Uninstall the environment's releases in reverse order (workflows first, cluster-scoped last)."""
    prep, session = _session(o.request_from(ctx))
    releases.destroy(prep, session, timeout, yes, lock_wait, log)
