"""Nodes against node pools (self-managed clusters): which pools have nodes, and which of a pool's
nodes lack its labels or taints. Nodes are assigned to pools by name (`<pool>-*` or listed in
`--assign pool=node1,node2`), or by already carrying the pool's labels."""

from dataclasses import dataclass, field
from typing import Any

from deploy.platform.nodepools import NodePool
from deploy.platform.session import Session


@dataclass
class NodeFix:
    node: str
    pool: str
    labels: dict[str, str] = field(default_factory=dict)  # to add
    taints: list[dict[str, str]] = field(default_factory=list)  # to add

    def patch(self, existing_taints: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.labels:
            body["metadata"] = {"labels": self.labels}
        if self.taints:
            body["spec"] = {"taints": [*existing_taints, *self.taints]}
        return body


@dataclass
class NodeReport:
    pools: dict[str, list[str]]  # pool -> nodes that carry its labels
    fixes: list[NodeFix]
    unassigned: list[str]
    optional: set[str] = field(default_factory=set)  # pools that may have no nodes

    @property
    def empty(self) -> list[str]:
        """The pools that should have nodes and have none."""
        return [p for p, members in self.pools.items() if not members and p not in self.optional]

    @property
    def ok(self) -> bool:
        return not self.fixes and not self.empty


def _taint_key(t: dict[str, Any]) -> tuple[str, str, str]:
    return (str(t.get("key")), str(t.get("value") or ""), str(t.get("effect")))


def check_nodes(nodes: list[dict[str, Any]], pools: dict[str, NodePool], assign: dict[str, str]) -> NodeReport:
    """`nodes`: plain dicts with metadata.name/labels and spec.taints; `assign`: node -> pool."""
    members: dict[str, list[str]] = {p: [] for p in pools}
    fixes, unassigned = [], []
    for node in nodes:
        name = node["metadata"]["name"]
        labels = node["metadata"].get("labels") or {}
        taints = (node.get("spec") or {}).get("taints") or []
        pool = assign.get(name)
        if pool is None:
            pool = next((p for p, pp in pools.items() if all(labels.get(k) == v for k, v in pp.labels.items())), None)
        if pool is None:
            pool = next((p for p in pools if name.startswith(f"{p}-")), None)
        if pool is None:
            unassigned.append(name)
            continue
        spec = pools[pool]
        fix = NodeFix(node=name, pool=pool)
        fix.labels = {k: v for k, v in spec.labels.items() if labels.get(k) != v}
        have = {_taint_key(t) for t in taints}
        fix.taints = [
            {"key": t["key"], "value": t.get("value", ""), "effect": t["effect"]}
            for t in spec.taints
            if _taint_key(t) not in have
        ]
        if fix.labels or fix.taints:
            fixes.append(fix)
        else:
            members[pool].append(name)
    optional = {p for p, spec in pools.items() if spec.optional}
    return NodeReport(pools=members, fixes=fixes, unassigned=unassigned, optional=optional)


def apply_fixes(api_client: Any, fixes: list[NodeFix], nodes: list[dict[str, Any]]) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    taints = {n["metadata"]["name"]: (n.get("spec") or {}).get("taints") or [] for n in nodes}
    for fix in fixes:
        core.patch_node(fix.node, fix.patch(taints.get(fix.node, [])))


def check_cluster(
    session: Session, pools: dict[str, NodePool], assign: dict[str, str], apply: bool
) -> tuple[NodeReport, list[NodeFix]]:
    """The cluster's nodes against the pools; with `apply`, the missing labels and taints added first
    and the nodes read again. The report, and the fixes that were applied."""
    with session.unreachable("while reading the nodes"):
        nodes = (session.reader.get("/api/v1/nodes") or {}).get("items") or []
        report = check_nodes(nodes, pools, assign)
        if not (apply and report.fixes):
            return report, []
        apply_fixes(session.api_client, report.fixes, nodes)
        nodes = (session.reader.get("/api/v1/nodes") or {}).get("items") or []
    return check_nodes(nodes, pools, assign), report.fixes
