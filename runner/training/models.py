"""Models of a `train` config: torchvision's classification models, built without weights (a run
downloads nothing), or (framework `runner`) the runner's own `cnn` (runner/models.py), which
need no torchvision: the runner image's Debian torch comes without it. `modelArgs` go to the builder
(e.g. `{"width_mult": 0.5}` for mobilenet_v2, `{"width": 16}` for cnn); `num_classes` comes from the
dataset."""

from typing import Any

from torch import nn

from runner.errors import ConfigError


def names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def check(
    name: str, classes: int, model_args: dict[str, Any], framework: str = "torchvision", channels: int = 3
) -> None:
    """Build the model on the meta device (no memory, no time): a bad name or modelArgs is refused
    before the run touches the object store. The runner's own small models are built as they are (the
    image's torch 1.13 has no meta-device context)."""
    import torch

    if framework == "runner":
        own(name, classes, model_args, channels)
        return
    with torch.device("meta"):
        build(name, classes, model_args, framework, channels)


def own(name: str, classes: int, model_args: dict[str, Any], channels: int) -> nn.Module:
    """The runner's own `cnn` (conv-BN-ReLU-maxpool blocks and a linear head) on `channels`-channel
    images, `classes` outputs."""
    from runner import models as builtin

    if name != "cnn":
        raise ConfigError("model", f"unknown model {name!r} of framework runner (known: cnn)")
    args = {"width": 32, "blocks": 2, **model_args}
    for key, value in args.items():
        if key not in ("width", "blocks"):
            raise ConfigError(f"modelArgs.{key}", "cnn takes width and blocks")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"modelArgs.{key}", f"must be a positive integer, not {value!r}")
    return builtin.SmallCNN(channels, args["width"], args["blocks"], classes)


def build(
    name: str, classes: int, model_args: dict[str, Any], framework: str = "torchvision", channels: int = 3
) -> nn.Module:
    if framework == "runner":
        return own(name, classes, model_args, channels)
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
