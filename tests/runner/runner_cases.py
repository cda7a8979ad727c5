"""Tiny configs of the runner's tests (imported as chartkit is in tests/charts)."""

from typing import Any

TINY: dict[str, dict[str, Any]] = {
    "mlp": {"model": "mlp", "batchSize": 4, "inputShape": [32], "modelArgs": {"hidden": 32, "layers": 2}},
    "cnn": {"model": "cnn", "batchSize": 2, "inputShape": [3, 16, 16], "modelArgs": {"width": 8, "blocks": 2}},
    "transformer": {"model": "transformer", "batchSize": 2, "inputShape": [8, 32], "modelArgs": {"heads": 4}},
}
FEW = {"warmup": 2, "iterations": 5}
