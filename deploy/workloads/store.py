"""results.jsonl: one line per config, appended as results arrive; a config is recorded once."""

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

    def reset(self) -> None:
        """A new launch of the sweep starts a new results file."""
        self.path.unlink(missing_ok=True)
        self.recorded.clear()


def new_launch(runs_root: Path, values: dict[str, Any]) -> ResultStore:
    """The store of a sweep being launched: a new results file, and the chart values it ran with."""
    store = ResultStore(bench_dir(runs_root, values["sweep"]["name"]))
    store.reset()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    (store.path.parent / "values.json").write_text(json.dumps(values, indent=2))
    return store
