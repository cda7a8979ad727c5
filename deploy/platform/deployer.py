"""The deploy itself, as one plain function the CLI (and the tests, and the benchmark) call:
helm found -> values prepared and validated -> (dry run: charts' dependencies built, render and
stop) -> (a plain apply where nothing changed, as deploy.platform.noop can tell from the digest labels with a
few GET requests: the summary, and stop) -> cluster resolved and preflighted -> charts' dependencies
built -> what is deployed read -> levels applied."""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy import tools
from deploy.console import log
from deploy.errors import ClusterError, InterruptedByUser
from deploy.kube.helm import Helm, run
from deploy.kube.target import Target, api_unreachable_is_cluster_error, check_context, resolve_kubeconfig
from deploy.paths import CHARTS, VALUES
from deploy.platform import charts, noop
from deploy.platform.apply import (
    FAILED,
    INSTALLED,
    NOT_STARTED,
    RENDERED,
    UNCHANGED,
    UPGRADED,
    ApplyOptions,
    OnState,
    Outcome,
    apply_plan,
    check_needs_deployed,
    render_all,
)
from deploy.platform.lock import environment_lock
from deploy.platform.nodepools import node_pools
from deploy.platform.plan import WORKFLOWS, Plan, Release, components, release_name, without
from deploy.platform.preflight import ARGO_API, ARGO_MISSING, run_preflight
from deploy.platform.prepare import Prepared, Selection, prepare, validate_values
from deploy.platform.render import Inputs
from deploy.platform.runfolder import RUNS
from deploy.platform.state import read_deployed


@dataclass
class Request:
    inputs: Inputs
    selection: Selection = field(default_factory=Selection)
    kubeconfig: Path | None = None
    local: bool = False
    dry_run: bool = False
    missing_pools: str = "warn"
    keep_run: bool = False
    lock_wait: float = 300.0  # seconds to wait for another run's lock on the environment
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
        from deploy.cluster.controlplane import LocalCluster

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
    # A plain apply may turn out a no-op (deploy.platform.noop): its schema check waits until that is ruled
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
    with api_unreachable_is_cluster_error(target, "during the preflight checks"):
        api_client = target.api_client()
        need_argo = WORKFLOWS in prep.plan.releases
        pre = run_preflight(api_client, target, node_pools(prep.merged.values), req.missing_pools, need_argo)
        warnings += pre.warnings
        if need_argo and not pre.argo_crds:
            prep.plan = without(prep.plan, WORKFLOWS, ARGO_MISSING)
        ensure_release_namespace(api_client, req.inputs.namespace)
    helm = Helm(kubeconfig=target.kubeconfig, context=target.context, timeout=req.apply.timeout)
    build_dependencies(prep)
    opts = ApplyOptions(
        **{
            **req.apply.__dict__,
            "api_versions": (*req.apply.api_versions, *pre.api_versions),
            "kube_version": pre.server_version.lstrip("v").split("+")[0].split("-")[0] or None,
        }
    )
    with environment_lock(api_client, req.inputs.namespace, req.inputs.env, req.lock_wait, log):
        with api_unreachable_is_cluster_error(target, "while reading the deployed releases"):
            deployed = read_deployed(api_client, req.inputs.namespace)
        if req.selection.only and not req.selection.with_deps:
            names = {c.alias: release_name(req.inputs.env, c) for c in components(req.charts_dir)}
            check_needs_deployed(prep, deployed, names)
        states: dict[str, str] = {}
        with progress(prep.plan) as on_state:

            def tracked(rel: Release, state: str) -> None:
                states[rel.name] = state
                on_state(rel, state)

            try:
                outcomes = run(apply_plan(prep, helm, deployed, opts, tracked, api_client))
            except KeyboardInterrupt:
                raise InterruptedByUser(interrupted(prep, states, api_client)) from None
    return _finish(req, Result(prep, outcomes, warnings, time.monotonic() - t0, None))


def interrupted(prep: Prepared, states: dict[str, str], api_client: Any) -> str:
    """What a Ctrl-C left: each release as Helm now records it (one list call), the run folder kept."""
    try:
        now = read_deployed(api_client, prep.namespace)
    except Exception:  # the API server may be what the user gave up waiting for
        now = None
    applied, caught, not_started = [], [], []
    for rel in prep.plan.ordered():
        state = states.get(rel.name, "waiting")
        if state in (INSTALLED, UPGRADED, UNCHANGED):
            applied.append(f"{rel.name} ({state})")
        elif state in ("waiting", NOT_STARTED, RENDERED, "rendering"):
            not_started.append(rel.name)
        else:
            cur = None if now is None else now.get(rel.name)
            if now is None:
                where = "its state could not be read: run `./deploy.sh status`"
            elif cur is None:
                where = "not installed"
            elif cur.status == "deployed" and cur.digest == prep.digests[rel.alias]:
                where = f"applied, revision {cur.revision}"
            elif cur.status == "deployed":
                where = f"rolled back or unchanged: revision {cur.revision} with its previous values"
            else:
                where = f"left {cur.status} at revision {cur.revision}; the next run recovers it"
            caught.append(f"{rel.name} ({where})")
    prep.run.write_json("summary.json", {"interrupted": True, "states": states})
    return (
        "interrupted (Ctrl-C). "
        f"Applied: {', '.join(applied) or 'nothing'}. "
        f"Interrupted while applying: {', '.join(caught) or 'nothing'}. "
        f"Not started: {', '.join(not_started) or 'nothing'}. "
        f"Values and manifests are kept in {prep.run.path}; a re-run applies what is missing."
    )


def _finish(req: Request, result: Result) -> Result:
    """The summary written to the run folder; the folder removed after a success (unless kept)."""
    result.prepared.run.write_json("summary.json", [o.as_dict() for o in result.outcomes])
    if result.ok and not req.keep_run:
        result.prepared.run.remove()
    else:
        result.kept_run = result.prepared.run.path
    return result
