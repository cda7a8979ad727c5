"""One cluster session per command: which cluster (the target), the clients to it, the preflight's
answers and what is deployed, assembled here once, for deploy, diff, status, rollback, destroy and
nodes alike (the workload commands use `connect`).

    locate(req)                 the cluster a request means, touching nothing (the no-op path's start)
    connect(req, values)        that cluster, started when it is the local one and is not running;
                                a kubeconfig's context checked (once per command: here)
    open_session(req, values)   connect, clients, and with a plan the preflight (deploy.platform.preflight)
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from deploy.console import log
from deploy.errors import ClusterError
from deploy.kube.helm import Helm
from deploy.kube.reader import ClientReader, ForbiddenError, Reader
from deploy.kube.target import Target, api_unreachable_is_cluster_error, check_context, resolve_kubeconfig
from deploy.platform.charts import kube_version_floor
from deploy.platform.nodepools import node_pools
from deploy.platform.plan import WORKFLOWS, Plan
from deploy.platform.preflight import Preflight, run_preflight
from deploy.platform.request import Request
from deploy.platform.state import Deployed, read_deployed


def locate(req: Request) -> Target | None:
    """The cluster `connect` would use, without starting, connecting or checking anything; None for a
    local control plane that does not exist yet (connect starts it)."""
    if req.on_local_cluster:
        from deploy.cluster.controlplane import LocalCluster

        local = LocalCluster()
        return Target(kubeconfig=local.kubeconfig, context=None, local=True) if local.exists() else None
    return Target(kubeconfig=resolve_kubeconfig(req.kubeconfig, req.inputs.context), context=req.inputs.context)


def connect(req: Request, values: dict[str, Any]) -> Target:
    """The cluster of this command: the local control plane (started, or brought back from its data,
    with fake nodes for the node pools in `values`; never replaced), or a context of a kubeconfig."""
    if req.on_local_cluster:
        from deploy.cluster.controlplane import LocalCluster

        local = LocalCluster()
        if not local.exists():
            log("no local cluster yet: starting one with kwok fake nodes only (`./deploy.sh cluster up` starts one "
                "with a real node too)")  # fmt: skip
        if not local.running():
            local.up(node_pools(values), log=log)
        return Target(kubeconfig=local.kubeconfig, context=None, local=True)
    target = locate(req)
    assert target is not None
    check_context(target)
    return target


def ensure_release_namespace(api_client: Any, namespace: str) -> None:
    """The namespace that holds the Helm release records must exist (the charts own the others). A caller
    who may not read Namespaces (a team member launching in the benchmarks namespace) is not refused
    here: Helm's own answer then says whether it exists."""
    try:
        found = ClientReader(api_client).get(f"/api/v1/namespaces/{quote(namespace, safe='')}")
    except ForbiddenError:
        return
    if found is None:
        raise ClusterError(
            f"the release namespace {namespace!r} (where Helm keeps its release records) does not exist: "
            f"create it (`kubectl create namespace {namespace}`) or pick another with --release-namespace."
        )


@dataclass
class Session:
    target: Target
    api_client: Any  # the kubernetes package's ApiClient: writes, the lock, watches
    reader: Reader  # the same connection behind the read interface that the checks share
    namespace: str  # the release namespace
    preflight: Preflight | None = None
    _deployed: dict[str, Deployed] | None = field(default=None, repr=False)

    def helm(self, timeout: str = "5m") -> Helm:
        return Helm(kubeconfig=self.target.kubeconfig, context=self.target.context, timeout=timeout)

    def deployed(self, refresh: bool = False) -> dict[str, Deployed]:
        """What Helm records in the release namespace (newest revision per release); read once, again
        with refresh (after waiting for the environment's lock, say)."""
        if self._deployed is None or refresh:
            with self.unreachable("while reading the deployed releases"):
                self._deployed = read_deployed(self.reader, self.namespace)
        return self._deployed

    @contextlib.contextmanager
    def unreachable(self, during: str) -> Iterator[None]:
        with api_unreachable_is_cluster_error(self.target, during):
            yield


def preflight(reader: Reader, target: Target, req: Request, values: dict[str, Any], plan: Plan) -> Preflight:
    """The preflight of this request's plan, over either client (the no-op path's or the session's)."""
    return run_preflight(
        reader,
        target.describe(),
        node_pools(values),
        req.missing_pools,
        WORKFLOWS in plan.releases,
        kube_version_floor(req.charts_dir),
    )


def open_session(req: Request, values: dict[str, Any], plan: Plan | None = None) -> Session:
    """Connect; with a plan also run the preflight (version floor, node pools, the Argo CRD). Raise
    ClusterError or PreflightError where the command must stop before it changes anything."""
    target = connect(req, values)
    with api_unreachable_is_cluster_error(target, "during the preflight checks"):
        api_client = target.api_client()
        session = Session(target, api_client, ClientReader(api_client), req.inputs.namespace)
        if plan is not None:
            session.preflight = preflight(session.reader, target, req, values, plan)
    return session
