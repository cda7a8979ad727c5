"""The models a `model-latency` config can name: built-in reference models written with PyTorch,
and `torchscript` (a file given by `modelPath`, loaded with `torch.jit.load`).

A built-in model is a builder: `build(input_shape, **modelArgs) -> nn.Module`, which checks the
input shape it is given (one sample, without the batch dimension) and names what is wrong."""

import inspect
import itertools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner.errors import ConfigError

TORCHSCRIPT = "torchscript"
Builder = Callable[..., nn.Module]
BUILTIN: dict[str, Builder] = {}


def builtin(name: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        BUILTIN[name] = builder
        return builder

    return register


def _dims(shape: list[int], want: int, what: str) -> None:
    if len(shape) != want:
        raise ConfigError("inputShape", f"{what} takes {want} dimension(s) per sample, got {shape}")


class MLP(nn.Module):
    def __init__(self, features: int, hidden: int, layers: int, outputs: int) -> None:
        super().__init__()
        widths = [features] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        blocks.append(nn.Linear(widths[-1], outputs))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@builtin("mlp")
def mlp(input_shape: list[int], hidden: int = 1024, layers: int = 3, outputs: int = 10) -> nn.Module:
    """inputShape `[features]`; `layers` hidden Linear+ReLU layers of width `hidden`."""
    _dims(input_shape, 1, "mlp")
    return MLP(input_shape[0], hidden, layers, outputs)


class SmallCNN(nn.Module):
    def __init__(self, channels_in: int, width: int, blocks: int, classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels_in
        for i in range(blocks):
            out = width * 2**i
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@builtin("cnn")
def cnn(input_shape: list[int], width: int = 32, blocks: int = 3, classes: int = 10) -> nn.Module:
    """inputShape `[channels, height, width]`; `blocks` conv-BN-ReLU-maxpool blocks, doubling `width`."""
    _dims(input_shape, 3, "cnn")
    side = min(input_shape[1:])
    if side < 2**blocks:
        raise ConfigError(
            "inputShape", f"cnn with {blocks} blocks halves the image {blocks} times: {side} < {2**blocks}"
        )
    return SmallCNN(input_shape[0], width, blocks, classes)


@builtin("transformer")
def transformer(input_shape: list[int], heads: int = 8, ffn: int | None = None, layers: int = 1) -> nn.Module:
    """inputShape `[sequence, dModel]`; `layers` encoder blocks (self-attention + feed-forward of
    width `ffn`, default 4 x dModel), batch first."""
    _dims(input_shape, 2, "transformer")
    d_model = input_shape[1]
    if heads < 1 or d_model % heads:
        raise ConfigError("modelArgs.heads", f"dModel (inputShape[1] = {d_model}) is not divisible by {heads} heads")
    block = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ffn or 4 * d_model, batch_first=True)
    if layers == 1:
        return block
    return nn.TransformerEncoder(block, layers, enable_nested_tensor=False)


def build(name: str, input_shape: list[int], model_args: dict[str, Any], model_path: str | None) -> nn.Module:
    """The model a config names, on CPU, in fp32, in eval mode."""
    torch.manual_seed(0)
    if name == TORCHSCRIPT:
        if model_args:
            raise ConfigError("modelArgs", "a TorchScript model takes no modelArgs")
        return load_torchscript(model_path)
    if model_path:
        raise ConfigError("modelPath", f"only model `{TORCHSCRIPT}` reads a file; `{name}` is built in")
    builder = BUILTIN.get(name)
    if builder is None:
        known = ", ".join([*sorted(BUILTIN), TORCHSCRIPT])
        raise ConfigError("model", f"unknown model {name!r}; known: {known}")
    params = inspect.signature(builder).parameters
    for key, value in model_args.items():
        if key == "input_shape" or key not in params:
            accepted = ", ".join(p for p in params if p != "input_shape")
            raise ConfigError(f"modelArgs.{key}", f"model {name} has no argument {key!r} (it takes {accepted})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"modelArgs.{key}", f"must be a positive integer, not {value!r}")
    return builder(input_shape, **model_args).eval()


def load_torchscript(model_path: str | None) -> nn.Module:
    if not model_path:
        raise ConfigError("modelPath", f"model `{TORCHSCRIPT}` needs modelPath (the file to torch.jit.load)")
    path = Path(model_path)
    if not path.is_file():
        raise ConfigError("modelPath", f"{path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript in favour of torch.export; the files still load.
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        raise ConfigError(
            "modelPath", f"{path} is not a TorchScript file torch {torch.__version__} can load: {e}"
        ) from e
    return module.eval()
