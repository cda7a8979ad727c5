"""Models of a `train` config: torchvision's classification models, built without weights (a run
downloads nothing). `modelArgs` go to the builder (e.g. `{"width_mult": 0.5}` for mobilenet_v2);
`num_classes` comes from the dataset."""

from typing import Any

from torch import nn

from runner.errors import ConfigError


def names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def check(name: str, classes: int, model_args: dict[str, Any]) -> None:
    """Build the model on the meta device (no memory, no time): a bad name or modelArgs is refused
    before the run touches the object store."""
    import torch

    with torch.device("meta"):
        build(name, classes, model_args)


def build(name: str, classes: int, model_args: dict[str, Any]) -> nn.Module:
    import torchvision

    known = names()
    if name not in known:
        raise ConfigError(
            "model", f"unknown torchvision classification model {name!r} (e.g. {', '.join(known[:8])}...)"
        )
    if "num_classes" in model_args:
        raise ConfigError("modelArgs.num_classes", "set by the dataset's classes (datasetArgs.classes)")
    try:
        return torchvision.models.get_model(name, weights=None, num_classes=classes, **model_args)
    except (TypeError, ValueError) as e:
        raise ConfigError("modelArgs", f"{name} does not take {model_args}: {e}") from None
