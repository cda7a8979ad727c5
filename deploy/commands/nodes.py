"""`./deploy.sh nodes`: check (and with --apply, label and taint) a cluster's nodes against the
node pools in the environment's values (the work is deploy.platform.nodecheck's)."""

import json
from typing import Annotated

import typer

from deploy.commands import options as o
from deploy.console import console, escape, log, say
from deploy.errors import NodesError
from deploy.platform.nodecheck import check_cluster
from deploy.platform.nodepools import node_pools
from deploy.platform.session import open_session
from deploy.platform.values import environment_values


def _assignments(raw: list[str] | None) -> dict[str, str]:
    out = {}
    for item in raw or []:
        pool, sep, names = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--assign {item!r}: expected pool=node1,node2")
        out.update({n.strip(): pool.strip() for n in names.split(",") if n.strip()})
    return out


def nodes(
    ctx: typer.Context,
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
    assign: Annotated[
        list[str] | None, typer.Option("--assign", help="pool=node1,node2: put these nodes in that pool.")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Add the missing labels and taints.")] = False,
    output: o.OutputOpt = o.Output.text,
) -> None:
    """Check every node pool has nodes and that each node has its pool's labels and taints."""
    req = o.request_from(ctx)
    assigned = _assignments(assign)
    values = environment_values(req.inputs, req.values_dir, req.charts_dir)
    report, applied = check_cluster(open_session(req, values), node_pools(values), assigned, apply)
    for fix in applied:
        log(f"{fix.node} ({fix.pool}): added labels {fix.labels or '-'} taints {fix.taints or '-'}")
    if output == o.Output.json:
        typer.echo(
            json.dumps(
                {"pools": report.pools, "unassigned": report.unassigned, "fixes": [f.__dict__ for f in report.fixes]},
                indent=2,
            )
        )
    else:
        for pool, members in report.pools.items():
            say(f"{pool:<20} {len(members)} nodes {', '.join(members)}")
        for fix in report.fixes:
            console.print(
                f"[yellow]{escape(fix.node)}[/] (pool {escape(fix.pool)}) "
                f"lacks labels {escape(str(fix.labels or '-'))} taints {escape(str(fix.taints or '-'))}",
                highlight=False,
            )
        if report.unassigned:
            console.print(f"[dim]not in any pool: {escape(', '.join(report.unassigned))}[/]", highlight=False)
    if not report.ok:
        empty = report.empty
        raise NodesError(
            f"nodes do not match the node pools: {len(report.fixes)} node(s) lack labels or taints"
            f"{' (run with --apply to add them)' if report.fixes and not apply else ''}; pools without nodes: "
            f"{', '.join(empty) or 'none'}."
        )
