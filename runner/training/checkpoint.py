"""What a checkpoint holds, and putting it back: everything that decides the next step's result.

Model and optimizer state, the step, epoch and position in the epoch (the batch order itself is a
function of seed and epoch: runner/training/data.py), the RNG states of torch (CPU, and CUDA when
used), numpy and Python's `random`, the metrics so far, and the config's digest (a checkpoint is
resumed only by the config that wrote it). Serialised with torch.save into bytes."""

import io
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

FORMAT = "kaiml.checkpoint/v1"


@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already done
    losses: list[float] = field(default_factory=list)  # mean loss of each finished epoch


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def dump(
    digest: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, position: Position, epoch_loss: float
) -> bytes:
    buffer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "digest": digest,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "position": vars(position),
            "epochLossSum": epoch_loss,
            "rng": rng_state(),
        },
        buffer,
    )
    return buffer.getvalue()


def load(payload: bytes) -> dict[str, Any]:
    # weights_only=False: the RNG states are numpy arrays and tuples; the object is the run's own.
    state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} checkpoint")
    return state


def restore(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Position, float]:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return Position(**state["position"]), float(state["epochLossSum"])


def weights_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every tensor's name, dtype, shape and raw bytes: equal iff bitwise equal."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
