"""Where the benchmark runs: the torch device, and the facts about it that a result records."""

import os
import platform
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError

if TYPE_CHECKING:
    import torch


def select_device(config: dict[str, Any], env: dict[str, str] | None = None) -> "torch.device":
    """CUDA when available, else CPU. KAIML_DEVICE (`cpu`, `cuda`, `cuda:1`) overrides. A config
    scheduled with GPUs (`gpuCount` > 0) on a pod that sees none is an error, not a CPU run
    labelled with a GPU type: exit 1, retried (a node's driver or device plugin may recover)."""
    import torch

    env = dict(os.environ) if env is None else env
    wanted = env.get("KAIML_DEVICE", "").strip()
    device = torch.device(wanted) if wanted else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunnerError(f"KAIML_DEVICE={wanted}, but CUDA is not available in this container")
    gpus = config.get("gpuCount") or 0
    if gpus and device.type != "cuda":
        raise RunnerError(
            f"the config was scheduled with gpuCount={gpus} (gpuType={config.get('gpuType') or '?'}), "
            "but torch sees no CUDA device: check the node's NVIDIA driver and device plugin"
        )
    return device


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver() -> str | None:
    """The NVIDIA driver version: /proc/driver/nvidia/version (mounted by the NVIDIA container
    runtime), else nvidia-smi."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9][0-9.]+)", text)
        if match:
            return match.group(1)
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            return out.splitlines()[0].strip() or None
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    return None


def device_info(device: "torch.device | None", config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The result's `device` object. Works without torch (then `torch` is null)."""
    hostname = socket.gethostname()
    info: dict[str, Any] = {
        "type": device.type if device is not None else "cpu",
        "node": os.environ.get("NODE_NAME") or hostname,
        "hostname": hostname,
        "cpu": cpu_model(),
        "cpu_threads": None,
        "torch": None,
        "cuda": None,
        "gpu": None,
        "gpu_count": None,
        "driver": None,
        "gpu_type": (config or {}).get("gpuType") or None,
        # What the pod's security context made of the process: checked by the real-node tests.
        "uid": os.getuid(),
        "root_read_only": os.statvfs("/").f_flag & os.ST_RDONLY == os.ST_RDONLY,
    }
    try:
        import torch
    except ImportError:
        return info
    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    info["cpu_threads"] = torch.get_num_threads()
    if device is not None and device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_count"] = torch.cuda.device_count()
        info["driver"] = nvidia_driver()
    return info
