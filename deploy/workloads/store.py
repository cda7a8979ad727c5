"""A run's folder, runs/<workload>-<run>/: results.jsonl (one line per unit, appended as outcomes arrive:
its `result`, or the `failure` that ended it, in words; a unit is recorded once, and its failure is final
for that launch) and values.json (the chart values it was launched with, so it can be followed again)."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"


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

    def archive(self) -> Path | None:
        """Move the results of an earlier launch aside (never deleted): results-<n>.jsonl; returns it."""
        if not self.path.exists():
            return None
        n = 1 + sum(1 for _ in self.path.parent.glob("results-*.jsonl"))
        kept = self.path.with_name(f"results-{n}.jsonl")
        self.path.rename(kept)
        self.recorded.clear()
        self.failed.clear()
        return kept


VALUES = "values.json"


def launched_values(folder: Path) -> dict[str, Any] | None:
    """The chart values a run was launched with (None: never launched from here)."""
    path = folder / VALUES
    return json.loads(path.read_text()) if path.exists() else None


def save_values(folder: Path, values: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{VALUES}.tmp"
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True))
    tmp.replace(folder / VALUES)


LAUNCHED = "launched-at"


def mark_launched(folder: Path) -> None:
    """When this launch was installed (wall clock): what is left of its deadline is counted from it, also by a
    later `follow` on another day."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LAUNCHED).write_text(f"{time.time():.3f}\n")


def launched_at(folder: Path) -> float | None:
    try:
        return float((folder / LAUNCHED).read_text())
    except (OSError, ValueError):
        return None
