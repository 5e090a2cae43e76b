"""Device and precision selection: what the user asked for -> what is actually used.

Never a silent fallback: asking for CUDA where there is none is an error, and the device
actually used is what callers report. Reduced precision runs the model under autocast
(weights stay fp32); fp16 needs a GPU, bf16 also runs on CPU.
"""
from __future__ import annotations

import contextlib
import re

import torch

from retf_ros.errors import RetfError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_CUDA_SPEC = re.compile(r"cuda(?::(\d+))?")


def select_device(spec: str) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> the torch.device to use.

    ``auto`` picks cuda:0 when CUDA is available, else the CPU. An explicit CUDA request
    without CUDA, or with an index beyond the visible GPUs, raises RetfError.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA_SPEC.fullmatch(text)
    if match is None:
        raise RetfError(f"device {spec!r} is not one of auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise RetfError(f"device {spec!r} requested but CUDA is not available on this machine "
                        f"(torch {torch.__version__}); use device 'cpu' or 'auto'")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise RetfError(f"device {spec!r} requested but only {count} CUDA device(s) are visible")
    return torch.device("cuda", index)


def unavailable_device(spec: str) -> str | None:
    """Why :func:`select_device` would refuse ``spec`` on this machine (None when it would not),
    so a request can be refused when it is made rather than at the next use."""
    try:
        select_device(spec)
    except RetfError as exc:
        return str(exc)
    return None


def select_precision(precision: str, device: torch.device) -> torch.dtype:
    """``fp32`` | ``fp16`` | ``bf16`` -> autocast dtype, refused where the device cannot run it."""
    key = str(precision).strip().lower()
    if key not in PRECISIONS:
        raise RetfError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if key == "fp16" and device.type == "cpu":
        raise RetfError("precision 'fp16' needs a CUDA device (the CPU has no fast fp16 kernels); "
                        "use 'bf16' or 'fp32' on the CPU")
    if key == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RetfError(f"precision 'bf16' is not supported by {device_name(device)}; use 'fp16' or 'fp32'")
    return PRECISIONS[key]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; a no-op context for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def device_name(device: torch.device) -> str:
    """Human-readable name of the device actually used (e.g. 'cuda:0 (NVIDIA H100 80GB HBM3)')."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so a wall-clock timing covers it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_device_memory(device: torch.device) -> None:
    """Return cached GPU memory to the driver (after the tensors holding it are dropped)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
