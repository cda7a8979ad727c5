"""Launch, follow (again), inspect and delete a workload's runs on a cluster: the one path every workload
takes. A run's folder (runs/<workload>-<run>/) holds the values it was launched with and its results, so a
run left by `--no-follow`, a crash or a lost connection is picked up again, and a launch never empties the
results of an earlier one: the same values resume it, other values are refused unless `--restart` (which
keeps the earlier results as results-<n>.jsonl)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.console import console, log
from deploy.errors import PlanError
from deploy.kube.helm import Helm
from deploy.workloads import release
from deploy.workloads.follow import Followed, follow
from deploy.workloads.kind import Values, Workload
from deploy.workloads.progress import Display, summary
from deploy.workloads.status import GroupStatus, run_status
from deploy.workloads.store import ResultStore, launched_values, save_values

KWOK_NOTE = (
    "note: the local control plane's kwok nodes are fake: their pods run no container and leave no log, so no "
    "result (`{name} run --here` runs the units on this machine; `cluster up --real-node POOL` adds a real node)."
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
    save_values(folder, values)
    if not is_installed or values is not prior:
        release.install(cluster.helm, workload, _chart(cluster, workload), values, cluster.release_namespace,
                        cluster.timeout)  # fmt: skip
        log(f"installed {workload.release(name)}: {len(workload.units(values))} {workload.unit}s in "
            f"{len(values['groups'])} Jobs, namespace {namespace}")  # fmt: skip
    if not do_follow:
        log(f"not following: `{workload.name} follow {name}` picks it up, `{workload.name} status {name}` shows it")
        return 0
    return _follow(cluster, workload, values, store)


def follow_again(cluster: Cluster, workload: Workload, name: str) -> int:
    """Follow a run launched before (from this machine's run folder): the results stored count, the rest
    is collected as if it had never stopped."""
    folder = workload.folder(cluster.runs_root, name)
    values = launched_values(folder)
    if values is None:
        raise PlanError(
            f"no {workload.title} {name} was launched from here ({folder} has no values.json): "
            f"`{workload.name} run` launches one."
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
    name = workload.run_name(values)
    run = Followed.of(workload, values, workload.namespace(values, cluster.release_namespace))

    def rerun(lost: list[int]) -> dict[str, list[int]]:
        """Units whose results were lost (their pods' logs gone or unreadable): the release gets a Job that
        runs them again, and the run folder the values that say so (a later follow counts those Jobs)."""
        nonlocal values
        values, added = release.with_rerun(values, lost)
        release.install(cluster.helm, workload, _chart(cluster, workload), values, cluster.release_namespace,
                        cluster.timeout)  # fmt: skip
        save_values(store.path.parent, values)
        log(f"{len(lost)} results lost (their pods' logs gone or unreadable): running {workload.unit}s "
            f"{', '.join(map(str, sorted(lost)))} again as {', '.join(added)}")  # fmt: skip
        return added

    display = Display(len(run.configs), workload.unit)
    with display.live:
        tracker = follow(cluster.api_client, run, store, display.update, rerun if workload.rerun_lost else None,
                         values.get("backoffLimitPerIndex", 0))  # fmt: skip
    code = summary(tracker, name, store.path.parent, workload.title, workload.unit)
    if cluster.local and any(why.startswith("log unavailable") for why in tracker.reasons.values()):
        console.print(KWOK_NOTE.format(name=workload.name), highlight=False, markup=False)
    return code


def status(cluster: Cluster, workload: Workload, name: str, env_values: Values) -> tuple[str, list[GroupStatus]]:
    """The run's namespace and, per group, its Job's counts, pending reasons, failures and results."""
    folder = workload.folder(cluster.runs_root, name)
    values = launched_values(folder) or env_values
    namespace = workload.namespace(values, cluster.release_namespace)
    known = workload.groups(values) if "groups" in values else {}
    store = ResultStore(folder)
    return namespace, run_status(cluster.api_client, workload, namespace, name, store.recorded, known, store.failed)


def delete(cluster: Cluster, workload: Workload, name: str) -> bool:
    """Uninstall the run's release (its Jobs and pods go; the run folder stays). False: none installed."""
    return release.uninstall(cluster.helm, workload, name, cluster.release_namespace, cluster.timeout)
