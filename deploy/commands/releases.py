"""`./deploy.sh status|rollback|destroy`: the releases of an environment as Helm records them."""

import json
from contextlib import nullcontext
from typing import Annotated, Any

import typer
from rich.table import Table

from deploy import tools
from deploy.commands import options as o
from deploy.console import console, log
from deploy.kube.helm import Helm, run
from deploy.kube.target import Target, check_context
from deploy.platform.deployer import connect
from deploy.platform.lock import environment_lock
from deploy.platform.plan import components, resolve_names
from deploy.platform.prepare import Prepared, prepare
from deploy.platform.state import read_deployed


def _setup(req: o.Request):  # type: ignore[no-untyped-def]
    tools.tool("helm")
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir)
    prep.run.remove()
    target = connect(req, prep.merged.values)
    check_context(target)
    return prep, target


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
    req = o.request_from(ctx)
    prep, target = _setup(req)
    deployed = read_deployed(target.api_client(), release_namespace)
    rows = []
    for rel in prep.plan.ordered():
        cur = deployed.get(rel.name)
        if cur is None:
            rows.append({"release": rel.name, "revision": None, "status": "not installed", "current": False})
            continue
        rows.append(
            {
                "release": rel.name,
                "revision": cur.revision,
                "status": cur.status,
                "chart": cur.chart,
                "updated": cur.updated,
                "current": cur.status == "deployed" and cur.digest == prep.digests[rel.alias],
            }
        )
    if output == o.Output.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{env} releases ({target.describe()})")
    for col in ("release", "revision", "status", "chart", "up to date"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["release"], str(r["revision"] or ""), r["status"], r.get("chart", ""), "yes" if r["current"] else "no"
        )
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
    prep, target = _setup(req)
    alias = resolve_names([component], components(req.charts_dir), env)[0]
    name = prep.plan.releases[alias].name if alias in prep.plan.releases else component
    helm = Helm(kubeconfig=target.kubeconfig, context=target.context, timeout=timeout)
    with environment_lock(target.api_client(), release_namespace, env, req.lock_wait, log):
        run(helm.rollback(name, revision, release_namespace, timeout))
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
    req = o.request_from(ctx)
    prep, target = _setup(req)
    lock = environment_lock(target.api_client(), release_namespace, env, req.lock_wait, log) if yes else nullcontext()
    with lock:
        _destroy(prep, target, release_namespace, timeout, yes)


def _destroy(prep: Prepared, target: Target, release_namespace: str, timeout: str, yes: bool) -> None:
    deployed = read_deployed(target.api_client(), release_namespace)
    helm = Helm(kubeconfig=target.kubeconfig, context=target.context, timeout=timeout)
    own = {r.name for r in prep.plan.ordered()}
    others = sorted(n for n in deployed if n not in own)
    for level in reversed(prep.plan.levels):
        names = [r.name for r in level if r.name in deployed]
        if others and any(r.cluster_scoped for r in level) and names:
            # Other environments on this cluster still use the PriorityClasses and people's roles.
            log(f"kept {', '.join(names)}: other releases still run on this cluster ({', '.join(others)})")
            continue
        if not names:
            continue
        if not yes:
            log(f"would uninstall: {', '.join(names)} (pass --yes)")
            continue

        async def level_down(names: list[str] = names) -> None:
            import asyncio

            await asyncio.gather(*(helm.uninstall(n, release_namespace, timeout) for n in names))

        run(level_down())
        if any(r.cluster_scoped for r in level):
            remove_kept_cluster_roles(target.api_client(), names)
        log(f"uninstalled {', '.join(names)}")


def remove_kept_cluster_roles(api_client: Any, releases: list[str]) -> None:
    """The aggregated ClusterRoles outlive `helm uninstall` on purpose (see platform-cluster's
    clusterroles.yaml); once their parts are gone they can be deleted without coming back."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(api_client)
    for release in releases:
        rbac.delete_collection_cluster_role(label_selector=f"app.kubernetes.io/instance={release}")
