"""What a calibration ran on: device, driver, CUDA, PyTorch and kernel-library versions,
clocks and the date (PyTorch and the standard library only)."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import shutil
import subprocess
from typing import Any

import torch

# Kernel libraries whose versions are recorded when installed (their kernels are what
# engines run; kvplan times them when they are importable).
KERNEL_PACKAGES = ("triton", "flashinfer-python", "flash-attn", "flash_mla", "deep_gemm")
NVIDIA_SMI_FIELDS = (
    "name",
    "driver_version",
    "memory.total",
    "clocks.sm",
    "clocks.max.sm",
    "clocks.mem",
    "power.limit",
    "temperature.gpu",
)
NVIDIA_SMI_TIMEOUT_S = 20


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nccl_version() -> str | None:
    try:
        version = torch.cuda.nccl.version()
    except Exception:
        return None
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def nvidia_smi(index: int = 0) -> dict[str, str]:
    """Selected nvidia-smi fields of one GPU (empty where nvidia-smi is missing)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {}
    try:
        out = subprocess.run(
            [
                exe,
                f"--id={index}",
                "--query-gpu=" + ",".join(NVIDIA_SMI_FIELDS),
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    values = [v.strip() for v in out.split(",")]
    if len(values) != len(NVIDIA_SMI_FIELDS):
        return {}
    return dict(zip(NVIDIA_SMI_FIELDS, values, strict=True))


def describe() -> dict[str, Any]:
    """The environment record of a calibration run."""
    env: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "kernel_packages": {
            name: version for name in KERNEL_PACKAGES if (version := _package_version(name))
        },
    }
    if not torch.cuda.is_available():
        env["device_name"] = "cpu"
        env["device_count"] = 0
        return env
    props = torch.cuda.get_device_properties(0)
    env.update(
        {
            "device_name": torch.cuda.get_device_name(0),
            "device_count": torch.cuda.device_count(),
            "compute_capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "memory_bytes": int(props.total_memory),
            "l2_cache_bytes": int(getattr(props, "L2_cache_size", 0)),
            "cudnn": torch.backends.cudnn.version()
            if torch.backends.cudnn.is_available()
            else None,
            "nccl": _nccl_version(),
        }
    )
    smi = nvidia_smi(0)
    if smi:
        env["driver_version"] = smi.get("driver_version")
        env["nvidia_smi_before"] = smi
    try:
        import torch.nn.attention as attention

        lister = getattr(attention, "list_flash_attention_impls", None)
        if lister is not None:
            env["flash_attention_impls"] = [str(x) for x in lister()]
    except Exception:  # informational only
        pass
    return env
