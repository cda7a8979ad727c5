"""Checks before anything is applied: the server's version is supported (the floor is the charts'
`kubeVersion`), the node pools named in values have nodes (warn or fail), the Argo CRD exists when
workflows are planned (otherwise the workflows release is skipped with a message).

Written once against deploy.kube.reader.Reader: the no-op path runs them over the standard-library
client, the full path over the kubernetes package's. (That the context exists is the session's
check, made once when it connects.)"""

import re
from dataclasses import dataclass, field

from deploy.errors import ClusterError, DeployError, PreflightError
from deploy.kube.reader import METADATA, METADATA_LIST, Reader
from deploy.platform.charts import KubeFloor
from deploy.platform.nodepools import NodePool
from deploy.platform.plan import WORKFLOWS, Plan, without

TESTED_UP_TO = (1, 37)
ARGO_CRD = "workflowtemplates.argoproj.io"
ARGO_API = "argoproj.io/v1alpha1/WorkflowTemplate"
ARGO_MISSING = f"skipped: the Argo CRD {ARGO_CRD} is not installed in the cluster (install Argo)"


@dataclass
class Preflight:
    server_version: str = ""
    warnings: list[str] = field(default_factory=list)
    argo_crds: bool = False
    api_versions: tuple[str, ...] = ()

    @property
    def kube_version(self) -> str | None:
        """The server's version as `helm template --kube-version` takes it (1.36.3)."""
        return self.server_version.lstrip("v").split("+")[0].split("-")[0] or None


def parse_version(git_version: str, major: object, minor: object) -> tuple[str, tuple[int, int]]:
    """`/version`'s gitVersion, major and minor ("1", "36+" on some clouds) as (text, (major, minor))."""
    return git_version, (int(re.sub(r"\D.*", "", str(major)) or 0), int(re.sub(r"\D.*", "", str(minor)) or 0))


def server_version(reader: Reader, where: str) -> tuple[str, tuple[int, int]]:
    """The server's version; a server that does not answer is a ClusterError naming `where`."""
    try:
        info = reader.get("/version")
    except DeployError:
        raise
    except Exception as err:  # refused, reset, TLS, timeout: whatever the client raises
        reason = getattr(err, "reason", None) or f"{type(err).__name__}: {err}"
        raise ClusterError(
            f"{where} does not answer at {reader.server}: {reason}. Check that the cluster is running and "
            "reachable (VPN, tunnel), and that the context is the one you meant."
        ) from None
    if not isinstance(info, dict):
        raise ClusterError(f"{where} at {reader.server} has no /version: is it a Kubernetes API server?")
    return parse_version(str(info.get("gitVersion", "")), info.get("major"), info.get("minor"))


def check_version(version: str, parsed: tuple[int, int], floor: KubeFloor | None) -> list[str]:
    """PreflightError below the charts' floor; a warning above what the charts are tested on."""
    if floor is not None and parsed < floor.version:
        raise PreflightError(
            f"the server runs Kubernetes {version}; the charts need {floor} or newer (kubeVersion in "
            f"{floor.source}). Upgrade the cluster, or deploy to another one."
        )
    if parsed > TESTED_UP_TO:
        return [f"the server runs Kubernetes {version}, newer than tested ({TESTED_UP_TO[0]}.{TESTED_UP_TO[1]})."]
    return []


def pool_selector(pool: NodePool) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(pool.labels.items()))


def pools_without_nodes(reader: Reader, pools: dict[str, NodePool]) -> dict[str, str]:
    """Pool name -> its label selector, for each pool that no node matches (one small list per pool);
    optional pools are not asked for."""
    missing = {}
    for name, pool in pools.items():
        if pool.optional:
            continue
        nodes = reader.get("/api/v1/nodes", {"labelSelector": pool_selector(pool), "limit": 1}, METADATA_LIST)
        if not isinstance(nodes, dict):
            raise ClusterError(f"{reader.server} does not list nodes (/api/v1/nodes).")
        if not nodes.get("items"):
            missing[name] = pool_selector(pool)
    return missing


def has_crd(reader: Reader, name: str) -> bool:
    return reader.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", accept=METADATA) is not None


def missing_pools_warnings(missing: dict[str, str], missing_pools: str) -> list[str]:
    """The warning about pools without nodes (pool -> selector), or PreflightError with --missing-pools fail."""
    if not missing:
        return []
    text = "node pools without nodes: " + "; ".join(f"{p} (no node has {sel})" for p, sel in missing.items())
    hint = " Label the nodes with `./deploy.sh nodes --apply`, or add nodes to those pools."
    if missing_pools == "fail":
        raise PreflightError(text + "." + hint)
    return [text + " (pods for them will stay Pending)." + hint]


def run_preflight(
    reader: Reader,
    where: str,
    pools: dict[str, NodePool],
    missing_pools: str,
    need_argo: bool,
    floor: KubeFloor | None,
) -> Preflight:
    """Every check, in order; DeployError where the run must stop (`where` names the cluster)."""
    result = Preflight()
    result.server_version, parsed = server_version(reader, where)
    result.warnings += check_version(result.server_version, parsed, floor)
    result.warnings += missing_pools_warnings(pools_without_nodes(reader, pools), missing_pools)
    if need_argo:
        result.argo_crds = has_crd(reader, ARGO_CRD)
        if result.argo_crds:
            result.api_versions = (ARGO_API,)
    return result


def allowed(plan: Plan, pre: Preflight | None) -> Plan:
    """The plan as the preflight allows it: without the workflows release where the Argo CRD is missing."""
    if pre is not None and WORKFLOWS in plan.releases and not pre.argo_crds:
        return without(plan, WORKFLOWS, ARGO_MISSING)
    return plan
