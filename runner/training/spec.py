"""A `train` config checked key by key (no torch here): ConfigError names the first bad key.

Keys (camelCase, as in examples/training/*.yaml and deploy/workloads/train/training.schema.json): framework, model,
modelArgs, dataset, datasetArgs, epochs, batchSize, learningRate, optimizer, seed, checkpointEvery,
logEvery, nodes; resources, gpuType, gpuCount and nodePool (where the launcher schedules the run)
are accepted and recorded, not used."""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ConfigError

FRAMEWORKS = ("torchvision", "runner")
DATASETS = ("synthetic",)
OPTIMIZERS = ("sgd", "adamw")
REQUIRED = ("model", "dataset", "epochs", "batchSize", "learningRate")
SCHEDULING = ("resources", "gpuType", "gpuCount", "nodePool")
KEYS = (
    "framework",
    *REQUIRED,
    "modelArgs",
    "datasetArgs",
    "optimizer",
    "seed",
    "checkpointEvery",
    "logEvery",
    "nodes",
    *SCHEDULING,
)
DATASET_ARGS = {"samples": 512, "classes": 10, "channels": 3, "imageSize": 32}
DEFAULTS: dict[str, Any] = {
    "framework": "torchvision",
    "modelArgs": {},
    "datasetArgs": {},
    "optimizer": "sgd",
    "seed": 0,
    "checkpointEvery": 100,
    "logEvery": 10,
    "nodes": 1,
}


@dataclass(frozen=True)
class TrainSpec:
    framework: str
    model: str
    dataset: str
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str = "sgd"
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    model_args: dict[str, Any] = field(default_factory=dict)
    samples: int = DATASET_ARGS["samples"]
    classes: int = DATASET_ARGS["classes"]
    channels: int = DATASET_ARGS["channels"]
    image_size: int = DATASET_ARGS["imageSize"]
    # sha256 of the canonical config: a checkpoint is only resumed by the config that wrote it.
    digest: str = ""

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.samples // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def _int(value: Any, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, not {value!r}")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def digest(config: dict[str, Any]) -> str:
    """What identifies a run's work: every key that changes the weights (not where it is scheduled)."""
    work = {k: v for k, v in config.items() if k not in SCHEDULING}
    return hashlib.sha256(json.dumps(work, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse(config: dict[str, Any]) -> TrainSpec:
    for key in config:
        if key not in KEYS:
            raise ConfigError(key, f"unknown key of a train config (known: {', '.join(KEYS)})")
    for key in REQUIRED:
        if key not in config:
            raise ConfigError(key, f"missing (a train config needs {', '.join(REQUIRED)})")
    c = {**DEFAULTS, **config}
    framework = _choice(c["framework"], "framework", FRAMEWORKS)
    if not isinstance(c["model"], str) or not c["model"]:
        raise ConfigError("model", f"must be a model name, not {c['model']!r}")
    dataset = _choice(c["dataset"], "dataset", DATASETS)
    nodes = _int(c["nodes"], "nodes", 1)
    if nodes > 1:
        raise ConfigError(
            "nodes",
            f"{nodes}: data-parallel training over several nodes (torch.distributed DDP) needs the coordinated-run "
            "machinery, which this platform does not have yet; use nodes: 1",
        )
    rate = c["learningRate"]
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate < float("inf"):
        raise ConfigError("learningRate", f"must be a positive number, not {rate!r}")
    for key in ("modelArgs", "datasetArgs", "resources"):
        if key in c and not isinstance(c[key], dict):
            raise ConfigError(key, f"must be an object, not {c[key]!r}")
    if "weights" in c["modelArgs"]:
        raise ConfigError("modelArgs.weights", "pretrained weights are not loaded: runs download nothing")
    data = {**DATASET_ARGS, **c["datasetArgs"]}
    for key, value in data.items():
        if key not in DATASET_ARGS:
            raise ConfigError(f"datasetArgs.{key}", f"unknown (known: {', '.join(DATASET_ARGS)})")
        _int(value, f"datasetArgs.{key}", 2 if key == "classes" else 1)
    return TrainSpec(
        framework=framework,
        model=c["model"],
        dataset=dataset,
        epochs=_int(c["epochs"], "epochs", 1),
        batch_size=_int(c["batchSize"], "batchSize", 1),
        learning_rate=float(rate),
        optimizer=_choice(c["optimizer"], "optimizer", OPTIMIZERS),
        seed=_int(c["seed"], "seed", 0),
        checkpoint_every=_int(c["checkpointEvery"], "checkpointEvery", 1),
        log_every=_int(c["logEvery"], "logEvery", 1),
        model_args=dict(c["modelArgs"]),
        samples=data["samples"],
        classes=data["classes"],
        channels=data["channels"],
        image_size=data["imageSize"],
        digest=digest(config),
    )
