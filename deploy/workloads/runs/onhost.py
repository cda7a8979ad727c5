"""`run start SPEC --here`: the run's ranks as local processes (`python -m runner.ranks`: loopback
rendezvous, the same start barrier and process group as in the pods), recorded as the cluster path
records them: one line per rank in runs/run-<name>/results.jsonl, the aggregate computed by the report."""

from pathlib import Path

from deploy.console import log
from deploy.errors import ValuesError
from deploy.workloads.runs.spec import load
from deploy.workloads.runs.workload import RUNS
from deploy.workloads.store import ResultStore, result_record

GROUP = "here"


def run_here(path: Path, ranks: int | None, runs_root: Path, timeout_s: float) -> tuple[str, int]:
    """Run the spec's ranks here; (run name, number of rank records stored). Earlier results of the same
    run are kept as results-<n>.jsonl."""
    from runner.errors import ConfigError
    from runner.ranks import run

    spec = load(path)
    size = ranks or spec.get("ranks") or 1
    folder = RUNS.folder(runs_root, spec["name"])
    store = ResultStore(folder)
    kept = store.archive()
    if kept:
        log(f"the earlier launch's results are kept in {kept}")
    log(f"run {spec['name']}: {size} ranks here ({spec['mode']}, {spec['kind']}); logs in {folder / 'ranks'}")
    try:
        _, records = run(path, size, folder / "ranks", timeout_s)
    except ConfigError as err:
        raise ValuesError(f"run spec {path}: {err}") from err
    except RuntimeError as err:  # no rank printed a record
        raise ValuesError(f"run {spec['name']}: {err}") from err
    for record in records:
        rank = record["rank"]
        node = (record.get("device") or {}).get("node") or ""
        config = {"rank": rank, "node": node, "gpuType": "", "gpuCount": 0}
        store.record(rank, result_record(GROUP, f"rank-{rank}", node, config, record))
    return spec["name"], len(records)
