"""`./deploy.sh`: the operator's entry point. Business logic lives in plain modules; this file
only assembles the command groups, parses root options and maps errors to exit codes."""

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from click.exceptions import UsageError
from typer.core import TyperGroup

from deploy.commands import options as o
from deploy.console import error as console_error
from deploy.console import say
from deploy.console import warning as console_warning
from deploy.errors import EX_USAGE, EXIT_CODES, ClusterError, DeployError, ReleaseFailedError

EXIT_TABLE = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."

# command -> (module, attribute: a Typer group or a command function)
COMMANDS = {
    "plan": ("deploy.commands.plan", "plan"),
    "diff": ("deploy.commands.diff", "diff"),
    "status": ("deploy.commands.releases", "status"),
    "rollback": ("deploy.commands.releases", "rollback"),
    "destroy": ("deploy.commands.releases", "destroy"),
    "nodes": ("deploy.commands.nodes", "nodes"),
    "cluster": ("deploy.commands.cluster", "app"),
    "bench": ("deploy.commands.bench", "app"),
    "load": ("deploy.commands.load", "app"),
    "run": ("deploy.commands.run", "app"),
    "images": ("deploy.commands.images", "app"),
    "train": ("deploy.commands.train", "app"),
    "secrets": ("deploy.commands.secrets", "app"),
}


@contextlib.contextmanager
def _usage_exit_code() -> Iterator[None]:
    try:
        yield
    except UsageError as err:
        err.exit_code = EX_USAGE
        raise


class Commands(TyperGroup):
    """Each command's module is imported when that command runs (or --help lists it): the plain
    deploy, whose no-op re-run takes a fraction of a second, does not load the bench machinery."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name]
            found = getattr(importlib.import_module(module), attr)
            if isinstance(found, typer.Typer):
                command = typer.main.get_group(found)
            else:
                single = typer.Typer(add_completion=False)
                single.command(cmd_name)(found)
                command = typer.main.get_command(single)
            command.name = cmd_name
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)

    # Click exits 2 on a usage error, which `diff` uses for "changes pending": usage gets 64 (EX_USAGE).
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_exit_code():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_exit_code():
            return super().invoke(ctx)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in COMMANDS:  # a typo: every command loaded, for "Did you mean"
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=Commands,
    help=f"Deploy the KAI ML platform to Kubernetes and run benchmark fleets on it.\n\n{EXIT_TABLE}",
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
    lock_wait: o.LockWait = 300.0,
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
    from deploy.platform.deployer import deploy
    from deploy.platform.display import failure_paragraph, print_summary, progress

    req = o.request_from(ctx)
    result = deploy(req, progress=lambda plan: progress(plan, enabled=output != o.Output.json))
    for warning in result.warnings:
        console_warning(warning)
    extra = {"dry_run": dry_run, "seconds": round(result.seconds, 2), "run_folder": _str(result.kept_run)}
    print_summary(result.outcomes, result.prepared.plan, output.value, **extra)
    if dry_run and output != o.Output.json:
        say(f"dry run: the values and manifests of each release are in {result.kept_run}")
    if not result.ok:
        raise ReleaseFailedError(failure_paragraph(result.outcomes, result.kept_run))


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def main() -> None:
    try:
        # ./deploy.sh passes the command as the user typed it (else click says `python -m deploy`).
        app(prog_name=os.environ.get("KAIML_PROG") or None)
    except DeployError as err:
        if "--debug" in sys.argv:
            raise
        _fail(err)
    except Exception as err:
        # The API server went away where no command expected it: one paragraph and exit 4, not a
        # urllib3 traceback (the commands' own checks give a more precise message where they can).
        if "--debug" in sys.argv or not type(err).__module__.startswith("urllib3"):
            raise
        _fail(ClusterError(f"lost the connection to the API server: {err}"))


def _fail(err: DeployError) -> NoReturn:
    console_error(str(err))  # one paragraph, printed as it is: paths and commands stay copyable
    sys.exit(err.exit_code)
