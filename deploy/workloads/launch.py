"""Launch, follow (again), inspect and delete a workload's runs on a cluster: the one path every workload
takes. A run's folder (runs/<workload>-<run>/) holds the values it was launched with and its results, so a
run left by `--no-follow`, a crash or a lost connection is picked up again, and a launch never empties the
results of an earlier one: the same values resume it, other values are refused unless `--restart` (which
keeps the earlier results as results-<n>.jsonl)."""

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.console import console, log, warning
from deploy.errors import PlacementError, PlanError
from deploy.kube import watch as kube
from deploy.kube.helm import Helm
from deploy.workloads import podlogs, release
from deploy.workloads.follow import Followed, follow
from deploy.workloads.kind import Values, Workload
from deploy.workloads.progress import Display, summary
from deploy.workloads.status import GroupStatus, run_status
from deploy.workloads.store import ResultStore, launched_at, launched_values, mark_launched, save_values

KWOK_NOTE = (
    "note: the local control plane's kwok nodes are fake: their pods run no container and leave no log, so no "
    "result (`{name} {launch} --here` runs the units on this machine; `cluster up --real-node POOL` adds a real node)."
)


@dataclass
class Cluster:
    """Where a workload's runs go: the API client, Helm, the charts folder and the release namespace."""

    api_client: Any
    helm: Helm
    charts_dir: Path
    release_namespace: str
    timeout: str
    runs_root: Path
    local: bool = False  # the project's local control plane (fake nodes: no logs)


def _without_reruns(values: Values) -> Values:
    """The values as launched, without the re-run groups that following added."""
    return {**values, "groups": [g for g in values.get("groups", []) if "rerunOf" not in g]}


def _same(a: Values, b: Values) -> bool:
    canon = lambda v: json.dumps(_without_reruns(v), sort_keys=True)  # noqa: E731
    return canon(a) == canon(b)


def start(cluster: Cluster, workload: Workload, values: Values, *, do_follow: bool, restart: bool) -> int:
    """Install the run's release without waiting, then follow it (unless `do_follow` is False: exit 0)."""
    name = workload.run_name(values)
    folder = workload.folder(cluster.runs_root, name)
    store = ResultStore(folder)
    prior = launched_values(folder)
    is_installed = release.installed(cluster.helm, workload, name, cluster.release_namespace)
    if prior is not None and (store.recorded or is_installed) and not _same(prior, values):
        if not restart:
            raise PlanError(
                f"{workload.title} {name} was launched before with other values ({len(store.recorded)} results in "
                f"{store.path}): `{workload.name} follow {name}` picks that launch up; `--restart` uninstalls it "
                "and launches this one, keeping the earlier results beside it."
            )
        if is_installed:
            release.uninstall(cluster.helm, workload, name, cluster.release_namespace, cluster.timeout)
            log(f"uninstalled the earlier {workload.release(name)}")
            is_installed = False
        kept = store.archive()
        if kept:
            log(f"the earlier launch's results are kept in {kept}")
    elif prior is not None and store.recorded:
        log(f"{workload.title} {name} was launched before with these values and has {len(store.recorded)} results: "
            "picking it up")  # fmt: skip
        values = prior  # with its re-run groups
    namespace = workload.namespace(values, cluster.release_namespace)
    fresh = not is_installed
    if fresh and workload.preflight is not None:
        workload.preflight(cluster.api_client, values, workload.release(name))
    save_values(folder, values)
    if fresh:
        mark_launched(folder)
    if not is_installed or values is not prior:
        release.install(cluster.helm, workload, _chart(cluster, workload), values, cluster.release_namespace,
                        cluster.timeout)  # fmt: skip
        log(f"installed {workload.release(name)}: {len(workload.units(values))} {workload.unit}s in "
            f"{len(values['groups'])} Jobs, namespace {namespace}")  # fmt: skip
    if fresh and workload.admit is not None:
        _admit(cluster, workload, values, namespace)
    if not do_follow:
        log(f"not following: `{workload.name} follow {name}` picks it up, `{workload.name} status {name}` shows it")
        return 0
    return _follow(cluster, workload, values, store)


def _admit(cluster: Cluster, workload: Workload, values: Values, namespace: str) -> None:
    """All or nothing: when the workload's admit check says no, the release goes at once (no unit of it
    keeps holding resources) and the launch fails with the reason."""
    name = workload.run_name(values)
    try:
        why = workload.admit(cluster.api_client, values, namespace, workload.release(name))  # type: ignore[misc]
    except KeyboardInterrupt:  # stopped while it waited: a partial launch must not keep what it holds
        log(f"interrupted before every {workload.unit} had started: removing {workload.release(name)} (Ctrl-C "
            "again is ignored until it is gone)")  # fmt: skip
        removed, left = _release_whole(cluster, workload, values, namespace)
        log(removed if not left else f"{removed}; {left}")
        raise
    if why is None:
        return
    removed, left = _release_whole(cluster, workload, values, namespace)
    gone = f"Nothing of it is left running ({removed})" if not left else f"{removed}; {left}"
    raise PlacementError(
        f"{workload.title} {name} released: {why}. {gone}; `{workload.name} {workload.launch}` launches it again."
    )


GONE_S = 120  # a pod's grace period (30 s by default) and then some


@contextlib.contextmanager
def _uninterruptible() -> Iterator[None]:
    """Ctrl-C ignored, by the helm processes started meanwhile too (they inherit it), while a launch removes
    what it made: a second Ctrl-C must not leave half a release holding GPUs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if before is None else before)


def _release_whole(cluster: Cluster, workload: Workload, values: Values, namespace: str) -> tuple[str, str]:
    """Uninstall the run's release and wait until its pods are gone (what they held is free only then): what
    was removed, and what is still going ("" when nothing is)."""
    name = workload.run_name(values)
    with _uninterruptible():
        pods = [p["metadata"]["name"] for p in podlogs.pods(cluster.api_client, workload, namespace, name)]
        release.uninstall(cluster.helm, workload, name, cluster.release_namespace, cluster.timeout)
        left = _wait_pods_gone(cluster.api_client, workload, namespace, name, GONE_S)
    jobs = [f"{name}-{g['name']}" for g in values["groups"]]
    removed = f"uninstalled {workload.release(name)}: Jobs {_some(jobs)}; pods {_some(pods) or 'none'}"
    return removed, (f"still terminating after {GONE_S} s: {_some(left)}" if left else "")


def _some(names: list[str], shown: int = 8) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _wait_pods_gone(api_client: Any, workload: Workload, namespace: str, run: str, timeout_s: float) -> list[str]:
    """Watch the run's pods until none is left or `timeout_s` passes: those left."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    selector = f"{workload.run_label}={run}"
    items, version = kube.list_all(core.list_namespaced_pod, namespace, label_selector=selector)
    left = {kube.get(p, "metadata", "name") for p in items}
    ends = time.monotonic() + timeout_s
    while left and (remaining := ends - time.monotonic()) > 0:
        try:
            events = kube.watch(core.list_namespaced_pod, namespace, resource_version=version,
                                timeout_s=max(1, int(remaining)), label_selector=selector)  # fmt: skip
            for kind, pod in events:
                version = kube.get(pod, "metadata", "resourceVersion", default=version)
                if kind == "DELETED":
                    left.discard(kube.get(pod, "metadata", "name"))
                elif kind in ("ADDED", "MODIFIED"):
                    left.add(kube.get(pod, "metadata", "name"))
                if not left:
                    break
        except kube.Expired:
            items, version = kube.list_all(core.list_namespaced_pod, namespace, label_selector=selector)
            left = {kube.get(p, "metadata", "name") for p in items}
    return sorted(left)


def follow_again(cluster: Cluster, workload: Workload, name: str) -> int:
    """Follow a run launched before (from this machine's run folder): the results stored count, the rest
    is collected as if it had never stopped."""
    folder = workload.folder(cluster.runs_root, name)
    values = launched_values(folder)
    if values is None:
        raise PlanError(
            f"no {workload.title} {name} was launched from here ({folder} has no values.json): "
            f"`{workload.name} {workload.launch}` launches one."
        )
    if not release.installed(cluster.helm, workload, name, cluster.release_namespace):
        raise PlanError(
            f"{workload.release(name)} is not installed in namespace {cluster.release_namespace} (deleted, or "
            f"launched with another --release-namespace); its results so far stay in {folder}."
        )
    return _follow(cluster, workload, values, ResultStore(folder))


def _chart(cluster: Cluster, workload: Workload) -> Path:
    return cluster.charts_dir / workload.chart


def _follow(cluster: Cluster, workload: Workload, values: Values, store: ResultStore) -> int:
    if not workload.remove_after_follow:
        return _follow_run(cluster, workload, values, store)
    name = workload.run_name(values)
    try:
        return _follow_run(cluster, workload, values, store)
    finally:
        try:
            _keep_logs(cluster, workload, name, values)
        except Exception as err:  # the run is over: its namespace must not outlive it for want of a log
            warning(f"the pods' logs were not kept ({type(err).__name__}: {str(err)[:200]})")
        if release.uninstall(cluster.helm, workload, name, cluster.release_namespace, cluster.timeout):
            log(f"uninstalled {workload.release(name)} and the objects it made; results kept in {store.path.parent}")


def deadline_left(values: Values, folder: Path) -> float | None:
    """Seconds left of the run's deadline (values `deadlineSeconds`, counted from its launch); None: none."""
    deadline, started = values.get("deadlineSeconds"), launched_at(folder)
    if not deadline or started is None:
        return None
    # Never more than the deadline: the stamp is rounded to the millisecond (and a clock may step back).
    return deadline - max(0.0, time.time() - started)


def _follow_run(cluster: Cluster, workload: Workload, values: Values, store: ResultStore) -> int:
    name = workload.run_name(values)
    run = Followed.of(workload, values, workload.namespace(values, cluster.release_namespace))

    def rerun(lost: list[int]) -> dict[str, list[int]]:
        """Units whose results were lost (their pods' logs gone or unreadable): the release gets a Job that
        runs them again, and the run folder the values that say so (a later follow counts those Jobs)."""
        nonlocal values
        values, added = release.with_rerun(values, lost, deadline_left(values, store.path.parent))
        release.install(cluster.helm, workload, _chart(cluster, workload), values, cluster.release_namespace,
                        cluster.timeout)  # fmt: skip
        save_values(store.path.parent, values)
        log(f"{len(lost)} results lost (their pods' logs gone or unreadable): running {workload.unit}s "
            f"{', '.join(map(str, sorted(lost)))} again as {', '.join(added)}")  # fmt: skip
        return added

    display = Display(len(run.configs), workload.unit)
    ticker = _progress_ticker(cluster, workload, run.namespace, name, display) if workload.progress else None
    with display.live, ticker or contextlib.nullcontext():
        left = deadline_left(values, store.path.parent)
        tracker = follow(cluster.api_client, run, store, display.update, rerun if workload.rerun_lost else None,
                         values.get("backoffLimitPerIndex", 0), None if left is None else max(0.0, left))  # fmt: skip
    code = summary(tracker, name, store.path.parent, workload.title, workload.unit)
    if cluster.local and any(why.startswith("log unavailable") for why in tracker.reasons.values()):
        console.print(KWOK_NOTE.format(name=workload.name, launch=workload.launch), highlight=False, markup=False)
    return code


PROGRESS_S = 3.0
PROGRESS_TAIL = 200


@contextlib.contextmanager
def _progress_ticker(
    cluster: Cluster, workload: Workload, namespace: str, run: str, display: Display
) -> Iterator[None]:
    """Every few seconds, the workload's steps from the last lines of its newest running pod's log, as a bar."""
    assert workload.progress is not None
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(PROGRESS_S):
            with contextlib.suppress(Exception):  # advisory: a failed read waits for the next tick
                running = [p for p in podlogs.pods(cluster.api_client, workload, namespace, run)
                           if (p.get("status") or {}).get("phase") == "Running"]  # fmt: skip
                if running:
                    name = running[-1]["metadata"]["name"]
                    text = podlogs.read(cluster.api_client, workload, namespace, name, PROGRESS_TAIL)
                    step = workload.progress(text) if text else None
                    if step is not None:
                        display.step(step, name)

    thread = threading.Thread(target=tick, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=PROGRESS_S + 1)


def status(cluster: Cluster, workload: Workload, name: str, env_values: Values) -> tuple[str, list[GroupStatus]]:
    """The run's namespace and, per group, its Job's counts, pending reasons, failures and results."""
    folder = workload.folder(cluster.runs_root, name)
    values = launched_values(folder) or env_values
    namespace = workload.namespace(values, cluster.release_namespace)
    known = workload.groups(values) if "groups" in values else {}
    store = ResultStore(folder)
    return namespace, run_status(cluster.api_client, workload, namespace, name, store.recorded, known, store.failed)


def _keep_logs(cluster: Cluster, workload: Workload, name: str, values: Values) -> None:
    """The run's pods' logs into its folder before its release (and, for some, its namespace) goes."""
    if not workload.keep_logs:
        return
    folder = workload.folder(cluster.runs_root, name)
    kept = podlogs.save(cluster.api_client, workload, workload.namespace(values, cluster.release_namespace), name,
                        folder)  # fmt: skip
    if kept:
        log(f"kept {len(kept)} pod logs in {kept[0].parent}")


def delete(cluster: Cluster, workload: Workload, name: str) -> bool:
    """Uninstall the run's release (its Jobs and pods go; the run folder stays, with the pods' logs when the
    workload keeps them). False: none installed."""
    if workload.keep_logs and release.installed(cluster.helm, workload, name, cluster.release_namespace):
        _keep_logs(cluster, workload, name, launched_values(workload.folder(cluster.runs_root, name)) or {})
    return release.uninstall(cluster.helm, workload, name, cluster.release_namespace, cluster.timeout)
