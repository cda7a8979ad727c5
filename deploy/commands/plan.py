"""`./deploy.sh plan`: print the release graph of an environment, level by level (nothing is applied)."""

import json

import typer

from deploy.commands import options as o
from deploy.console import console
from deploy.platform.plan import Plan
from deploy.platform.prepare import prepare


def render_plan(plan: Plan) -> str:
    lines = [f"environment {plan.env}: {sum(len(lvl) for lvl in plan.levels)} releases in {len(plan.levels)} levels"]
    for i, level in enumerate(plan.levels):
        parallel = " (in parallel)" if len(level) > 1 else ""
        lines.append(f"level {i}{parallel}:")
        for rel in level:
            needs = f"  needs {', '.join(rel.needs)}" if rel.needs else ""
            lines.append(f"  {rel.name:<34} chart {rel.chart:<24}{needs}")
    for alias, why in plan.excluded.items():
        lines.append(f"not planned: {alias}: {why}")
    return "\n".join(lines)


def plan(
    ctx: typer.Context,
    env: o.Env = "dev",
    only: o.Only = None,
    with_deps: o.WithDeps = False,
    values: o.ValuesFiles = None,
    sets: o.Sets = None,
    registry: o.Registry = None,
    tag: o.Tag = None,
    output: o.OutputOpt = o.Output.text,
) -> None:
    """Print the release graph (what `./deploy.sh` would apply, in which order). Destroy goes in reverse."""
    req = o.request_from(ctx)
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir)
    prep.run.remove()
    if output == o.Output.json:
        typer.echo(json.dumps(prep.plan.as_dict(), indent=2))
    else:
        console.print(render_plan(prep.plan), highlight=False, markup=False)
