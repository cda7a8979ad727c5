"""`./deploy.sh diff`: per-release changes against what is deployed; exit 2 when something would change
(and only then: a usage error is 64)."""

import os
import sys

import typer

from deploy.commands import options as o
from deploy.console import warning as console_warning
from deploy.errors import EX_CHANGES


def diff(
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
    release_namespace: o.ReleaseNamespace = "default",
    output: o.OutputOpt = o.Output.text,
) -> None:
    """Show what a deploy would change, release by release (Secret data never shown). Exit 0: nothing would
    change; exit 2: something would."""
    from deploy.platform.diff import diff_environment, print_diff

    diffs, warnings = diff_environment(o.request_from(ctx))
    for text in warnings:
        console_warning(text)
    code = EX_CHANGES if any(d.changed for d in diffs) else 0
    try:
        print_diff(diffs, output.value)
    except BrokenPipeError:
        # `diff | head`: the reader has what it wanted; the exit code still says whether anything changes.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(code)
