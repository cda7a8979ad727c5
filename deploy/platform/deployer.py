"""The deploy itself, as one plain function the CLI (and the tests, and the benchmark) call:
helm found -> values prepared and validated -> (dry run: charts' dependencies built, render and
stop) -> (a plain apply where nothing changed, as deploy.platform.noop can tell from the digest labels with a
few GET requests: the summary, and stop) -> the session (deploy.platform.session: cluster connected,
preflighted) -> charts' dependencies built -> the environment's lock -> what is deployed read -> levels
applied."""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from deploy import tools
from deploy.console import log
from deploy.errors import InterruptedByUser
from deploy.kube.helm import Helm, run
from deploy.kube.reader import Reader
from deploy.platform import noop
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
from deploy.platform.plan import Plan, Release
from deploy.platform.preflight import ARGO_API, allowed
from deploy.platform.prepare import Prepared, build_dependencies, prepare, validate_values
from deploy.platform.request import Request
from deploy.platform.session import ensure_release_namespace, open_session
from deploy.platform.state import is_current, read_deployed


@dataclass
class Result:
    prepared: Prepared
    outcomes: list[Outcome]
    warnings: list[str]
    seconds: float
    kept_run: Path | None
    fast_path: bool = False  # decided by deploy.platform.noop, without the kubernetes package or helm

    @property
    def ok(self) -> bool:
        return not any(o.action == FAILED for o in self.outcomes)


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
        return Result(prep, outcomes, [], time.monotonic() - t0, prep.run.path)

    if plain:
        fast = noop.unchanged(req, prep)  # nothing changed: no preflight, no kubernetes package, no helm
        if fast is not None:
            return _finish(req, Result(prep, fast.outcomes, fast.warnings, time.monotonic() - t0, None, True))
        validate_values(prep)

    session = open_session(req, prep.merged.values, prep.plan)
    pre = session.preflight
    assert pre is not None
    prep.plan = allowed(prep.plan, pre)
    with session.unreachable("during the preflight checks"):
        ensure_release_namespace(session.api_client, req.inputs.namespace)
    helm = session.helm(req.apply.timeout)
    build_dependencies(prep)
    extra = {"api_versions": (*req.apply.api_versions, *pre.api_versions), "kube_version": pre.kube_version}
    opts = ApplyOptions(**{**req.apply.__dict__, **extra})
    with environment_lock(session.api_client, req.inputs.namespace, req.inputs.env, req.lock_wait, log):
        deployed = session.deployed(refresh=True)  # as it is now that this run holds the lock
        if req.selection.only and not req.selection.with_deps:
            check_needs_deployed(prep.plan, deployed, req.charts_dir)
        states: dict[str, str] = {}
        with progress(prep.plan) as on_state:

            def tracked(rel: Release, state: str) -> None:
                states[rel.name] = state
                on_state(rel, state)

            try:
                outcomes = run(apply_plan(prep, helm, deployed, opts, tracked, session.api_client))
            except KeyboardInterrupt:
                raise InterruptedByUser(interrupted(prep, states, session.reader)) from None
    return _finish(req, Result(prep, outcomes, pre.warnings, time.monotonic() - t0, None))


def interrupted(prep: Prepared, states: dict[str, str], reader: Reader) -> str:
    """What a Ctrl-C left: each release as Helm now records it (one list call), the run folder kept."""
    try:
        now = read_deployed(reader, prep.namespace)
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
            elif is_current(cur, prep.digests[rel.alias]):
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
