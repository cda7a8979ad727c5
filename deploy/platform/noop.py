"""The no-op run, decided with the least work: after the values are prepared (exactly as for any
run), a few GET requests over one connection made of the standard library (deploy.kube.readonly) answer
the preflight's questions and list the metadata of the Helm storage Secrets; when every planned
release's newest revision is `deployed` with the digest labels of this run (deploy.platform.state), nothing
is applied and neither the kubernetes package nor helm is started.

Only for a plain apply (not --dry-run, not --force). Anything else (a change, a failed, pending or
rolled-back release, a release applied by hand or by an older version of this tool, a kubeconfig
this client does not speak, an error, a preflight that would stop the run) returns None, and the
deployer takes its full path, which decides and reports as it always has."""

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from deploy.errors import DeployError
from deploy.kube.readonly import METADATA, METADATA_LIST, KubeAPI, Unsupported
from deploy.kube.target import resolve_kubeconfig
from deploy.platform.apply import UNCHANGED, Outcome
from deploy.platform.nodepools import node_pools
from deploy.platform.plan import WORKFLOWS, Plan, Release, components, release_name, without
from deploy.platform.preflight import (
    ARGO_CRD,
    ARGO_MISSING,
    check_version,
    missing_pools_warnings,
    parse_version,
    pool_selector,
)
from deploy.platform.prepare import Prepared
from deploy.platform.state import Labelled, from_secret_labels

if TYPE_CHECKING:
    from deploy.platform.deployer import Request

HELM_SECRETS = {"labelSelector": "owner=helm,status!=superseded", "fieldSelector": "type=helm.sh/release.v1"}

# How many runs took this path in this process (for tests).
taken = 0


def _preflight(api: KubeAPI, prep: Prepared, missing_pools: str) -> tuple[list[str], Plan]:
    """The preflight's checks: its warnings, and the plan without the workflows release when the
    Argo CRD is missing; where it would stop the run, Unsupported or DeployError (the full path then
    says so in its own words)."""
    version = api.get("/version")
    if not isinstance(version, dict):
        raise Unsupported("/version")
    warnings = check_version(
        *parse_version(str(version.get("gitVersion", "")), version.get("major"), version.get("minor"))
    )
    missing = {}
    for name, pool in node_pools(prep.merged.values).items():
        nodes = api.get("/api/v1/nodes", {"labelSelector": pool_selector(pool), "limit": 1}, METADATA_LIST)
        if nodes is None:
            raise Unsupported("/api/v1/nodes")
        if not nodes.get("items"):
            missing[name] = pool_selector(pool)
    warnings += missing_pools_warnings(missing, missing_pools)
    plan = prep.plan
    if WORKFLOWS in plan.releases:
        crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{ARGO_CRD}", accept=METADATA)
        if crd is None:
            plan = without(plan, WORKFLOWS, ARGO_MISSING)
    return warnings, plan


def _needs_deployed(req: "Request", plan: Plan, newest: dict[str, Labelled]) -> bool:
    """--only without --with-deps: what the selection needs (outside it) is deployed."""
    names = {c.alias: release_name(req.inputs.env, c) for c in components(req.charts_dir)}
    for rel in plan.ordered():
        for need in rel.needs:
            if need not in plan.releases:
                current = newest.get(names[need])
                if current is None or current.status != "deployed":
                    return False
    return True


def _unchanged(rel: Release, prep: Prepared, newest: dict[str, Labelled]) -> bool:
    current = newest.get(rel.name)
    return current is not None and current.unchanged(prep.digests[rel.alias])


def _kubeconfig(req: "Request") -> tuple[Path | None, str | None]:
    """The cluster the full path would connect to (deployer.connect), without connecting."""
    if req.local or (req.inputs.context is None and req.kubeconfig is None):
        from deploy.cluster.controlplane import LocalCluster

        local = LocalCluster()
        return (local.kubeconfig if local.exists() else None), None  # a missing one is started by the full path
    return resolve_kubeconfig(req.kubeconfig, req.inputs.context), req.inputs.context


def unchanged(req: "Request", prep: Prepared) -> tuple[list[Outcome], list[str]] | None:
    """The outcomes (all unchanged) and the preflight's warnings of a plain apply that changes
    nothing; None when that is not certain."""
    global taken
    try:
        kubeconfig, context = _kubeconfig(req)
        if kubeconfig is None:
            return None
        with KubeAPI.from_kubeconfig(kubeconfig, context) as api:
            # What is deployed first: a run with changes learns it from this one request.
            secrets = api.get(
                f"/api/v1/namespaces/{quote(prep.namespace, safe='')}/secrets", HELM_SECRETS, METADATA_LIST
            )
            if not isinstance(secrets, dict):
                return None
            newest = from_secret_labels(secrets.get("items") or [])
            # (the workflows release counts only where the Argo CRD exists: the preflight says)
            if not all(_unchanged(rel, prep, newest) for rel in prep.plan.ordered() if rel.alias != WORKFLOWS):
                return None
            warnings, plan = _preflight(api, prep, req.missing_pools)
    except (Unsupported, DeployError):
        return None
    if not all(_unchanged(rel, prep, newest) for rel in plan.ordered()):
        return None
    outcomes = [Outcome(rel, UNCHANGED, newest[rel.name].revision) for rel in plan.ordered()]
    if req.selection.only and not req.selection.with_deps and not _needs_deployed(req, plan, newest):
        return None
    prep.plan = plan  # as the full path leaves it: without a skipped workflows release
    taken += 1
    return outcomes, warnings
