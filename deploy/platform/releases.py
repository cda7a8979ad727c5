"""An environment's releases as a whole, for `status`, `rollback` and `destroy`: each planned release
against what Helm records, one release rolled back, all of them uninstalled in reverse order."""

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.kube.helm import run
from deploy.platform.lock import environment_lock
from deploy.platform.plan import components, resolve_names
from deploy.platform.prepare import Prepared
from deploy.platform.session import Session
from deploy.platform.state import is_current

Log = Callable[[str], None]


@dataclass
class ReleaseStatus:
    release: str
    revision: int | None
    status: str
    chart: str = ""
    updated: str = ""
    current: bool = False  # deployed from exactly this run's charts and values

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def release_status(prep: Prepared, session: Session) -> list[ReleaseStatus]:
    """Each planned release: its newest revision, Helm's status, and whether it is current."""
    deployed = session.deployed()
    rows = []
    for rel in prep.plan.ordered():
        cur = deployed.get(rel.name)
        if cur is None:
            rows.append(ReleaseStatus(rel.name, None, "not installed"))
            continue
        current = is_current(cur, prep.digests[rel.alias])
        rows.append(ReleaseStatus(rel.name, cur.revision, cur.status, cur.chart, cur.updated, current))
    return rows


def rollback(
    prep: Prepared,
    session: Session,
    component: str,
    revision: int | None,
    *,
    charts_dir: Path,
    timeout: str,
    lock_wait: float,
    log: Log,
) -> str:
    """One release (a component, chart or release name) back to `revision` (default: the previous one),
    waiting for it, under the environment's lock; its release name."""
    alias = resolve_names([component], components(charts_dir), prep.plan.env)[0]
    name = prep.plan.releases[alias].name if alias in prep.plan.releases else component
    with environment_lock(session.api_client, session.namespace, prep.plan.env, lock_wait, log):
        run(session.helm(timeout).rollback(name, revision, session.namespace, timeout))
    return name


def destroy(prep: Prepared, session: Session, timeout: str, yes: bool, lock_wait: float, log: Log) -> None:
    """Uninstall the planned releases level by level in reverse (workflows first, cluster-scoped last),
    the releases of one level at once. The cluster-scoped release stays while releases of other
    environments remain on the cluster (they use its PriorityClasses and people's roles). Without
    `yes`, only say what would be uninstalled (and take no lock)."""
    lock = environment_lock(session.api_client, session.namespace, prep.plan.env, lock_wait, log) if yes else None
    with lock or contextlib.nullcontext():
        _destroy(prep, session, timeout, yes, log)


def _destroy(prep: Prepared, session: Session, timeout: str, yes: bool, log: Log) -> None:
    deployed = session.deployed(refresh=True)
    helm = session.helm(timeout)
    own = {r.name for r in prep.plan.ordered()}
    others = sorted(n for n in deployed if n not in own)
    for level in reversed(prep.plan.levels):
        names = [r.name for r in level if r.name in deployed]
        if not names:
            continue
        cluster_scoped = any(r.cluster_scoped for r in level)
        if others and cluster_scoped:
            log(f"kept {', '.join(names)}: other releases still run on this cluster ({', '.join(others)})")
            continue
        if not yes:
            log(f"would uninstall: {', '.join(names)} (pass --yes)")
            continue

        async def level_down(names: list[str] = names) -> None:
            await asyncio.gather(*(helm.uninstall(n, session.namespace, timeout) for n in names))

        run(level_down())
        if cluster_scoped:
            remove_kept_cluster_roles(session.api_client, names)
        log(f"uninstalled {', '.join(names)}")


def remove_kept_cluster_roles(api_client: Any, releases: list[str]) -> None:
    """The aggregated ClusterRoles outlive `helm uninstall` on purpose (see platform-cluster's
    clusterroles.yaml); once their parts are gone they can be deleted without coming back."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(api_client)
    for release in releases:
        rbac.delete_collection_cluster_role(label_selector=f"app.kubernetes.io/instance={release}")
