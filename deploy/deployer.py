"""The deploy itself, as one plain function the CLI (and the tests, and the benchmark) call:
helm found -> values prepared and validated -> (dry run: charts' dependencies built, render and
stop) -> (a plain apply where nothing changed, as deploy.noop can tell from the digest labels with a
few GET requests: the summary, and stop) -> cluster resolved and preflighted -> charts' dependencies
built -> what is deployed read -> levels applied."""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy import charts, noop, tools
from deploy.apply import (
    FAILED,
    RENDERED,
    ApplyOptions,
    OnState,
    Outcome,
    apply_plan,
    check_needs_deployed,
    render_all,
)
from deploy.console import log
from deploy.errors import ClusterError
from deploy.helm import Helm, run
from deploy.nodepools import node_pools
from deploy.paths import CHARTS, VALUES
from deploy.plan import WORKFLOWS, Plan, components, release_name, without
from deploy.preflight import ARGO_API, ARGO_MISSING, run_preflight
from deploy.prepare import Prepared, Selection, prepare, validate_values
from deploy.render import Inputs
from deploy.runfolder import RUNS
from deploy.state import read_deployed
from deploy.target import Target, check_context, resolve_kubeconfig


@dataclass
class Request:
    inputs: Inputs
    selection: Selection = field(default_factory=Selection)
    kubeconfig: Path | None = None
    local: bool = False
    dry_run: bool = False
    missing_pools: str = "warn"
    keep_run: bool = False
    apply: ApplyOptions = field(default_factory=ApplyOptions)
    runs_root: Path = RUNS
    values_dir: Path = VALUES
    charts_dir: Path = CHARTS


@dataclass
class Result:
    prepared: Prepared
    outcomes: list[Outcome]
    warnings: list[str]
    seconds: float
    kept_run: Path | None

    @property
    def ok(self) -> bool:
        return not any(o.action == FAILED for o in self.outcomes)


def connect(req: Request, values: dict[str, Any]) -> Target:
    """The cluster of this run: the local control plane, or a context of a kubeconfig."""
    if req.local or (req.inputs.context is None and req.kubeconfig is None):
        from deploy.cluster.local import LocalCluster

        local = LocalCluster()
        if not local.running():  # started, or brought back from its data: never replaced
            local.up(node_pools(values), log=log)
        return Target(kubeconfig=local.kubeconfig, context=None, local=True)
    target = Target(kubeconfig=resolve_kubeconfig(req.kubeconfig, req.inputs.context), context=req.inputs.context)
    check_context(target)
    return target


def build_dependencies(prep: Prepared) -> None:
    charts.build_dependencies(tools.tool("helm"), [r.chart_dir for r in prep.plan.ordered()], log=log)


def ensure_release_namespace(api_client: Any, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CoreV1Api(api_client).read_namespace(namespace, _request_timeout=10)
    except ApiException as err:
        if err.status == 404:
            raise ClusterError(
                f"the release namespace {namespace!r} (where Helm keeps its release records) does not exist: "
                f"create it (`kubectl create namespace {namespace}`) or pick another with --release-namespace."
            ) from None
        raise


def _quiet(plan: Plan) -> AbstractContextManager[OnState]:
    return nullcontext(lambda rel, state: None)


def deploy(req: Request, progress: Callable[[Plan], AbstractContextManager[OnState]] = _quiet) -> Result:
    """Raise DeployError on bad input or an unreachable cluster (nothing applied); a failed release
    is reported in the result (ok is False) with the run folder kept."""
    t0 = time.monotonic()
    tools.tool("helm")  # a missing helm is reported before anything else happens
    # A plain apply may turn out a no-op (deploy.noop): its schema check waits until that is ruled
    # out, since a release deployed with the same digest had exactly these values checked against
    # exactly this chart's schema.
    plain = not req.dry_run and not req.apply.force
    prep = prepare(req.inputs, req.selection, req.runs_root, req.values_dir, req.charts_dir, validate=not plain)
    warnings: list[str] = []
    if req.dry_run:
        helm = Helm(timeout=req.apply.timeout)
        build_dependencies(prep)
        opts = ApplyOptions(**{**req.apply.__dict__, "api_versions": (*req.apply.api_versions, ARGO_API)})
        with progress(prep.plan) as on_state:
            run(render_all(prep, helm, prep.plan.ordered(), opts, on_state))
            for r in prep.plan.ordered():
                on_state(r, RENDERED)
        outcomes = [Outcome(r, RENDERED) for r in prep.plan.ordered()]
        prep.run.write_json("summary.json", [o.as_dict() for o in outcomes])
        return Result(prep, outcomes, warnings, time.monotonic() - t0, prep.run.path)

    if plain:
        fast = noop.unchanged(req, prep)  # nothing changed: no preflight, no kubernetes package, no helm
        if fast is not None:
            outcomes, warnings = fast
            return _finish(req, Result(prep, outcomes, warnings, time.monotonic() - t0, None))
        validate_values(prep)

    target = connect(req, prep.merged.values)
    api_client = target.api_client()
    need_argo = WORKFLOWS in prep.plan.releases
    pre = run_preflight(api_client, target, node_pools(prep.merged.values), req.missing_pools, need_argo)
    warnings += pre.warnings
    if need_argo and not pre.argo_crds:
        prep.plan = without(prep.plan, WORKFLOWS, ARGO_MISSING)
    ensure_release_namespace(api_client, req.inputs.namespace)
    helm = Helm(kubeconfig=target.kubeconfig, context=target.context, timeout=req.apply.timeout)
    build_dependencies(prep)
    deployed = read_deployed(api_client, req.inputs.namespace)
    if req.selection.only and not req.selection.with_deps:
        names = {c.alias: release_name(req.inputs.env, c) for c in components(req.charts_dir)}
        check_needs_deployed(prep, deployed, names)
    opts = ApplyOptions(
        **{
            **req.apply.__dict__,
            "api_versions": (*req.apply.api_versions, *pre.api_versions),
            "kube_version": pre.server_version.lstrip("v").split("+")[0].split("-")[0] or None,
        }
    )
    with progress(prep.plan) as on_state:
        outcomes = run(apply_plan(prep, helm, deployed, opts, on_state, api_client))
    return _finish(req, Result(prep, outcomes, warnings, time.monotonic() - t0, None))


def _finish(req: Request, result: Result) -> Result:
    """The summary written to the run folder; the folder removed after a success (unless kept)."""
    result.prepared.run.write_json("summary.json", [o.as_dict() for o in result.outcomes])
    if result.ok and not req.keep_run:
        result.prepared.run.remove()
    else:
        result.kept_run = result.prepared.run.path
    return result
