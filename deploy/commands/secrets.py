"""`./deploy.sh secrets set NSKEY/NAME --from-env-file F`: the credentials that the charts reference by
name and never create, written to the environment's namespace without a value ever being printed."""

import re
from pathlib import Path
from typing import Annotated

import typer

from deploy.commands import options as o
from deploy.commands import workload as w
from deploy.console import log
from deploy.errors import PlanError
from deploy.kube import secrets
from deploy.platform.session import connect

app = typer.Typer(help="Credentials the charts reference (never created from values).", no_args_is_help=True)


@app.command("set")
def set_cmd(
    ctx: typer.Context,
    where: Annotated[
        str,
        typer.Argument(
            help="NSKEY/NAME: a key of the environment's global.namespaces (training, benchmarks, platform) and "
            "the Secret's name, e.g. training/r2-credentials.",
            metavar="NSKEY/NAME",
        ),
    ],
    from_env_file: Annotated[
        Path,
        typer.Option(
            "--from-env-file", help="KEY=VALUE lines, one key of the Secret each.", exists=True, dir_okay=False
        ),
    ],
    env: o.Env = "dev",
    context: o.Context = None,
    kubeconfig: o.Kubeconfig = None,
    local: o.Local = False,
) -> None:
    """Create the Secret, or replace its keys when it exists. The values are read from the file and sent to
    the API server only: never printed, logged or written elsewhere (only the keys are named)."""
    key, _, name = where.partition("/")
    if not key or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
        raise typer.BadParameter(f"{where!r}: expected NSKEY/NAME, e.g. training/r2-credentials.")
    data = secrets.read_env_file(from_env_file)
    req = o.request_from(ctx)
    env_values = w.environment(req)
    namespaces = (env_values.get("global") or {}).get("namespaces") or {}
    if key not in namespaces:
        raise PlanError(f"{where}: {key!r} is not a key of global.namespaces in environment {env} (known: "
                        f"{', '.join(sorted(namespaces))}).")  # fmt: skip
    namespace = namespaces[key]
    target = connect(req, env_values)
    labels = {"app.kubernetes.io/managed-by": "kaiml-deploy", "kai-ml.io/credentials": "true"}
    done = secrets.apply(target.api_client(), namespace, name, data, labels)
    log(f"Secret {namespace}/{name} {done} with the keys {', '.join(sorted(data))} (values not shown)")
