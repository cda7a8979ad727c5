"""`bench run --local --device`: which device each config runs on here, decided before anything runs.

The runner refuses a GPU config (gpuCount > 0) where torch sees no CUDA device (exit 1, retried), so
on a CPU-only machine every GPU config would fail slowly. `auto` refuses such a sweep up front; `cpu`
runs GPU configs on the CPU on purpose, without gpuCount (the runner's refusal) but with gpuType
(so reports still group by it)."""

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deploy.errors import DeviceError, ToolMissingError

PROBE = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@dataclass(frozen=True)
class Placement:
    configs: dict[int, dict[str, Any]]  # index -> the config the runner reads
    devices: dict[int, str]  # index -> KAIML_DEVICE
    warning: str | None = None


def require_torch() -> None:
    """The runner runs in this interpreter; without torch every config would fail."""
    if importlib.util.find_spec("torch") is None:
        raise ToolMissingError(
            f"bench run --local runs the benchmark runner with {sys.executable}, which has no torch: "
            "install the runner extra (`.venv/bin/pip install -e '.[runner]'`) or run the sweep on a cluster."
        )


def cuda_devices() -> int:
    """CUDA devices torch sees, asked of a child interpreter (the runners' own), so that this
    process neither imports torch nor initialises CUDA."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise ToolMissingError(f"cannot ask torch for CUDA devices with {sys.executable}: {tail}")
    return int(done.stdout.strip() or 0)


def _gpu_summary(configs: dict[int, dict[str, Any]], gpu: list[int]) -> str:
    types = sorted({configs[i].get("gpuType") or "?" for i in gpu})
    return f"{len(gpu)} of {len(configs)} configs ask for GPUs (gpuType {', '.join(types)})"


def choose_devices(configs: dict[int, dict[str, Any]], device: Device, cuda: int | None = None) -> Placement:
    """Each config's runner config and KAIML_DEVICE. `cuda`: the CUDA device count, probed only when
    needed (None). Raises DeviceError when the sweep cannot run here as asked."""
    gpu = sorted(i for i, c in configs.items() if (c.get("gpuCount") or 0) > 0)
    if device == Device.cpu:
        warning = None
        if gpu:
            warning = (
                f"{_gpu_summary(configs, gpu)}; --device cpu runs them on this machine's CPU: their figures are "
                "CPU latencies, recorded under their gpuType."
            )
        stripped = {i: {k: v for k, v in c.items() if k != "gpuCount"} for i, c in configs.items()}
        return Placement(stripped, dict.fromkeys(configs, "cpu"), warning)
    if device == Device.auto and not gpu:
        return Placement(dict(configs), dict.fromkeys(configs, "cpu"))
    if (cuda_devices() if cuda is None else cuda) == 0:
        asked = "--device cuda" if device == Device.cuda else _gpu_summary(configs, gpu)
        raise DeviceError(
            f"{asked}, but torch sees no CUDA device on this machine: use --device cpu to run them on the CPU "
            "anyway (CPU latencies, recorded under their gpuType), or run the sweep on a cluster "
            "(--context, --kubeconfig or --local instead of --here)."
        )
    if device == Device.cuda:
        return Placement(dict(configs), dict.fromkeys(configs, "cuda"))
    # auto: where a pod would run it, GPU configs on the GPU and CPU-pool configs on the CPU
    return Placement(dict(configs), {i: "cuda" if i in gpu else "cpu" for i in configs})
