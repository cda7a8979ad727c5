"""A run's folder, runs/<workload>-<run>/: results.jsonl (one line per unit, appended as results arrive; a
unit is recorded once) and values.json (the chart values it was launched with, so it can be followed again)."""

import json
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


class ResultStore:
    """Keeps only the set of recorded config indexes in memory (O(configs))."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RESULTS
        self.recorded: set[int] = {r["config"] for r in read_records(self.path)}

    def record(self, index: int, record: dict[str, Any]) -> bool:
        """Append the record of config `index`; False (and nothing written) when it already has one."""
        if index in self.recorded:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"config": index, **record}, sort_keys=True) + "\n")
        self.recorded.add(index)
        return True

    def archive(self) -> Path | None:
        """Move the results of an earlier launch aside (never deleted): results-<n>.jsonl; returns it."""
        if not self.path.exists():
            return None
        n = 1 + sum(1 for _ in self.path.parent.glob("results-*.jsonl"))
        kept = self.path.with_name(f"results-{n}.jsonl")
        self.path.rename(kept)
        self.recorded.clear()
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
