"""All or nothing for a run pinned to named nodes: before the install, every named node must exist, be
Ready and schedulable, belong to the run's pool, carry no taint the run does not tolerate, and have the
free GPUs, CPU and memory its ranks ask for (refused, naming each node and why, with nothing applied);
after the install, every rank must start (Running) within the run's start timeout, or the caller
releases the whole run and reports which ranks waited and why (the shared pending reasons)."""

import queue
import time
from collections import defaultdict
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from deploy.kube import watch as kube
from deploy.kube.streams import ATTEMPTS, Watches, refusal
from deploy.platform.nodepools import GPU_RESOURCE, node_pools
from deploy.workloads.indexes import config_index
from deploy.workloads.pending import explain as explain_message
from deploy.workloads.pending import job_reasons, pod_reason

RUN_LABEL = "kai-ml.io/run"
GROUP_LABEL = "kai-ml.io/group"
INSTANCE_LABEL = "app.kubernetes.io/instance"
STARTED = ("Running", "Succeeded", "Failed")  # a rank whose container ran (a failure is the follower's)
HOLDING = ("Pending", "Running", "Unknown")  # pods whose requests count against their node
WATCH_S = 30


def _requests(pod: dict[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = defaultdict(int)
    for container in kube.get(pod, "spec", "containers", default=[]) or []:
        for name, value in (kube.get(container, "resources", "requests") or {}).items():
            total[name] += parse_quantity(value)
    return total


def _tolerated(taint: dict[str, Any], pool_taints: list[dict[str, Any]]) -> bool:
    """The ranks tolerate exactly their pool's taints (charts/run: platform-lib.scheduling)."""
    if taint.get("effect") not in ("NoSchedule", "NoExecute"):
        return True  # PreferNoSchedule never keeps a pod off
    same = ("key", "value", "effect")
    return any(all(t.get(k, "") == taint.get(k, "") for k in same) for t in pool_taints)


def node_problems(
    node: dict[str, Any], pods: list[dict[str, Any]], need: dict[str, Any], pool: Any, release: str
) -> list[str]:
    """Why `node` cannot take ranks that need `need` (resource -> amount) now; empty when it can.
    `pods`: the pods bound to the node (those of `release` itself do not count: a re-launch)."""
    problems = []
    ready = [c for c in kube.get(node, "status", "conditions", default=[]) or [] if c.get("type") == "Ready"]
    if not ready or ready[0].get("status") != "True":
        why = ready[0].get("reason") or ready[0].get("message") if ready else "no Ready condition"
        problems.append(f"NotReady ({why})")
    if kube.get(node, "spec", "unschedulable"):
        problems.append("cordoned (unschedulable)")
    labels = kube.get(node, "metadata", "labels", default={}) or {}
    missing = {k: v for k, v in pool.labels.items() if labels.get(k) != v}
    if missing:
        problems.append(
            f"not a node of pool {pool.name} (lacks its labels {', '.join(f'{k}={v}' for k, v in missing.items())})"
        )
    for taint in kube.get(node, "spec", "taints", default=[]) or []:
        if not _tolerated(taint, pool.taints):
            problems.append(
                f"tainted {taint.get('key')}={taint.get('value', '')}:{taint.get('effect')}, which the run does not "
                f"tolerate (pool {pool.name} tolerates only its own taints)"
            )
    allocatable = kube.get(node, "status", "allocatable", default={}) or {}
    used: dict[str, Any] = defaultdict(int)
    holders: dict[str, list[str]] = defaultdict(list)
    for pod in pods:
        if kube.get(pod, "status", "phase") not in HOLDING:
            continue
        if kube.get(pod, "metadata", "labels", INSTANCE_LABEL) == release:
            continue
        for name, amount in _requests(pod).items():
            used[name] += amount
            if amount:
                holders[name].append(f"{kube.get(pod, 'metadata', 'namespace')}/{kube.get(pod, 'metadata', 'name')}")
    for name, amount in need.items():
        if not amount:
            continue
        total = parse_quantity(allocatable.get(name, 0))
        free = total - used[name]
        if free < amount:
            what = "GPUs" if name == GPU_RESOURCE else name
            held = (
                f"; held by {', '.join(holders[name][:3])}{' ...' if len(holders[name]) > 3 else ''}"
                if holders[name]
                else ""
            )
            problems.append(f"{_fmt(free)} free {what} of {_fmt(total)}, the run needs {_fmt(amount)} there{held}")
    return problems


def _fmt(value: Any) -> str:
    return str(int(value)) if value == int(value) else f"{float(value):g}"


def need_of(ranks: int, gpus_per_rank: int, requests: dict[str, Any]) -> dict[str, Any]:
    """What `ranks` ranks ask of their node."""
    return {
        GPU_RESOURCE: gpus_per_rank * ranks,
        "cpu": parse_quantity(requests["cpu"]) * ranks,
        "memory": parse_quantity(requests["memory"]) * ranks,
    }


def _problems_of(core: Any, node: dict[str, Any], need: dict[str, Any], pool: Any, release: str) -> list[str]:
    name = kube.get(node, "metadata", "name")
    pods, _ = kube.list_all(core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}")
    return node_problems(node, pods, need, pool, release)


def choose_nodes(
    api_client: Any, pools: list[Any], count: int, need: dict[str, Any], run: str, release: str, origin: str
) -> tuple[dict[str, str], list[str]]:
    """`count` nodes of `pools` that can take `need` each now, first by name whatever their pool (a
    deterministic choice), as node -> its pool, and why each node passed over could not take them;
    PlacementError, naming every node of `pools` that cannot and why, when fewer can. `origin` names the
    pools in messages (spec.origin)."""
    from kubernetes import client

    from deploy.errors import PlacementError

    core = client.CoreV1Api(api_client)
    candidates: dict[str, tuple[dict[str, Any], Any]] = {}
    for pool in pools:
        selector = ",".join(f"{k}={v}" for k, v in sorted(pool.labels.items()))
        for node in kube.list_all(core.list_node, label_selector=selector)[0]:
            candidates.setdefault(kube.get(node, "metadata", "name"), (node, pool))  # the first pool that has it
    fit: dict[str, str] = {}
    unfit = []
    for name in sorted(candidates):
        node, pool = candidates[name]
        problems = _problems_of(core, node, need, pool, release)
        if problems:
            unfit.append(f"{name}: {'; '.join(problems)}")
        else:
            fit[name] = pool.name
    if len(fit) < count:
        able = f" ({', '.join(fit)})" if fit else ""
        others = f"; the others cannot: {'; '.join(unfit)}" if unfit else ""
        raise PlacementError(
            f"run {run} refused before anything was applied: nodeCount {count} of {origin}, but {len(fit)} of its "
            f"{len(candidates)} nodes can take their ranks now{able}{others}. Ask for fewer nodes, or free these."
        )
    return dict(list(fit.items())[:count]), unfit


def check_nodes(api_client: Any, values: dict[str, Any], release: str) -> None:
    """Refuse (PlacementError, nothing applied) a run whose named nodes cannot all take their ranks now."""
    from kubernetes import client

    from deploy.errors import PlacementError

    core = client.CoreV1Api(api_client)
    pools = node_pools(values)
    refused = []
    for group in values["groups"]:
        name, pool = group["node"], pools[group["nodePool"]]
        need = need_of(len(group["indexes"]), values["gpusPerRank"], values["resources"]["requests"])
        found, _ = kube.list_all(core.list_node, field_selector=f"metadata.name={name}")
        if not found:
            refused.append(f"{name}: no such node")
            continue
        for problem in _problems_of(core, found[0], need, pool, release):
            refused.append(f"{name}: {problem}")
    if refused:
        raise PlacementError(
            f"run {values['run']['name']} refused before anything was applied: its ranks could not all start, "
            f"because " + "; ".join(refused) + ". Name other nodes (`nodes` in the run spec), or free these."
        )


def wait_started(api_client: Any, values: dict[str, Any], namespace: str, release: str) -> str | None:
    """Watch the run's pods until every rank has started (None) or the start timeout passes: then why,
    naming each rank that waited and its reason."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = values["run"]["name"]
    groups = {g["name"]: list(g["indexes"]) for g in values["groups"]}
    ranks = {i for indexes in groups.values() for i in indexes}
    selector = f"{INSTANCE_LABEL}={release},{RUN_LABEL}={name}"
    timeout = float(values.get("startTimeoutSeconds", 300))
    started: set[int] = set()
    failed: Exception | None = None
    ends = time.monotonic() + timeout
    with Watches(namespace, WATCH_S, ("pods", core.list_namespaced_pod, {"label_selector": selector})) as watches:
        while started != ranks:
            left = ends - time.monotonic()
            if left <= 0:
                break
            try:
                topic, kind, pod = watches.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if topic == "error":  # the watch failed ATTEMPTS times in a row: the start cannot be seen
                failed = pod
                break
            meta = pod.get("metadata") or {}
            found = config_index(meta.get("labels"), meta.get("annotations"), groups, GROUP_LABEL)
            if found is not None and kind != "DELETED" and kube.get(pod, "status", "phase") in STARTED:
                started.add(found[1])
    if failed is not None:
        return f"its start could not be seen: the watch of its pods failed {ATTEMPTS} times ({refusal(failed)})"
    if started == ranks:
        return None
    waiting = sorted(ranks - started)
    reasons = _reasons(core, namespace, selector, values, waiting, groups)
    node_of = {i: g["node"] for g in values["groups"] for i in g["indexes"]}
    listed = "; ".join(f"rank {r} (node {node_of[r]}): {reasons.get(r, 'no reason known')}" for r in waiting)
    return f"{len(waiting)} of {len(ranks)} ranks did not start within {timeout:g} s: {listed}"


def _reasons(
    core: Any, namespace: str, selector: str, values: dict[str, Any], waiting: list[int], groups: dict[str, list[int]]
) -> dict[int, str]:
    """Rank -> why it waits: its pod's scheduling message, else its Job's FailedCreate (quota), else none."""
    out: dict[int, str] = {}
    pods, _ = kube.list_all(core.list_namespaced_pod, namespace, label_selector=selector)
    events, _ = kube.list_all(
        core.list_namespaced_event, namespace, field_selector="involvedObject.kind=Pod,reason=FailedScheduling"
    )
    scheduling = {kube.get(e, "involvedObject", "name"): explain_message(e.get("message") or "") for e in events}
    for pod in pods:
        meta = pod.get("metadata") or {}
        found = config_index(meta.get("labels"), meta.get("annotations"), groups, GROUP_LABEL)
        if found is None or found[1] not in waiting:
            continue
        phase = kube.get(pod, "status", "phase")
        why = pod_reason(pod) or scheduling.get(meta.get("name"))
        out[found[1]] = why or f"pod {meta.get('name')} {phase or 'Pending'} (not scheduled yet)"
    job_events, _ = kube.list_all(
        core.list_namespaced_event, namespace, field_selector="involvedObject.kind=Job,reason=FailedCreate"
    )
    run = values["run"]["name"]
    jobs = {f"{run}-{g}": g for g in groups}
    for group, why in job_reasons(job_events, jobs).items():
        for rank in groups[group]:
            if rank in waiting and rank not in out:
                out[rank] = f"its pod was not created: {why}"
    for rank in waiting:
        out.setdefault(rank, "no pod created yet")
    return out


def resolve_nodes(cluster: Any, spec: dict[str, Any], env_values: dict[str, Any]) -> dict[str, str]:
    """The nodes of a spec that gives `nodeCount` (`cluster`: deploy.workloads.launch.Cluster), each with
    its pool: those of the launch still installed (picked up again: its ranks hold those nodes), else
    chosen now from the spec's nodePool or the pools of its gpuType."""
    from deploy.console import log
    from deploy.workloads import release
    from deploy.workloads.runs.spec import candidate_pools, gpus_per_rank, origin
    from deploy.workloads.runs.workload import RUNS
    from deploy.workloads.store import launched_values

    name, count = spec["name"], spec["nodeCount"]
    prior = launched_values(RUNS.folder(cluster.runs_root, name))
    if prior is not None and release.installed(cluster.helm, RUNS, name, cluster.release_namespace):
        nodes = {g["node"]: g["nodePool"] for g in prior["groups"] if "nodePool" in g}
        if len(nodes) == count:
            return nodes
    pools = candidate_pools(spec, env_values, name)
    need = need_of(spec["ranksPerNode"], gpus_per_rank(spec, pools[0]), spec["resources"]["requests"])
    where = origin(spec, pools)
    nodes, passed = choose_nodes(cluster.api_client, pools, count, need, name, RUNS.release(name), where)
    chosen = ", ".join(f"{n} ({p})" if len(pools) > 1 else n for n, p in nodes.items())
    skipped = f"; passed over {'; '.join(passed)}" if passed else ""
    log(f"run {name}: nodeCount {count} of {where}: {chosen}{skipped}")
    return nodes
