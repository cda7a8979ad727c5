"""Checks before anything is applied: the context exists and answers, the server's version is
supported, the node pools named in values have nodes (warn or fail), the Argo CRDs exist when
workflows are enabled (otherwise the workflows release is skipped with a message)."""

import re
from dataclasses import dataclass, field
from typing import Any

from deploy.errors import ClusterError, PreflightError
from deploy.kube.target import Target, check_context
from deploy.platform.nodepools import NodePool

MIN_SERVER = (1, 29)
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


def server_version(api_client: Any, target: Target) -> tuple[str, tuple[int, int]]:
    from kubernetes import client

    try:
        info = client.VersionApi(api_client).get_code(_request_timeout=(5, 10))
    except Exception as err:
        reason = getattr(err, "reason", None) or type(err).__name__
        host = getattr(api_client.configuration, "host", "?")
        raise ClusterError(
            f"{target.describe()} does not answer at {host}: {reason}. Check that the cluster is running and "
            "reachable (VPN, tunnel), and that the context is the one you meant."
        ) from None
    return parse_version(info.git_version, info.major, info.minor)


def parse_version(git_version: str, major: object, minor: object) -> tuple[str, tuple[int, int]]:
    """`/version`'s gitVersion, major and minor ("1", "36+" on some clouds) as (text, (major, minor))."""
    return git_version, (int(re.sub(r"\D.*", "", str(major)) or 0), int(re.sub(r"\D.*", "", str(minor)) or 0))


def check_version(version: str, parsed: tuple[int, int]) -> list[str]:
    if parsed < MIN_SERVER:
        raise PreflightError(
            f"the server runs Kubernetes {version}; the charts need {MIN_SERVER[0]}.{MIN_SERVER[1]} or newer."
        )
    if parsed > TESTED_UP_TO:
        return [f"the server runs Kubernetes {version}, newer than tested ({TESTED_UP_TO[0]}.{TESTED_UP_TO[1]})."]
    return []


def pool_selector(pool: NodePool) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(pool.labels.items()))


def pools_without_nodes(api_client: Any, pools: dict[str, NodePool]) -> dict[str, str]:
    """Pool name -> its label selector, for each pool that no node matches."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    missing = {}
    for name, pool in pools.items():
        selector = pool_selector(pool)
        if not core.list_node(label_selector=selector, limit=1, _request_timeout=10).items:
            missing[name] = selector
    return missing


def has_crd(api_client: Any, name: str) -> bool:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.ApiextensionsV1Api(api_client).read_custom_resource_definition(name, _request_timeout=10)
        return True
    except ApiException as err:
        if err.status == 404:
            return False
        raise ClusterError(f"cannot read CRD {name}: {err.reason}") from None


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
    api_client: Any, target: Target, pools: dict[str, NodePool], missing_pools: str, need_argo: bool
) -> Preflight:
    check_context(target)
    result = Preflight()
    result.server_version, parsed = server_version(api_client, target)
    result.warnings += check_version(result.server_version, parsed)
    result.warnings += missing_pools_warnings(pools_without_nodes(api_client, pools), missing_pools)
    if need_argo:
        result.argo_crds = has_crd(api_client, ARGO_CRD)
        if result.argo_crds:
            result.api_versions = (ARGO_API,)
    return result
