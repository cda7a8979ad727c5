"""results.jsonl: one line per config, appended as outcomes arrive: its `result`, or the `failure` that
ended it (why, in words). A config is recorded once; its failure is final for that launch."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"


def bench_dir(runs_root: Path, sweep: str) -> Path:
    return runs_root / f"bench-{sweep}"


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open() as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def result_record(group: str, pod: str, node: str, config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """One config's line (without `config`, which `ResultStore.record` adds): the same shape
    whether a pod or a local subprocess ran it, so `bench results` reads both."""
    return {
        "group": group,
        "pod": pod,
        "node": node,
        "gpuType": config.get("gpuType", ""),
        "values": config,
        "result": result,
    }


def failure_record(group: str, config: dict[str, Any], why: str) -> dict[str, Any]:
    """A failed config's line: which config, and why it has no result."""
    return {"group": group, "gpuType": config.get("gpuType", ""), "values": config, "failure": why}


class ResultStore:
    """Keeps only the recorded config indexes (and the failures' reasons) in memory (O(configs))."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RESULTS
        self.recorded: set[int] = set()  # configs with a result
        self.failed: dict[int, str] = {}  # config -> why it failed
        for r in read_records(self.path):
            if "failure" in r:
                self.failed[r["config"]] = r["failure"]
            else:
                self.recorded.add(r["config"])

    def _append(self, index: int, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"config": index, **record}, sort_keys=True) + "\n")

    def record(self, index: int, record: dict[str, Any]) -> bool:
        """Append the result of config `index`; False (and nothing written) when it already has an outcome."""
        if index in self.recorded or index in self.failed:
            return False
        self._append(index, record)
        self.recorded.add(index)
        return True

    def fail(self, index: int, record: dict[str, Any]) -> bool:
        """Append the failure of config `index` (failure_record); False when it already has an outcome."""
        if index in self.recorded or index in self.failed:
            return False
        self._append(index, record)
        self.failed[index] = record["failure"]
        return True

    def reset(self) -> None:
        """A new launch of the sweep starts a new results file."""
        self.path.unlink(missing_ok=True)
        self.recorded.clear()
        self.failed.clear()


def new_launch(runs_root: Path, values: dict[str, Any]) -> ResultStore:
    """The store of a sweep being launched: a new results file, and the chart values it ran with."""
    store = ResultStore(bench_dir(runs_root, values["sweep"]["name"]))
    store.reset()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    (store.path.parent / "values.json").write_text(json.dumps(values, indent=2))
    return store
