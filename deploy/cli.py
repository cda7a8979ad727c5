"""`./deploy.sh`: the operator's entry point. Business logic lives in plain modules; this file
only assembles the command groups, parses root options and maps errors to exit codes."""

import sys
from typing import Annotated

import typer

from deploy.commands import cluster
from deploy.console import console
from deploy.errors import DeployError

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


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    local: Annotated[bool, typer.Option("--local", help="Deploy to the project's local control plane.")] = False,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment: the name of a file in values/.")] = "dev",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """With no command: deploy ENV (to the local control plane when no --context is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from deploy.install import install_environment  # only this path needs helm

    local_cluster = cluster.local_cluster_up(env)
    install_environment(env, kubeconfig=local_cluster.kubeconfig)


def main() -> None:
    try:
        app()
    except DeployError as err:
        if "--debug" in sys.argv:
            raise
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(err.exit_code)
