"""Tiny configs of the runner's tests (imported as chartkit is in tests/charts)."""

from typing import Any

TINY: dict[str, dict[str, Any]] = {
    "mlp": {"model": "mlp", "batchSize": 4, "inputShape": [32], "modelArgs": {"hidden": 32, "layers": 2}},
    "cnn": {"model": "cnn", "batchSize": 2, "inputShape": [3, 16, 16], "modelArgs": {"width": 8, "blocks": 2}},
    "transformer": {"model": "transformer", "batchSize": 2, "inputShape": [8, 32], "modelArgs": {"heads": 4}},
}
FEW = {"warmup": 2, "iterations": 5}
# A `train` config of a few seconds on one CPU core: 8 steps per epoch, 24 in all, a checkpoint
# every 4; mobilenet_v3_small has dropout (the RNG state matters) and batch norm (buffers too).
TRAIN: dict[str, Any] = {
    "kind": "train",
    "framework": "torchvision",
    "model": "mobilenet_v3_small",
    "modelArgs": {"width_mult": 0.25},
    "dataset": "synthetic",
    "datasetArgs": {"samples": 64, "classes": 4, "imageSize": 16},
    "epochs": 3,
    "batchSize": 8,
    "learningRate": 0.05,
    "seed": 7,
    "checkpointEvery": 4,
    "logEvery": 1,
}
