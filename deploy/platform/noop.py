"""The no-op run, decided with the least work: after the values are prepared (exactly as for any
run), a few GET requests over one connection made of the standard library (deploy.kube.readonly) list
the metadata of the Helm storage Secrets and answer the preflight's questions (the same checks as the
full path, deploy.platform.preflight, through the same read interface); when every planned release is
current (deploy.platform.state.is_current, from the digest labels), nothing is applied and neither the
kubernetes package nor helm is started.

Only for a plain apply (not --dry-run, not --force). Anything else (a change, a failed, pending or
rolled-back release, a release applied by hand or by an older version of this tool, a kubeconfig
this client does not speak, an error, a preflight that would stop the run) returns None, and the
deployer takes its full path, which decides and reports as it always has."""

from dataclasses import dataclass

from deploy.errors import DeployError
from deploy.kube.readonly import KubeAPI, Unsupported
from deploy.platform.apply import UNCHANGED, Outcome, missing_needs
from deploy.platform.plan import WORKFLOWS
from deploy.platform.preflight import allowed
from deploy.platform.prepare import Prepared
from deploy.platform.request import Request
from deploy.platform.session import locate, preflight
from deploy.platform.state import is_current, read_labelled


@dataclass
class Unchanged:
    """A plain apply that changes nothing: every release unchanged, and the preflight's warnings."""

    outcomes: list[Outcome]
    warnings: list[str]


def unchanged(req: Request, prep: Prepared) -> Unchanged | None:
    """Nothing to apply (and `prep.plan` left as the full path leaves it: without a skipped workflows
    release); None when that is not certain."""
    try:
        target = locate(req)
        if target is None:
            return None
        with KubeAPI.from_kubeconfig(target.kubeconfig, target.context) as api:
            # What is deployed first: a run with changes learns it from this one request.
            newest = read_labelled(api, prep.namespace)
            if newest is None:
                return None
            plan = prep.plan
            # (the workflows release counts only where the Argo CRD exists: the preflight says)
            others = [r for r in plan.ordered() if r.alias != WORKFLOWS]
            if not all(is_current(newest.get(r.name), prep.digests[r.alias]) for r in others):
                return None
            pre = preflight(api, target, req, prep.merged.values, plan)
    except (Unsupported, DeployError):
        return None
    plan = allowed(plan, pre)
    if not all(is_current(newest.get(r.name), prep.digests[r.alias]) for r in plan.ordered()):
        return None
    if req.selection.only and not req.selection.with_deps and missing_needs(plan, newest, req.charts_dir):
        return None
    prep.plan = plan
    return Unchanged([Outcome(r, UNCHANGED, newest[r.name].revision) for r in plan.ordered()], pre.warnings)
