"""Finding and loading the one config this run measures.

In a pod: the benchmark chart mounts a ConfigMap of `config-<index>.json` files at
KAIML_CONFIG_DIR and sets KAIML_CONFIG_INDEXES (the group's config indexes, a comma list);
Kubernetes sets JOB_COMPLETION_INDEX, and the config is `indexes[JOB_COMPLETION_INDEX]`.
On a laptop: `--config FILE`, either such a document or a bare config."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError

DEFAULT_CONFIG_DIR = "/etc/kaiml/configs"
DEFAULT_KIND = "model-latency"


@dataclass(frozen=True)
class RunConfig:
    """One config and where it came from: the sweep, its index in the sweep, and the kind."""

    kind: str
    config: dict[str, Any]
    sweep: str = "local"
    index: int = 0
    source: str = field(default="", compare=False)


def parse_document(doc: Any, source: str, sweep: str = "local", index: int = 0) -> RunConfig:
    """A config file's JSON: `{"sweep", "kind", "index", "config": {...}}` (what the chart renders)
    or a bare config (`{"model": ..., ...}`, optionally with `kind`)."""
    if not isinstance(doc, dict):
        raise ConfigError("config", f"{source} holds a JSON {type(doc).__name__}, not an object")
    if isinstance(doc.get("config"), dict):
        config = dict(doc["config"])
        kind = doc.get("kind", DEFAULT_KIND)
        sweep = doc.get("sweep", sweep)
        index = doc.get("index", index)
    elif "config" in doc:
        raise ConfigError("config", f"{source}: `config` must be an object")
    else:
        config = dict(doc)
        kind = config.pop("kind", DEFAULT_KIND)
    if not isinstance(kind, str) or not kind:
        raise ConfigError("kind", f"{source}: must be a non-empty string, not {kind!r}")
    if not isinstance(sweep, str):
        raise ConfigError("sweep", f"{source}: must be a string, not {sweep!r}")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ConfigError("index", f"{source}: must be a non-negative integer, not {index!r}")
    return RunConfig(kind=kind, config=config, sweep=sweep, index=index, source=source)


def load_file(path: Path, sweep: str = "local", index: int = 0) -> RunConfig:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError("config", f"cannot read {path}: {e.strerror or e}") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError("config", f"{path} is not JSON: {e}") from e
    return parse_document(doc, str(path), sweep, index)


def cluster_index(env: dict[str, str]) -> int:
    """The config index of this pod: KAIML_CONFIG_INDEXES[JOB_COMPLETION_INDEX], or
    JOB_COMPLETION_INDEX itself when the chart sets no index list."""
    raw = env.get("JOB_COMPLETION_INDEX", "")
    if not raw.strip().isdigit():
        raise ConfigError(
            "JOB_COMPLETION_INDEX",
            f"unset or not a number ({raw!r}); without --config the runner expects an Indexed Job's pod",
        )
    completion = int(raw)
    listed = env.get("KAIML_CONFIG_INDEXES", "").strip()
    if not listed:
        return completion
    try:
        indexes = [int(i) for i in listed.split(",")]
    except ValueError:
        raise ConfigError("KAIML_CONFIG_INDEXES", f"not a comma list of integers: {listed!r}") from None
    if completion >= len(indexes):
        raise ConfigError(
            "KAIML_CONFIG_INDEXES",
            f"has {len(indexes)} entries, JOB_COMPLETION_INDEX is {completion} (the Job's completions do not match)",
        )
    return indexes[completion]


def load_cluster(env: dict[str, str] | None = None) -> RunConfig:
    """The in-cluster config: `<KAIML_CONFIG_DIR>/config-<index>.json`."""
    env = dict(os.environ) if env is None else env
    index = cluster_index(env)
    directory = Path(env.get("KAIML_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    path = directory / f"config-{index}.json"
    if not path.is_file():
        raise ConfigError("KAIML_CONFIG_DIR", f"{path} does not exist (config index {index})")
    run = load_file(path, sweep=env.get("KAIML_SWEEP", "local"), index=index)
    if run.index != index:
        raise ConfigError("index", f"{path} says index {run.index}, expected {index}")
    return run
