"""What a workload brings to the shared launch path: its chart, its labels, its spec and its result parsing.
Everything else (install without waiting, follow with watches, one result per unit, pending reasons,
re-runs, status, results, delete, resume) is deploy/workloads' and the same for every workload.

The chart's side of the contract, for every workload chart:
- values `groups`: one Job per group, `{name, indexes}`; completion index i of the group's Job runs unit
  `indexes[i]` (a negative entry: that completion index reports no result of its own, e.g. the non-zero
  ranks of a coordinated run);
- values `units` (bench: `configs`): `{index, config}` per unit, the config recorded beside its result;
- values `<name_key>.name`: the run's name (a DNS label), and `backoffLimitPerIndex`;
- Jobs named `<run name>-<group>`; Jobs and pods labelled `run_label=<run name>` and
  `group_label=<group>`; the result in the log of the container `container` (`parse` reads it).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from deploy.workloads.progress import Step

Values = dict[str, Any]


class Report(Protocol):
    """A workload's results as a table (deploy/workloads/bench/results.py is bench's)."""

    COLUMNS: tuple[str, ...]

    def rows(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def as_json(self, records: list[dict[str, Any]]) -> str: ...

    def as_csv(self, rows: list[dict[str, Any]]) -> str: ...

    def plot(self, rows: list[dict[str, Any]], path: Path, title: str) -> None: ...


def runner_result(text: str) -> dict[str, Any] | None:
    """The runner's KAIML_RESULT line in a pod's log (the default parser)."""
    from runner.result import find_result

    return find_result(text)


@dataclass(frozen=True)
class Workload:
    name: str  # the command group, the release `<name>-<run>` and the run folder runs/<name>-<run>/
    title: str  # what one launch is called in messages: "sweep", "training run"
    unit: str  # what one result is for: "config", "rank"
    chart: str  # its chart's folder under charts/
    namespace_key: str  # the key under global.namespaces of the namespace its pods run in
    # spec file + the environment's values -> the chart's values (None: the command plans from its options)
    plan: Callable[[Path, Values], Values] | None
    report: Report
    run_label: str = "kai-ml.io/run"
    group_label: str = "kai-ml.io/group"
    container: str = "runner"
    name_key: str = "run"  # values[name_key]["name"] is the run's name
    units_key: str = "units"
    parse: Callable[[str], dict[str, Any] | None] = runner_result
    # After a unit's result is parsed from its log: (that log, the run folder) -> None, writing the files
    # the log carries into the folder (a load run's exports and per-request records). Warns, never raises.
    save_files: Callable[[str, Path], None] | None = None
    launch: str = "run"  # its launch command (`bench run`, `run start`), as messages name it
    rerun_lost: bool = True  # a unit whose result went with its pod runs again (not for ranks of one run)
    # Before the first install: (API client, chart values, release) -> raises a DeployError when the cluster
    # cannot take the launch (a namespace it does not own, nodes without room); nothing is applied.
    preflight: Callable[[Any, Values, str], None] | None = None
    # All or nothing, for workloads whose units must run together (the ranks of a run): after the install,
    # (API client, chart values, namespace, release) -> None when the launch may go on, else why not; the
    # release is then uninstalled at once.
    admit: Callable[[Any, Values, str, str], str | None] | None = None
    # Uninstall the release once following ends (done, failed or interrupted): a run whose objects,
    # namespace included, live only while it runs. Not after --no-follow: `follow` or `delete` ends it.
    remove_after_follow: bool = False
    creates_namespace: bool = False  # its chart makes the namespace its pods run in (the release lives elsewhere)
    keep_logs: bool = False  # delete/stop (and the removal after following) first save the pods' logs
    logs_dir: str = "logs"  # where in the run folder they go
    log_filter: Callable[[str], str] | None = None  # a kept log's text, e.g. without what was written home already
    # A running pod's log (its last lines) -> its steps, shown as a bar while following (few, long pods);
    # None while the log has no progress yet.
    progress: "Callable[[str], Step | None] | None" = None

    def release(self, run: str) -> str:
        return f"{self.name}-{run}"

    def folder(self, runs_root: Path, run: str) -> Path:
        return runs_root / self.release(run)

    def run_name(self, values: Values) -> str:
        return values[self.name_key]["name"]

    def units(self, values: Values) -> dict[int, dict[str, Any]]:
        return {u["index"]: u["config"] for u in values[self.units_key]}

    def groups(self, values: Values) -> dict[str, list[int]]:
        """Group -> its units by completion index (negative: that index reports no result)."""
        return {g["name"]: list(g["indexes"]) for g in values["groups"]}

    def namespace(self, values: Values, fallback: str) -> str:
        return ((values.get("global") or {}).get("namespaces") or {}).get(self.namespace_key) or fallback
