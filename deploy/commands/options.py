"""The options that the deploy, plan, diff, status and rollback commands share, and the Request
they build."""

import inspect
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from deploy.paths import CHARTS, VALUES
from deploy.platform.apply import ApplyOptions
from deploy.platform.prepare import Selection
from deploy.platform.request import Request
from deploy.platform.runfolder import RUNS
from deploy.platform.values import Inputs


class Output(StrEnum):
    text = "text"
    json = "json"


class MissingPools(StrEnum):
    warn = "warn"
    fail = "fail"


Env = Annotated[str, typer.Option("--env", "-e", help="Environment: values/<env>.yaml (or .yaml.j2).")]
Context = Annotated[
    str | None, typer.Option("--context", help="Kubeconfig context. Without it (and --kubeconfig): the local cluster.")
]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file. Default: $KUBECONFIG, then $KAIML_SECRETS_DIR/kubeconfig[-<context>], "
        "then ~/.kube/config.",
    ),
]
Local = Annotated[bool, typer.Option("--local", help="Use the project's local control plane (started if needed).")]
Registry = Annotated[str | None, typer.Option("--registry", help="Image registry: sets global.image.registry.")]
Tag = Annotated[str | None, typer.Option("--tag", help="Image tag: sets global.image.tag.")]
ValuesFiles = Annotated[
    list[Path] | None,
    typer.Option("--values", "-f", help="Extra values file (.j2 is templated), after the environment's; repeatable."),
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="key.path=value (YAML-typed), applied last, in order; repeatable."),
]
Only = Annotated[
    str | None,
    typer.Option(
        "--only",
        help="Comma-separated components (alias, chart or release name). Dependencies are NOT "
        "added unless --with-deps is given.",
    ),
]
WithDeps = Annotated[bool, typer.Option("--with-deps", help="With --only: also apply what the components need.")]
ReleaseNamespace = Annotated[
    str, typer.Option("--release-namespace", help="Namespace that holds the Helm release records.")
]
Parallel = Annotated[int, typer.Option("--parallel", min=1, help="Releases of one level applied at once.")]
Timeout = Annotated[str, typer.Option("--timeout", help="Per-release wait for readiness (Helm duration).")]
LockWait = Annotated[
    float,
    typer.Option(
        "--lock-wait",
        min=0,
        help="Seconds to wait while another run changes the same environment (its Lease names it); 0: refuse at once.",
    ),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="text (table on stderr) or json (on stdout).")]


def request(
    *,
    env: str,
    context: str | None = None,
    kubeconfig: Path | None = None,
    local: bool = False,
    registry: str | None = None,
    tag: str | None = None,
    values: list[Path] | None = None,
    sets: list[str] | None = None,
    only: str | None = None,
    with_deps: bool = False,
    release_namespace: str = "default",
    parallel: int = 8,
    timeout: str = "5m",
    dry_run: bool = False,
    missing_pools: str = "warn",
    keep_run: bool = False,
    force: bool = False,
    lock_wait: float = 300.0,
) -> Request:
    inputs = Inputs(
        env=env,
        files=list(values or []),
        sets=list(sets or []),
        registry=registry,
        tag=tag,
        context=context,
        namespace=release_namespace,
    )
    selection = Selection(only=[s for s in (only or "").split(",") if s.strip()], with_deps=with_deps)
    req = Request(
        inputs=inputs,
        selection=selection,
        kubeconfig=kubeconfig,
        local=local,
        dry_run=dry_run,
        missing_pools=missing_pools,
        keep_run=keep_run,
        lock_wait=lock_wait,
        apply=ApplyOptions(parallel=parallel, timeout=timeout, force=force),
        **folders(),
    )
    inputs.local = req.on_local_cluster  # the templates' `local`
    return req


def request_from(ctx: typer.Context, **overrides: Any) -> Request:
    """The Request of a command, from the options it declares (each command has only those that make
    sense for it; the rest keep `request`'s defaults). `overrides` win (an option under another name)."""
    fields = inspect.signature(request).parameters
    given = {k: v.value if isinstance(v, StrEnum) else v for k, v in ctx.params.items() if k in fields}
    # ctx.params hold what Click parsed: paths as str (Typer converts only the callback's own arguments).
    if given.get("kubeconfig") is not None:
        given["kubeconfig"] = Path(given["kubeconfig"])
    if given.get("values"):
        given["values"] = [Path(v) for v in given["values"]]
    return request(**{**given, **overrides})


def folders() -> dict[str, Path]:
    """The charts, values and runs folders: the repository's, or where KAIML_CHARTS_DIR / KAIML_VALUES_DIR /
    KAIML_RUNS_DIR point a run (tests, forks)."""
    names = {"charts_dir": "KAIML_CHARTS_DIR", "values_dir": "KAIML_VALUES_DIR", "runs_root": "KAIML_RUNS_DIR"}
    default = {"charts_dir": CHARTS, "values_dir": VALUES, "runs_root": RUNS}
    return {field: Path(os.environ[var]) if os.environ.get(var) else default[field] for field, var in names.items()}
